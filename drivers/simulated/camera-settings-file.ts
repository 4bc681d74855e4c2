/**
 * The configuration side of a simulated camera (contracts/simulated-camera.md): the `settings` and
 * `eventLog` fields of camera.json, and the two files dockd writes into the slot, `settings.json`
 * and `clock.json`. Everything read here is as untrusted as the rest of camera.json.
 */
import { CAMERA_EVENT_TYPES, type CameraSettings } from '../types.js';
// A cycle with camera-file.ts, harmless: the error class is only used once both are loaded.
import { CameraFileError } from './camera-file-error.js';

export const SETTINGS_FILE = 'settings.json';
export const CLOCK_FILE = 'clock.json';

/** More keys than any camera menu has: a bigger object is a broken or hostile file. */
export const MAX_SETTINGS = 256;
const MAX_KEY = 64;
const MAX_VALUE = 256;

export interface EventLogSpec {
  at: Date;
  type: string;
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A flat object of strings, numbers and booleans; `where` names it in errors. */
export function parseSettings(v: unknown, where = 'settings'): CameraSettings | null {
  if (v === undefined || v === null) return null;
  if (!isObj(v)) throw new CameraFileError(`${where} must be an object of strings, numbers and booleans`);
  const keys = Object.keys(v);
  if (keys.length > MAX_SETTINGS)
    throw new CameraFileError(`${where} has ${keys.length} keys, more than ${MAX_SETTINGS}`);
  const out: CameraSettings = {};
  for (const k of keys) {
    if (k.length === 0 || k.length > MAX_KEY || /\p{Cc}/u.test(k))
      throw new CameraFileError(`${where}: key "${k.slice(0, MAX_KEY)}" must be 1–${MAX_KEY} printable characters`);
    const val = v[k];
    if (typeof val === 'string') out[k] = val.slice(0, MAX_VALUE);
    else if (typeof val === 'boolean') out[k] = val;
    else if (typeof val === 'number' && Number.isFinite(val)) out[k] = val;
    else throw new CameraFileError(`${where}.${k} must be a string, a number or true/false`);
  }
  return out;
}

export function parseEventLog(v: unknown): EventLogSpec[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new CameraFileError('eventLog must be an array');
  return v.map((e, i) => {
    const where = `eventLog[${i}]`;
    if (!isObj(e)) throw new CameraFileError(`${where} must be an object`);
    const at = typeof e.at === 'string' ? new Date(e.at) : new Date(NaN);
    if (Number.isNaN(at.getTime())) throw new CameraFileError(`${where}.at must be an ISO-8601 time`);
    if (typeof e.type !== 'string' || !(CAMERA_EVENT_TYPES as readonly string[]).includes(e.type)) {
      throw new CameraFileError(`${where}.type must be one of ${CAMERA_EVENT_TYPES.join(', ')}`);
    }
    return { at, type: e.type };
  });
}

/** `settings.json` as dockd wrote it; null when it is absent or unreadable (the camera ignores it then). */
export function parseSettingsOverlay(text: string | null): CameraSettings | null {
  if (text === null) return null;
  try {
    return parseSettings(JSON.parse(text), SETTINGS_FILE);
  } catch {
    return null;
  }
}
