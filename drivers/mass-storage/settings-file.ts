/**
 * A `key=value` settings file on a mass-storage camera, e.g.
 *
 *     # Acme BWC-M
 *     preRecordSeconds=30
 *     wifi=off
 *
 * One setting a line; blank lines and lines starting with `#` or `;` are comments; `\n` or
 * `\r\n` ends a line; spaces around the key and the value do not count; of a key given twice the
 * last counts. Only the keys the profile names are read, typed as it says, and only they are
 * ever written. Rewriting a file changes the lines of the keys it sets and nothing else: the
 * camera's comments, its other keys and lines dockd cannot read are kept byte for byte.
 *
 * The file comes from the camera and is untrusted: its lines are bytes, not text, and no key of
 * it ever becomes a property name except one the profile declares.
 */
import { DriverError, type CameraSettings, type SettingValue } from '../types.js';
import type { MassStorageSettingSpec } from './profiles.js';

export type SettingSpecs = Readonly<Record<string, MassStorageSettingSpec>>;

const LF = 0x0a;
const CR = 0x0d;
const EQUALS = 0x3d;
const KEY = /^[A-Za-z0-9_.-]{1,64}$/;
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;
/** Longer than any word a camera uses for an enumerated setting. */
const MAX_WORD = 64;

interface Line {
  /** The line's bytes without its end of line. */
  bytes: Buffer;
  /** What ended it: `\n`, `\r\n`, or nothing for a last line without one. */
  end: Buffer;
  /** The key, as written, when the line is `key=value` with a key dockd can read. */
  key?: string;
  value?: Buffer;
}

export interface ParsedSettings {
  /** Each declared key the file sets to a value dockd can read. */
  values: CameraSettings;
  /** Declared keys whose value in the file is not one the profile allows to be read. */
  unreadable: string[];
  /** Lines that are neither comments nor `key=value`. */
  badLines: number;
}

function isBlank(b: number): boolean {
  return b === 0x20 || b === 0x09;
}

function trim(bytes: Buffer): Buffer {
  let from = 0;
  let to = bytes.length;
  while (from < to && isBlank(bytes[from]!)) from++;
  while (to > from && isBlank(bytes[to - 1]!)) to--;
  return bytes.subarray(from, to);
}

function splitLines(file: Buffer): { lines: Line[]; crlf: boolean } {
  const lines: Line[] = [];
  let crlf = false;
  for (let from = 0; from < file.length;) {
    const lf = file.indexOf(LF, from);
    const next = lf < 0 ? file.length : lf + 1;
    let end = lf < 0 ? file.length : lf;
    if (lf >= 0 && end > from && file[end - 1] === CR) {
      end--;
      crlf = true;
    }
    lines.push({ ...readLine(file.subarray(from, end)), end: file.subarray(end, next) });
    from = next;
  }
  return { lines, crlf };
}

function readLine(bytes: Buffer): Omit<Line, 'end'> {
  const eq = bytes.indexOf(EQUALS);
  if (eq < 0) return { bytes };
  const key = trim(bytes.subarray(0, eq)).toString('latin1');
  return KEY.test(key) ? { bytes, key, value: trim(bytes.subarray(eq + 1)) } : { bytes };
}

function isComment(bytes: Buffer): boolean {
  const t = trim(bytes);
  return t.length === 0 || t[0] === 0x23 || t[0] === 0x3b;
}

/** The value as the spec reads it; undefined when the camera wrote something else. */
function decode(spec: MassStorageSettingSpec, raw: Buffer): SettingValue | undefined {
  const text = raw.toString('latin1');
  switch (spec.type) {
    case 'integer':
      return /^-?\d{1,9}$/.test(text) ? Number(text) : undefined;
    case 'boolean': {
      const word = text.toLowerCase();
      if (word === spec.true.toLowerCase()) return true;
      if (word === spec.false.toLowerCase()) return false;
      return undefined;
    }
    case 'enum':
      // A word of newer firmware is still reported as it is, for `dockd settings` to show.
      return text.length <= MAX_WORD && PRINTABLE_ASCII.test(text) ? text : undefined;
    case 'string':
      return text.length <= spec.maxLength && PRINTABLE_ASCII.test(text) ? text : undefined;
  }
}

/** The declared settings the file holds. Never throws on what the file contains. */
export function parseSettingsFile(file: Buffer, specs: SettingSpecs): ParsedSettings {
  const found = new Map<string, Buffer>();
  let badLines = 0;
  for (const line of splitLines(file).lines) {
    if (line.key === undefined) {
      if (!isComment(line.bytes)) badLines++;
    } else if (Object.hasOwn(specs, line.key)) {
      found.set(line.key, line.value!);
    }
  }
  const values: CameraSettings = {};
  const unreadable: string[] = [];
  for (const [key, raw] of found) {
    const v = decode(specs[key]!, raw);
    if (v === undefined) unreadable.push(key);
    else values[key] = v;
  }
  return { values, unreadable, badLines };
}

function refuse(key: string, why: string): DriverError {
  return new DriverError('permanent', 'refused', `${key}: ${why}`);
}

function shown(v: unknown): string {
  return typeof v === 'string' ? JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v) : String(v);
}

/**
 * Each value as the file spells it, once every key and value is one the profile allows; else a
 * `permanent` DriverError naming the first key it refuses.
 */
export function encodeSettings(partial: CameraSettings, specs: SettingSpecs): Map<string, string> {
  const out = new Map<string, string>();
  for (const [key, value] of Object.entries(partial)) {
    if (!Object.hasOwn(specs, key)) throw refuse(key, "the camera's settings file has no such setting");
    const spec = specs[key]!;
    switch (spec.type) {
      case 'integer':
        if (typeof value !== 'number' || !Number.isInteger(value))
          throw refuse(key, `the camera takes a whole number, not ${shown(value)}`);
        if (value < spec.min || value > spec.max)
          throw refuse(key, `the camera takes ${spec.min}..${spec.max}, not ${value}`);
        out.set(key, String(value));
        break;
      case 'boolean':
        if (typeof value !== 'boolean') throw refuse(key, `the camera takes true or false, not ${shown(value)}`);
        out.set(key, value ? spec.true : spec.false);
        break;
      case 'enum':
        if (typeof value !== 'string' || !spec.values.includes(value))
          throw refuse(key, `the camera takes one of ${spec.values.join(', ')}, not ${shown(value)}`);
        out.set(key, value);
        break;
      case 'string':
        if (typeof value !== 'string') throw refuse(key, `the camera takes text, not ${shown(value)}`);
        if (value.length > spec.maxLength || !PRINTABLE_ASCII.test(value))
          throw refuse(key, `the camera takes up to ${spec.maxLength} printable ASCII characters, not ${shown(value)}`);
        out.set(key, value);
        break;
    }
  }
  return out;
}

/**
 * The file with each key of `changes` set: every line of that key rewritten as `key=value`, a
 * key the file lacks appended in the file's own line ends, every other byte as it was.
 */
export function updateSettingsFile(file: Buffer, changes: ReadonlyMap<string, string>): Buffer {
  const { lines, crlf } = splitLines(file);
  const eol = Buffer.from(crlf ? '\r\n' : '\n');
  const set = (key: string) => Buffer.from(`${key}=${changes.get(key)}`, 'latin1');
  const written = new Set<string>();
  const out: Buffer[] = [];
  for (const line of lines) {
    if (line.key !== undefined && changes.has(line.key)) {
      out.push(set(line.key), line.end);
      written.add(line.key);
    } else {
      out.push(line.bytes, line.end);
    }
  }
  const missing = [...changes.keys()].filter((k) => !written.has(k));
  if (missing.length > 0 && lines.length > 0 && lines.at(-1)!.end.length === 0) out.push(eol);
  for (const key of missing) out.push(set(key), eol);
  return Buffer.concat(out);
}
