/**
 * Parsing of a simulated camera's `camera.json` (contracts/simulated-camera.md). The file is as
 * untrusted as a real camera: every field is checked and a problem is reported by name.
 */
import type { BatteryReading, CameraSettings } from '../types.js';
import { parseEventLog, parseSettings, type EventLogSpec } from './camera-settings-file.js';
import { CameraFileError } from './camera-file-error.js';

export { CameraFileError };

export type FaultKind = 'io-error' | 'corrupt' | 'stall' | 'delete-error' | 'detach';

export interface FaultSpec {
  kind: FaultKind;
  path?: string;
  atByte?: number;
  afterBytes?: number;
  /** Remaining occurrences; undefined = forever. */
  times?: number;
}

export interface BatteryLogSpec {
  at: Date;
  percent: number;
  charging: boolean;
}

export interface CameraSpec {
  serial: string;
  model: string;
  firmware: string;
  battery: BatteryReading | null;
  clockOffsetSeconds: number;
  throughputBytesPerSec: number;
  batteryLog: BatteryLogSpec[];
  faults: FaultSpec[];
  /** null: the camera reports no settings and cannot be configured. */
  settings: CameraSettings | null;
  eventLog: EventLogSpec[];
}

const FAULT_KINDS: readonly FaultKind[] = ['io-error', 'corrupt', 'stall', 'delete-error', 'detach'];
// Printable: no C0/C1 control characters; the contract bounds serials to 1–64 of them.
const PRINTABLE = /^[^\p{Cc}]{1,64}$/u;

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function num(
  obj: Record<string, unknown>,
  key: string,
  where: string,
  opts: { min?: number; max?: number } = {},
): number | undefined {
  const v = obj[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new CameraFileError(`${where}${key} must be a number`);
  if (opts.min !== undefined && v < opts.min) throw new CameraFileError(`${where}${key} must be at least ${opts.min}`);
  if (opts.max !== undefined && v > opts.max) throw new CameraFileError(`${where}${key} must be at most ${opts.max}`);
  return v;
}

function str(obj: Record<string, unknown>, key: string, where = ''): string | undefined {
  const v = obj[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new CameraFileError(`${where}${key} must be a string`);
  return v.slice(0, 256);
}

function bool(obj: Record<string, unknown>, key: string, where: string): boolean | undefined {
  const v = obj[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw new CameraFileError(`${where}${key} must be true or false`);
  return v;
}

function parseBattery(v: unknown): BatteryReading | null {
  if (v === undefined || v === null) return null;
  if (!isObj(v)) throw new CameraFileError('battery must be an object or null');
  const percent = num(v, 'percent', 'battery.', { min: 0, max: 100 });
  if (percent === undefined) throw new CameraFileError('battery.percent is required when battery is given');
  const reading: BatteryReading = { percent, charging: bool(v, 'charging', 'battery.') ?? false };
  const extra = {
    voltage: num(v, 'voltage', 'battery.', { min: 0 }),
    temperatureC: num(v, 'temperatureC', 'battery.'),
    healthPercent: num(v, 'healthPercent', 'battery.', { min: 0, max: 100 }),
    cycleCount: num(v, 'cycleCount', 'battery.', { min: 0 }),
  };
  for (const [k, val] of Object.entries(extra))
    if (val !== undefined) (reading as unknown as Record<string, number>)[k] = val;
  return reading;
}

function parseLog(v: unknown): BatteryLogSpec[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new CameraFileError('batteryLog must be an array');
  return v.map((e, i) => {
    const where = `batteryLog[${i}].`;
    if (!isObj(e)) throw new CameraFileError(`batteryLog[${i}] must be an object`);
    const at = new Date(str(e, 'at', where) ?? NaN);
    if (Number.isNaN(at.getTime())) throw new CameraFileError(`${where}at must be an ISO-8601 time`);
    const percent = num(e, 'percent', where);
    if (percent === undefined) throw new CameraFileError(`${where}percent is required`);
    return { at, percent, charging: bool(e, 'charging', where) ?? false };
  });
}

function parseFaults(v: unknown): FaultSpec[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new CameraFileError('faults must be an array');
  return v.map((f, i) => {
    const where = `faults[${i}].`;
    if (!isObj(f)) throw new CameraFileError(`faults[${i}] must be an object`);
    const kind = f.kind;
    if (typeof kind !== 'string' || !FAULT_KINDS.includes(kind as FaultKind)) {
      throw new CameraFileError(`${where}kind must be one of ${FAULT_KINDS.join(', ')}`);
    }
    const spec: FaultSpec = { kind: kind as FaultKind };
    const p = str(f, 'path', where);
    if (p !== undefined) spec.path = p;
    const atByte = num(f, 'atByte', where, { min: 0 });
    if (atByte !== undefined) spec.atByte = atByte;
    const afterBytes = num(f, 'afterBytes', where, { min: 0 });
    if (afterBytes !== undefined) spec.afterBytes = afterBytes;
    const times = num(f, 'times', where, { min: 0 });
    if (times !== undefined) spec.times = times;
    if (kind !== 'detach' && spec.path === undefined) throw new CameraFileError(`${where}path is required for ${kind}`);
    return spec;
  });
}

export function parseCameraFile(text: string): CameraSpec {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new CameraFileError(`not valid JSON (${(err as Error).message})`);
  }
  if (!isObj(raw)) throw new CameraFileError('must hold a JSON object');
  const serial = raw.serial;
  if (typeof serial !== 'string') throw new CameraFileError('serial is required and must be a string');
  if (!PRINTABLE.test(serial)) throw new CameraFileError('serial must be 1–64 printable characters');
  return {
    serial,
    model: str(raw, 'model') ?? 'SimCam',
    firmware: str(raw, 'firmware') ?? 'unknown',
    battery: parseBattery(raw.battery),
    clockOffsetSeconds: num(raw, 'clockOffsetSeconds', '') ?? 0,
    throughputBytesPerSec: num(raw, 'throughputBytesPerSec', '', { min: 0 }) ?? 0,
    batteryLog: parseLog(raw.batteryLog),
    faults: parseFaults(raw.faults),
    settings: parseSettings(raw.settings),
    eventLog: parseEventLog(raw.eventLog),
  };
}
