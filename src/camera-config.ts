/**
 * The `clock` and `settings` sections of the config file: how the dock configures a camera.
 * Checked here, not by the generic schema of config.ts, because profiles are maps of the admin's
 * own setting names and `assign` refers to them by name.
 */
// A cycle with config.ts, harmless: ConfigError is only used once both modules are loaded.
import { ConfigError } from './lib/config-error.js';

export type ProfileValue = string | number | boolean;
export type SettingsProfile = Record<string, ProfileValue>;

export interface ClockConfig {
  /** Set a camera's clock at docking when its skew exceeds `maxSkewSeconds`. */
  sync: boolean;
  maxSkewSeconds: number;
}

export interface ProfileAssignment {
  serial?: string;
  model?: string;
  profile: string;
}

export interface SettingsConfig {
  profiles: Record<string, SettingsProfile>;
  /** Ordered: the first entry that matches a camera gives its profile. */
  assign: ProfileAssignment[];
}

export function defaultClockConfig(): ClockConfig {
  return { sync: true, maxSkewSeconds: 2 };
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `"${v.length > 40 ? v.slice(0, 40) + '…' : v}"`;
  return typeof v === 'object' ? 'an object' : `${typeof v} ${String(v)}`;
}

export function parseClockConfig(raw: unknown): ClockConfig {
  const cfg = defaultClockConfig();
  if (raw === undefined) return cfg;
  if (!isPlainObject(raw)) throw new ConfigError('clock', `must be an object, got ${describe(raw)}`);
  for (const [k, v] of Object.entries(raw)) {
    if (k === 'sync') {
      if (typeof v !== 'boolean') throw new ConfigError('clock.sync', `must be true or false, got ${describe(v)}`);
      cfg.sync = v;
    } else if (k === 'maxSkewSeconds') {
      if (typeof v !== 'number' || !Number.isFinite(v))
        throw new ConfigError('clock.maxSkewSeconds', `must be a number, got ${describe(v)}`);
      if (v < 0) throw new ConfigError('clock.maxSkewSeconds', `must be at least 0, got ${v}`);
      cfg.maxSkewSeconds = v;
    } else {
      throw new ConfigError(`clock.${k}`, 'unknown key');
    }
  }
  return cfg;
}

function parseProfile(name: string, raw: unknown): SettingsProfile {
  const key = `settings.profiles.${name}`;
  if (!isPlainObject(raw))
    throw new ConfigError(key, `must be an object of settings (strings, numbers, true/false), got ${describe(raw)}`);
  const out: SettingsProfile = {};
  for (const [k, v] of Object.entries(raw)) {
    if (typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v))) out[k] = v;
    else throw new ConfigError(`${key}.${k}`, `must be a string, a number or true/false, got ${describe(v)}`);
  }
  return out;
}

function parseAssignment(raw: unknown, i: number, profiles: Record<string, SettingsProfile>): ProfileAssignment {
  const key = `settings.assign[${i}]`;
  if (!isPlainObject(raw))
    throw new ConfigError(
      key,
      `must be an object such as {"model": "SimCam 2", "profile": "standard"}, got ${describe(raw)}`,
    );
  const out: Partial<ProfileAssignment> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (k !== 'serial' && k !== 'model' && k !== 'profile')
      throw new ConfigError(`${key}.${k}`, 'unknown key (serial, model, profile)');
    if (typeof v !== 'string' || v.length === 0)
      throw new ConfigError(`${key}.${k}`, `must be a non-empty string, got ${describe(v)}`);
    out[k] = v;
  }
  if (out.serial !== undefined && out.model !== undefined)
    throw new ConfigError(key, 'names both serial and model: give one (or neither, for every camera)');
  if (out.profile === undefined) throw new ConfigError(`${key}.profile`, 'is required');
  if (!Object.hasOwn(profiles, out.profile)) {
    const known = Object.keys(profiles);
    throw new ConfigError(
      `${key}.profile`,
      `unknown profile "${out.profile}" (${known.length ? `settings.profiles has ${known.join(', ')}` : 'settings.profiles is empty'})`,
    );
  }
  return out as ProfileAssignment;
}

/** null when the config has no `settings` section: dockd then only reads settings. */
export function parseSettingsConfig(raw: unknown): SettingsConfig | null {
  if (raw === undefined || raw === null) return null;
  if (!isPlainObject(raw))
    throw new ConfigError('settings', `must be an object with profiles and assign, got ${describe(raw)}`);
  for (const k of Object.keys(raw))
    if (k !== 'profiles' && k !== 'assign') throw new ConfigError(`settings.${k}`, 'unknown key');
  const profiles: Record<string, SettingsProfile> = {};
  if (raw.profiles !== undefined) {
    if (!isPlainObject(raw.profiles))
      throw new ConfigError('settings.profiles', `must be an object of named profiles, got ${describe(raw.profiles)}`);
    for (const [name, p] of Object.entries(raw.profiles)) profiles[name] = parseProfile(name, p);
  }
  let assign: ProfileAssignment[] = [];
  if (raw.assign !== undefined) {
    if (!Array.isArray(raw.assign))
      throw new ConfigError('settings.assign', `must be an array, got ${describe(raw.assign)}`);
    assign = raw.assign.map((a, i) => parseAssignment(a, i, profiles));
  }
  return { profiles, assign };
}

/** The camera's profile: the first assignment whose serial or model matches, or that names neither. */
export function profileFor(
  settings: SettingsConfig | null,
  camera: { serial: string; model: string },
): { name: string; values: SettingsProfile } | null {
  if (!settings) return null;
  for (const a of settings.assign) {
    const matches =
      a.serial !== undefined ? a.serial === camera.serial : a.model !== undefined ? a.model === camera.model : true;
    if (matches) return { name: a.profile, values: settings.profiles[a.profile]! };
  }
  return null;
}
