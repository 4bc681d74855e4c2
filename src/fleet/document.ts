/**
 * The state document a replicating dock publishes at `<dockId>/_dock/state.json` for `dockd
 * fleet`, and its reading back. Whoever can write to the bucket can write this file, so a
 * document read back is untrusted input: every field is checked, every list and string bounded,
 * and only the custody head's signature says anything about who wrote it.
 */
import { safeComponent } from '../archive/names.js';

export const STATE_FORMAT = 'dockd-dock-state/1';
/** A document above this is not a dock's: refused before parsing. */
export const MAX_DOCUMENT_BYTES = 4 * 1024 * 1024;
export const MAX_CAMERAS = 500;
/** Battery history per camera: 3-hour lows over the last week at the dock. */
export const SERIES_BUCKET_MS = 3 * 3_600_000;
export const SERIES_POINTS = 56;

export type BatteryStatus = 'ok' | 'short' | 'degraded' | 'unknown';
const STATUSES: readonly BatteryStatus[] = ['ok', 'short', 'degraded', 'unknown'];

export interface DockCamera {
  serial: string;
  model: string | null;
  docked: boolean;
  lastSeenAt: string;
  clockSkewSeconds: number | null;
  battery: {
    status: BatteryStatus;
    percent: number | null;
    charging: boolean | null;
    healthPercent: number | null;
    projectedRuntimeHours: number | null;
    drainPercentPerHour: number | null;
  } | null;
  batteryLows: BatteryLows | null;
}

/**
 * The lowest battery percent in each 3-hour bucket (SERIES_BUCKET_MS), the first starting at
 * `from` (epoch ms); null where the dock has no sample. Compact on purpose: a dock publishes it
 * for every camera every interval, and the bucket keeps every version.
 */
export interface BatteryLows {
  from: number;
  percent: Array<number | null>;
}

export function lowsToPoints(lows: BatteryLows | null): Array<{ at: number; percent: number }> {
  if (!lows) return [];
  return lows.percent.flatMap((p, i) => (p === null ? [] : [{ at: lows.from + i * SERIES_BUCKET_MS, percent: p }]));
}

export interface CustodyHead {
  seq: number;
  hash: string;
  /** Ed25519 over checkpointMessage(seq, hash), base64: the signature of a custody checkpoint. */
  signature: string;
  keyId: string;
}

export interface DockState {
  format: string;
  dockId: string;
  version: string;
  startedAt: string;
  publishedAt: string;
  /** The daemon's last heartbeat in its own store: far behind publishedAt, the store is failing. */
  heartbeatAt: string | null;
  /** Set by the last document of a graceful stop. */
  stoppedAt: string | null;
  /** A reader calls the dock stale after three of these without a new document. */
  publishIntervalMs: number;
  shiftHours: number;
  docked: string[];
  queue: { pending: number; active: number; failed: number; verified: number };
  replication: { count: number; bytes: number; oldestAt: string | null };
  archive: { freeBytes: number | null };
  cameras: DockCamera[];
  custodyHead: CustodyHead | null;
  /** Base64 of the dock's raw 32-byte Ed25519 public key. */
  publicKey: string;
}

/** Where a dock's document lives: under the same prefix as its recordings. */
export function stateKey(dockId: string): string {
  return `${dockPrefix(dockId)}/_dock/state.json`;
}

export function dockPrefix(dockId: string): string {
  return safeComponent(dockId, 64);
}

export class StateDocumentError extends Error {}

const PRINTABLE = /^[^\p{Cc}]*$/u;

function str(v: unknown, what: string, max: number): string {
  if (typeof v !== 'string' || v.length > max || !PRINTABLE.test(v))
    throw new StateDocumentError(`${what} is not a printable string of at most ${max} characters`);
  return v;
}

function optStr(v: unknown, what: string, max: number): string | null {
  return v === null || v === undefined ? null : str(v, what, max);
}

function time(v: unknown, what: string): string {
  const s = str(v, what, 40);
  if (!Number.isFinite(Date.parse(s))) throw new StateDocumentError(`${what} is not a time`);
  return s;
}

function optTime(v: unknown, what: string): string | null {
  return v === null || v === undefined ? null : time(v, what);
}

function num(v: unknown, what: string, min = -Infinity, max = Infinity): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max)
    throw new StateDocumentError(`${what} is not a number in [${min}, ${max}]`);
  return v;
}

function optNum(v: unknown, what: string, min?: number, max?: number): number | null {
  return v === null || v === undefined ? null : num(v, what, min, max);
}

function obj(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new StateDocumentError(`${what} is not an object`);
  return v as Record<string, unknown>;
}

function list(v: unknown, what: string, max: number): unknown[] {
  if (!Array.isArray(v) || v.length > max) throw new StateDocumentError(`${what} is not a list of at most ${max}`);
  return v;
}

function camera(v: unknown, i: number): DockCamera {
  const c = obj(v, `cameras[${i}]`);
  const b = c.battery === null || c.battery === undefined ? null : obj(c.battery, `cameras[${i}].battery`);
  const status = b ? (STATUSES.includes(b.status as BatteryStatus) ? (b.status as BatteryStatus) : 'unknown') : null;
  const l =
    c.batteryLows === null || c.batteryLows === undefined ? null : obj(c.batteryLows, `cameras[${i}].batteryLows`);
  const lows = l
    ? {
        from: num(l.from, 'batteryLows.from', 0),
        percent: list(l.percent, 'batteryLows.percent', SERIES_POINTS).map((p) =>
          p === null ? null : num(p, 'a battery low', 0, 100),
        ),
      }
    : null;
  return {
    serial: str(c.serial, `cameras[${i}].serial`, 64),
    model: optStr(c.model, `cameras[${i}].model`, 128),
    docked: c.docked === true,
    lastSeenAt: time(c.lastSeenAt, `cameras[${i}].lastSeenAt`),
    clockSkewSeconds: optNum(c.clockSkewSeconds, `cameras[${i}].clockSkewSeconds`),
    battery:
      b && status
        ? {
            status,
            percent: optNum(b.percent, 'battery.percent', 0, 100),
            charging: typeof b.charging === 'boolean' ? b.charging : null,
            healthPercent: optNum(b.healthPercent, 'battery.healthPercent', 0, 200),
            projectedRuntimeHours: optNum(b.projectedRuntimeHours, 'battery.projectedRuntimeHours', 0),
            drainPercentPerHour: optNum(b.drainPercentPerHour, 'battery.drainPercentPerHour'),
          }
        : null,
    batteryLows: lows,
  };
}

/** Reads a document fetched from the store; throws StateDocumentError saying what is wrong. */
export function parseDockState(text: string): DockState {
  if (text.length > MAX_DOCUMENT_BYTES) throw new StateDocumentError(`larger than ${MAX_DOCUMENT_BYTES} bytes`);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new StateDocumentError('not JSON');
  }
  const d = obj(raw, 'the document');
  if (d.format !== STATE_FORMAT) throw new StateDocumentError(`format is not ${STATE_FORMAT}`);
  const q = obj(d.queue, 'queue');
  const r = obj(d.replication, 'replication');
  const a = obj(d.archive, 'archive');
  const h = d.custodyHead === null || d.custodyHead === undefined ? null : obj(d.custodyHead, 'custodyHead');
  const count = (v: unknown, what: string) => num(v, what, 0, Number.MAX_SAFE_INTEGER);
  return {
    format: STATE_FORMAT,
    dockId: str(d.dockId, 'dockId', 128),
    version: str(d.version, 'version', 64),
    startedAt: time(d.startedAt, 'startedAt'),
    publishedAt: time(d.publishedAt, 'publishedAt'),
    heartbeatAt: optTime(d.heartbeatAt, 'heartbeatAt'),
    stoppedAt: optTime(d.stoppedAt, 'stoppedAt'),
    publishIntervalMs: num(d.publishIntervalMs, 'publishIntervalMs', 100, 86_400_000),
    shiftHours: num(d.shiftHours, 'shiftHours', 0, 48),
    docked: list(d.docked, 'docked', MAX_CAMERAS).map((s, i) => str(s, `docked[${i}]`, 64)),
    queue: {
      pending: count(q.pending, 'queue.pending'),
      active: count(q.active, 'queue.active'),
      failed: count(q.failed, 'queue.failed'),
      verified: count(q.verified, 'queue.verified'),
    },
    replication: {
      count: count(r.count, 'replication.count'),
      bytes: count(r.bytes, 'replication.bytes'),
      oldestAt: optTime(r.oldestAt, 'replication.oldestAt'),
    },
    archive: { freeBytes: optNum(a.freeBytes, 'archive.freeBytes', 0) },
    // One camera the dock could not describe must not hide the dock and its other cameras.
    cameras: list(d.cameras, 'cameras', MAX_CAMERAS).flatMap((c, i) => {
      try {
        return [camera(c, i)];
      } catch {
        return [];
      }
    }),
    custodyHead: h
      ? {
          seq: num(h.seq, 'custodyHead.seq', 0, Number.MAX_SAFE_INTEGER),
          hash: str(h.hash, 'custodyHead.hash', 128),
          signature: str(h.signature, 'custodyHead.signature', 200),
          keyId: str(h.keyId, 'custodyHead.keyId', 64),
        }
      : null,
    publicKey: str(d.publicKey, 'publicKey', 64),
  };
}
