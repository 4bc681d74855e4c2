/**
 * The JSON config file of the CLI contract. Every key is optional and has a default; anything
 * unknown, mistyped or impossible is refused with a ConfigError naming the key, which the CLI
 * turns into exit code 2.
 */
import type { RetryConfig } from './lib/failure-policy.js';
import { ConfigError } from './lib/config-error.js';
import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { isAgeIdentityText, parseRecipient } from './crypto/age.js';
import {
  defaultClockConfig,
  parseClockConfig,
  parseSettingsConfig,
  type ClockConfig,
  type SettingsConfig,
} from './camera-config.js';
import { parseDockPublicKey } from './crypto/signing.js';
import { MASS_STORAGE_PROFILES, parseVidPidKey } from '../drivers/mass-storage/profiles.js';

export type { RetryConfig } from './lib/failure-policy.js';

export interface Config {
  dataDir: string;
  sim: { dir: string | null };
  usb: {
    enabled: boolean;
    slots: Record<string, string>;
    allow: string[];
    drivers: Record<string, string>;
    pollIntervalMs: number;
    massStorage: { mount: boolean; automountRoots: string[]; folders: string[]; profiles: Record<string, string> };
  };
  ingest: {
    concurrency: number;
    perCamera: number;
    readTimeoutMs: number;
    verifySource: boolean;
    deleteFromCamera: boolean;
    minFreeBytes: number;
    /** Write and verify staging files with O_DIRECT where the archive's filesystem allows it. */
    directIo: boolean;
    retry: RetryConfig;
  };
  battery: { shiftHours: number; sampleIntervalMs: number; keepDays: number };
  retention: { days: number; requireReplicated: boolean; sweepIntervalMs: number };
  custody: { checkpointEvery: number };
  replication: ReplicationConfig | null;
  encryption: { recipients: string[] } | null;
  daemon: { heartbeatIntervalMs: number };
  fleet: FleetConfig;
  log: { level: string; file: string | null; rotate: { size: string; frequency: string; keep: number } };
  /** Camera clock sync and settings profiles (camera-config.ts checks both sections). */
  clock: ClockConfig;
  settings: SettingsConfig | null;
  /** Who may be seen in the de-escalation statistics (dockd stages). */
  privacy: { perOfficerStatistics: boolean; minGroupSize: number };
}

export interface ReplicationConfig {
  endpoint: string | null;
  region: string;
  bucket: string;
  forcePathStyle: boolean;
  dockId: string;
  objectLock: { mode: 'COMPLIANCE' | 'GOVERNANCE'; days: number };
  credentialsFile: string | null;
  partSizeBytes: number;
  /** Objects above this size go up in parts, each with its own Content-MD5. */
  multipartThresholdBytes: number;
  retry: RetryConfig;
  /** How long the queue waits after an error retrying cannot fix (credentials, bucket). */
  blockedRetryMs: number;
}

export interface FleetConfig {
  /** How often a replicating dock publishes its state document; stale after three of these. */
  publishIntervalMs: number;
  /** dockId → the dock's Ed25519 public key (PEM or base64 of the raw 32 bytes), pinned. */
  keys: Record<string, string>;
}

export function defaultReplication(): ReplicationConfig {
  return {
    endpoint: null,
    region: 'us-east-1',
    bucket: 'evidence',
    forcePathStyle: true,
    dockId: os.hostname(),
    objectLock: { mode: 'COMPLIANCE', days: 30 },
    credentialsFile: null,
    partSizeBytes: 8 * 1024 * 1024,
    multipartThresholdBytes: 16 * 1024 * 1024,
    retry: { attempts: 1000, baseDelayMs: 1000, maxDelayMs: 300_000 },
    blockedRetryMs: 60_000,
  };
}

export function defaultConfig(): Config {
  return {
    dataDir: './var',
    sim: { dir: null },
    usb: {
      enabled: true,
      slots: {},
      allow: [],
      drivers: {},
      pollIntervalMs: 2000,
      massStorage: { mount: false, automountRoots: ['/media', '/run/media'], folders: ['DCIM'], profiles: {} },
    },
    ingest: {
      concurrency: 4,
      perCamera: 1,
      readTimeoutMs: 30_000,
      verifySource: false,
      deleteFromCamera: true,
      minFreeBytes: 1024 ** 3,
      directIo: false,
      retry: { attempts: 5, baseDelayMs: 1000, maxDelayMs: 60_000 },
    },
    battery: { shiftHours: 10, sampleIntervalMs: 60_000, keepDays: 400 },
    retention: { days: 0, requireReplicated: false, sweepIntervalMs: 3_600_000 },
    custody: { checkpointEvery: 100 },
    replication: null,
    encryption: null,
    daemon: { heartbeatIntervalMs: 2000 },
    fleet: { publishIntervalMs: 60_000, keys: {} },
    log: { level: 'info', file: null, rotate: { size: '100m', frequency: 'daily', keep: 30 } },
    clock: defaultClockConfig(),
    settings: null,
    privacy: { perOfficerStatistics: false, minGroupSize: 5 },
  };
}

/**
 * The longest delay a Node timer holds: setTimeout and setInterval take a larger one as 1 ms,
 * so a huge interval or timeout would fire a thousand times a second instead of never.
 */
export const TIMER_MAX_MS = 2 ** 31 - 1;
/** Day counts become dates (retention cut-offs, object-lock dates): a century keeps them dates. */
export const DAYS_MAX = 36_500;
/**
 * Keys that reach an object's prototype when copied or looked up: JSON.parse makes `__proto__`
 * an own key, which a plain merge would turn into the merged object's prototype.
 */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

type Rule =
  | { t: 'string'; nullable?: boolean; oneOf?: string[] }
  | { t: 'path'; nullable?: boolean }
  | { t: 'paths' }
  | { t: 'ms'; min: number }
  | { t: 'days'; min: number }
  | { t: 'bool' }
  | { t: 'int' | 'number'; min?: number; max?: number }
  | { t: 'strings' }
  | { t: 'stringMap' }
  | { t: 'object'; fields: Record<string, Rule>; nullable?: boolean }
  | { t: 'any-object'; nullable?: boolean };

/** A duration in milliseconds that ends up in a timer. */
const ms = (min: number): Rule => ({ t: 'ms', min });
const days = (min: number): Rule => ({ t: 'days', min });

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

const SCHEMA: Record<string, Rule> = {
  dataDir: { t: 'path' },
  sim: { t: 'object', fields: { dir: { t: 'path', nullable: true } } },
  usb: {
    t: 'object',
    fields: {
      enabled: { t: 'bool' },
      slots: { t: 'stringMap' },
      allow: { t: 'strings' },
      drivers: { t: 'stringMap' },
      pollIntervalMs: ms(100),
      massStorage: {
        t: 'object',
        fields: {
          mount: { t: 'bool' },
          automountRoots: { t: 'paths' },
          folders: { t: 'paths' },
          profiles: { t: 'stringMap' },
        },
      },
    },
  },
  ingest: {
    t: 'object',
    fields: {
      concurrency: { t: 'int', min: 1, max: 256 },
      perCamera: { t: 'int', min: 1, max: 64 },
      readTimeoutMs: ms(10),
      verifySource: { t: 'bool' },
      deleteFromCamera: { t: 'bool' },
      minFreeBytes: { t: 'int', min: 0 },
      directIo: { t: 'bool' },
      retry: {
        t: 'object',
        fields: {
          attempts: { t: 'int', min: 1, max: 1000 },
          baseDelayMs: ms(0),
          maxDelayMs: ms(0),
        },
      },
    },
  },
  battery: {
    t: 'object',
    fields: { shiftHours: { t: 'number', min: 0.5, max: 48 }, sampleIntervalMs: ms(100), keepDays: days(0) },
  },
  retention: {
    t: 'object',
    fields: { days: days(0), requireReplicated: { t: 'bool' }, sweepIntervalMs: ms(100) },
  },
  custody: { t: 'object', fields: { checkpointEvery: { t: 'int', min: 1 } } },
  replication: {
    t: 'object',
    nullable: true,
    fields: {
      endpoint: { t: 'string', nullable: true },
      region: { t: 'string' },
      bucket: { t: 'string' },
      forcePathStyle: { t: 'bool' },
      dockId: { t: 'string' },
      objectLock: {
        t: 'object',
        fields: { mode: { t: 'string', oneOf: ['COMPLIANCE', 'GOVERNANCE'] }, days: days(1 / 24 / 60) },
      },
      credentialsFile: { t: 'path', nullable: true },
      partSizeBytes: { t: 'int', min: 5 * 1024 * 1024 },
      multipartThresholdBytes: { t: 'int', min: 5 * 1024 * 1024 },
      retry: { t: 'object', fields: { attempts: { t: 'int', min: 1 }, baseDelayMs: ms(0), maxDelayMs: ms(0) } },
      blockedRetryMs: ms(100),
    },
  },
  encryption: { t: 'object', nullable: true, fields: { recipients: { t: 'strings' } } },
  daemon: { t: 'object', fields: { heartbeatIntervalMs: ms(50) } },
  fleet: {
    t: 'object',
    fields: { publishIntervalMs: { t: 'int', min: 100, max: 86_400_000 }, keys: { t: 'stringMap' } },
  },
  log: {
    t: 'object',
    fields: {
      level: { t: 'string', oneOf: LOG_LEVELS },
      file: { t: 'path', nullable: true },
      rotate: {
        t: 'object',
        fields: {
          size: { t: 'string' },
          frequency: { t: 'string', oneOf: ['daily', 'hourly'] },
          keep: { t: 'int', min: 1 },
        },
      },
    },
  },
  clock: { t: 'any-object' },
  settings: { t: 'any-object', nullable: true },
  privacy: {
    t: 'object',
    fields: { perOfficerStatistics: { t: 'bool' }, minGroupSize: { t: 'int', min: 1, max: 1_000_000 } },
  },
};

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function check(key: string, value: unknown, rule: Rule): void {
  const nullable = 'nullable' in rule && rule.nullable;
  if (value === null && nullable) return;
  switch (rule.t) {
    case 'string':
      if (typeof value !== 'string') throw new ConfigError(key, `must be a string, got ${describe(value)}`);
      if (rule.oneOf && !rule.oneOf.includes(value))
        throw new ConfigError(key, `must be one of ${rule.oneOf.join(', ')}, got "${value}"`);
      return;
    case 'path':
      if (typeof value !== 'string') throw new ConfigError(key, `must be a path, got ${describe(value)}`);
      if (value === '')
        throw new ConfigError(
          key,
          `must not be empty: give a path${nullable ? ', null' : ''} or leave the key out for the default`,
        );
      return;
    case 'paths':
      if (!Array.isArray(value) || value.some((s) => typeof s !== 'string'))
        throw new ConfigError(key, `must be an array of paths, got ${describe(value)}`);
      value.forEach((s, i) => {
        if (s === '') throw new ConfigError(`${key}[${i}]`, 'must not be empty: give a path ("." for the top folder)');
      });
      return;
    case 'ms':
      checkNumber(
        key,
        value,
        true,
        rule.min,
        TIMER_MAX_MS,
        'milliseconds (about 24.8 days), the longest a timer holds',
      );
      return;
    case 'days':
      checkNumber(key, value, false, rule.min, DAYS_MAX, 'days (a century)');
      return;
    case 'bool':
      if (typeof value !== 'boolean') throw new ConfigError(key, `must be true or false, got ${describe(value)}`);
      return;
    case 'int':
    case 'number':
      if (typeof value !== 'number' || !Number.isFinite(value))
        throw new ConfigError(key, `must be a number, got ${describe(value)}`);
      if (rule.t === 'int' && !Number.isInteger(value))
        throw new ConfigError(key, `must be a whole number, got ${value}`);
      if (rule.min !== undefined && value < rule.min)
        throw new ConfigError(key, `must be at least ${rule.min}, got ${value}`);
      if (rule.max !== undefined && value > rule.max)
        throw new ConfigError(key, `must be at most ${rule.max}, got ${value}`);
      return;
    case 'strings':
      if (!Array.isArray(value) || value.some((s) => typeof s !== 'string'))
        throw new ConfigError(key, `must be an array of strings, got ${describe(value)}`);
      return;
    case 'stringMap':
      if (!isPlainObject(value) || Object.values(value).some((s) => typeof s !== 'string'))
        throw new ConfigError(key, `must be an object of strings, got ${describe(value)}`);
      return;
    case 'any-object':
      if (!isPlainObject(value)) throw new ConfigError(key, `must be an object, got ${describe(value)}`);
      return;
    case 'object':
      if (!isPlainObject(value)) throw new ConfigError(key, `must be an object, got ${describe(value)}`);
      for (const [k, v] of Object.entries(value)) {
        const sub = Object.hasOwn(rule.fields, k) ? rule.fields[k] : undefined;
        if (!sub) throw new ConfigError(`${key}.${k}`, 'unknown key');
        check(`${key}.${k}`, v, sub);
      }
  }
}

function checkNumber(key: string, value: unknown, whole: boolean, min: number, max: number, unit: string): void {
  if (typeof value !== 'number' || !Number.isFinite(value))
    throw new ConfigError(key, `must be a number, got ${describe(value)}`);
  if (whole && !Number.isInteger(value)) throw new ConfigError(key, `must be a whole number, got ${value}`);
  if (value < min) throw new ConfigError(key, `must be at least ${min}, got ${value}`);
  if (value > max) throw new ConfigError(key, `must be at most ${max} ${unit}, got ${value}`);
}

/** Refuses prototype-reaching keys at any depth, arrays included, before anything reads the file. */
function refuseForbiddenKeys(value: unknown, key: string): void {
  if (Array.isArray(value)) return value.forEach((v, i) => refuseForbiddenKeys(v, `${key}[${i}]`));
  if (typeof value !== 'object' || value === null) return;
  for (const k of Object.keys(value)) {
    const at = key ? `${key}.${k}` : k;
    if (FORBIDDEN_KEYS.has(k)) throw new ConfigError(at, `"${k}" is not allowed as a key anywhere in the config`);
    refuseForbiddenKeys((value as Record<string, unknown>)[k], at);
  }
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `"${v.length > 40 ? v.slice(0, 40) + '…' : v}"`;
  return typeof v === 'object' ? 'an object' : `${typeof v} ${String(v)}`;
}

function merge<T>(base: T, over: Record<string, unknown>): T {
  const out: Record<string, unknown> = { ...(base as Record<string, unknown>) };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = isPlainObject(b) && isPlainObject(v) ? merge(b, v) : v;
  }
  return out as T;
}

/** Validates raw JSON against the schema and merges it over the defaults. */
export function parseConfig(raw: unknown, baseDir = process.cwd()): Config {
  if (!isPlainObject(raw)) throw new ConfigError('(file)', `must hold a JSON object, got ${describe(raw)}`);
  refuseForbiddenKeys(raw, '');
  for (const [k, v] of Object.entries(raw)) {
    const rule = Object.hasOwn(SCHEMA, k) ? SCHEMA[k] : undefined;
    if (!rule) throw new ConfigError(k, 'unknown key');
    check(k, v, rule);
  }
  const withReplication = isPlainObject(raw.replication)
    ? { ...raw, replication: merge(defaultReplication(), raw.replication) }
    : raw;
  const cfg = merge(defaultConfig(), withReplication);
  cfg.clock = parseClockConfig(raw.clock);
  cfg.settings = parseSettingsConfig(raw.settings);
  for (const [key, retry] of [
    ['ingest.retry', cfg.ingest.retry],
    ['replication.retry', cfg.replication?.retry],
  ] as const) {
    if (retry && retry.maxDelayMs < retry.baseDelayMs)
      throw new ConfigError(`${key}.maxDelayMs`, `must not be below ${key}.baseDelayMs`);
  }
  // Relative paths in a config file mean relative to that file, as an admin reading it expects.
  cfg.dataDir = path.resolve(baseDir, cfg.dataDir);
  if (cfg.sim.dir) cfg.sim.dir = path.resolve(baseDir, cfg.sim.dir);
  if (cfg.log.file) cfg.log.file = path.resolve(baseDir, cfg.log.file);
  if (!/^\d+[kmg]?$/i.test(cfg.log.rotate.size))
    throw new ConfigError('log.rotate.size', `must be a size such as "100m", got "${cfg.log.rotate.size}"`);
  if (cfg.encryption) {
    if (cfg.encryption.recipients.length === 0)
      throw new ConfigError(
        'encryption.recipients',
        'needs at least one age1… public key (or remove the encryption section)',
      );
    cfg.encryption.recipients.forEach((r, i) => {
      try {
        parseRecipient(r);
      } catch (err) {
        throw new ConfigError(`encryption.recipients[${i}]`, (err as Error).message);
      }
    });
  }
  checkFleetKeys(cfg.fleet.keys);
  checkMassStorageProfiles(cfg.usb.massStorage.profiles);
  if (cfg.replication?.credentialsFile)
    cfg.replication.credentialsFile = path.resolve(baseDir, cfg.replication.credentialsFile);
  if (cfg.replication && !/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(cfg.replication.bucket)) {
    throw new ConfigError('replication.bucket', `"${cfg.replication.bucket}" is not a valid S3 bucket name`);
  }
  if (cfg.replication?.endpoint) {
    try {
      new URL(cfg.replication.endpoint);
    } catch {
      throw new ConfigError('replication.endpoint', `"${cfg.replication.endpoint}" is not a URL`);
    }
  }
  return cfg;
}

/** A pinned key that does not parse would make every signature of its dock look forged. */
function checkFleetKeys(keys: Record<string, string>): void {
  for (const [dockId, text] of Object.entries(keys)) {
    if (!dockId.trim()) throw new ConfigError('fleet.keys', 'a dock id must not be empty');
    try {
      parseDockPublicKey(text);
    } catch (err) {
      throw new ConfigError(`fleet.keys.${dockId}`, (err as Error).message);
    }
  }
}

/** `usb.massStorage.profiles`: each key a VID:PID, each value a row of the driver's profile table. */
function checkMassStorageProfiles(profiles: Record<string, string>): void {
  const names = MASS_STORAGE_PROFILES.map((p) => p.name);
  for (const [id, name] of Object.entries(profiles)) {
    const key = `usb.massStorage.profiles.${id}`;
    if (!parseVidPidKey(id)) throw new ConfigError(key, 'must be a "VID:PID" key such as "1209:0001"');
    if (!names.includes(name))
      throw new ConfigError(key, `unknown profile "${name}" (the mass-storage profile table has ${names.join(', ')})`);
  }
}

export interface ConfigSources {
  configPath?: string;
  dataDir?: string;
  simDir?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** Resolves `--config`, `$DOCKD_CONFIG`, `./dockd.config.json`, then defaults; CLI flags win. */
export function loadConfig(src: ConfigSources = {}): Config {
  // An empty flag is a mistyped one ("--data-dir $UNSET"), not a request for the config's value.
  if (src.dataDir === '') throw new ConfigError('--data-dir', 'must not be empty');
  if (src.simDir === '') throw new ConfigError('--sim-dir', 'must not be empty');
  if (src.configPath === '') throw new ConfigError('--config', 'must not be empty');
  const env = src.env ?? process.env;
  const cwd = src.cwd ?? process.cwd();
  const explicit = src.configPath ?? env.DOCKD_CONFIG;
  const file =
    explicit ?? (existsSync(path.join(cwd, 'dockd.config.json')) ? path.join(cwd, 'dockd.config.json') : undefined);
  let cfg: Config;
  if (file) {
    const abs = path.resolve(cwd, file);
    let text: string;
    try {
      text = readFileSync(abs, 'utf8');
    } catch (err) {
      throw new ConfigError('--config', `cannot read ${abs}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    // The dock must be write-only: a custodian's secret key has no business in its config.
    if (isAgeIdentityText(text))
      throw new ConfigError(
        '(file)',
        `${abs} holds an age secret key (AGE-SECRET-KEY-…); keep it on the custodian's machine, give dockd only the age1… public key`,
      );
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (err) {
      throw new ConfigError('(file)', `${abs} is not valid JSON: ${(err as Error).message}`);
    }
    cfg = parseConfig(raw, path.dirname(abs));
  } else {
    cfg = parseConfig({}, cwd);
  }
  if (src.dataDir) cfg.dataDir = path.resolve(cwd, src.dataDir);
  if (src.simDir) cfg.sim.dir = path.resolve(cwd, src.simDir);
  return cfg;
}
