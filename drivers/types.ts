/**
 * The camera driver contract. A driver knows one protocol and nothing about queues, SQLite or
 * the archive. It is handed a device description and a logger and returns a CameraSession.
 *
 * Rules every driver keeps:
 * - Everything a camera reports (serials, names, sizes, strings, times) is untrusted. Drivers
 *   return it as reported, bounded in length; callers sanitise before using it on the host.
 * - Every method may reject with a DriverError. `kind` tells the caller what to do:
 *   `transient` retry later, `permanent` give up on this recording (it stays on the camera),
 *   `deviceGone` stop touching the camera until it docks again. Any other error is treated as
 *   transient by callers, but drivers translate what they can.
 * - After `close()` or after the device went away, every method rejects with `deviceGone`, and a
 *   stream returned by `read()` is destroyed with a `deviceGone` error.
 * - `read(id, offset)` streams the recording's bytes starting at `offset`. A driver that cannot
 *   seek sets `capabilities.resume` to false and then rejects any offset other than 0 with a
 *   `permanent` error. Streams honour `signal`: when it aborts, the read stops touching the
 *   device before the returned stream is destroyed, so a retried read never races a stale one.
 * - Never splice: the first byte of a stream from `read(id, offset)` is the recording's byte at
 *   `offset`, or the call rejects. A driver never serves an offset it cannot reach from some
 *   other position, since the caller would append those bytes after the ones it already holds.
 *   A driver that can seek in some recordings but not in others keeps `resume` true and, for
 *   the others, restarts the transfer itself: it reads the recording from byte 0 and discards
 *   the bytes before `offset` (the PTP driver does so past 4 GiB on a camera without
 *   GetPartialObject64, whose 32-bit GetPartialObject cannot name such an offset). That costs
 *   the same device reads as restarting the copy, writes only the missing bytes, and needs no
 *   per-recording capability. Whether the recording is still the one copied before is the
 *   caller's to check before every resume (DESIGN.md invariant 7), whatever the driver.
 * - `list()` yields recordings lazily so a camera with 100,000 files never needs 100,000 objects
 *   held at once by the driver. Whatever it finds and cannot offer as a recording (a link, a
 *   device node, a file that vanished or cannot be stat'ed, a folder too deep or unreadable) it
 *   reports to `onUnreadable`, never skipping it silently; only what the protocol defines as not
 *   footage (a simulated camera's camera.json, names starting with ".") is left out unreported.
 */
import type { Readable } from 'node:stream';

export type DriverErrorKind = 'transient' | 'permanent' | 'deviceGone';

export class DriverError extends Error {
  readonly kind: DriverErrorKind;
  /** Short machine-readable reason, e.g. `io-error`, `stall`, `ptp-0x2009`, `ENOENT`. */
  readonly code: string;

  constructor(kind: DriverErrorKind, code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DriverError';
    this.kind = kind;
    this.code = code;
  }

  get transient(): boolean {
    return this.kind === 'transient';
  }
  get permanent(): boolean {
    return this.kind === 'permanent';
  }
  get deviceGone(): boolean {
    return this.kind === 'deviceGone';
  }
}

export function isDriverError(err: unknown): err is DriverError {
  return err instanceof DriverError;
}

/** What a bus knows about a device before any driver opened it. */
export interface DeviceInfo {
  bus: 'sim' | 'usb';
  /** Stable key for this attachment on its bus: a sim slot folder, a USB port path. */
  key: string;
  /** The dock slot name the device sits in. */
  slot: string;
  vendorId?: number;
  productId?: number;
  manufacturer?: string;
  product?: string;
  serialNumber?: string;
  busNumber?: number;
  portPath?: string;
  /** bInterfaceClass/SubClass/Protocol of each interface of the active configuration. */
  interfaces?: Array<{ number: number; class: number; subclass: number; protocol: number }>;
  /** Bus-specific extras (e.g. the sim slot's folder). */
  path?: string;
}

export interface CameraIdentity {
  serial: string;
  model: string;
  firmware: string;
}

export interface BatteryReading {
  percent: number;
  charging: boolean;
  voltage?: number;
  temperatureC?: number;
  healthPercent?: number;
  cycleCount?: number;
}

/**
 * One entry of the camera's own event log. Times are the camera's clock; the caller corrects
 * them by the measured skew. `type` is open-ended: `battery` today, mode changes tomorrow.
 */
export interface DeviceLogEntry {
  at: Date;
  type: string;
  percent?: number;
  charging?: boolean;
  [field: string]: unknown;
}

export interface RecordingEntry {
  /**
   * The recording's id on the camera, stable while it stays there (a relative path, a handle).
   * Opaque to callers: they hand it back to `read()` and `delete()` unchanged.
   */
  id: string;
  /**
   * The original path as the camera names it, `/`-separated. Untrusted. Drivers whose names are
   * bytes (file systems) give a name that is not valid UTF-8 in the lossless encoding of
   * `camera-names.ts` (docs/recording-names.md): a UTF-8 name is itself, each other byte 0xXY is
   * U+F7XY. Two different names never give the same path, and the path holds no lone surrogate.
   */
  path: string;
  bytes: number;
  modifiedAt: Date | null;
  /**
   * What this content is, as far as the device can say without reading it: a string that
   * changes whenever the file may have changed (its size, modification time, and whatever else
   * the device offers cheaply: an inode, an object's capture date). Callers bind a copy to it
   * and compare it for equality only; they never parse it. A file replaced under the same name
   * must not keep its identity, so a driver puts in it everything that a replacement changes.
   */
  identity: string;
}

/** Something a listing found on the camera that cannot be offloaded; see `ListOptions`. */
export interface UnreadableEntry {
  /** Its path, encoded as `RecordingEntry.path` is. Untrusted. */
  path: string;
  /** `symlink`, `not-a-file`, `vanished`, `too-deep`, `outside` or `unreadable` (see `code`). */
  reason: UnreadableReason;
  /** The file system's error code when it gave one, e.g. `EACCES`. */
  code?: string;
}

export type UnreadableReason = 'symlink' | 'not-a-file' | 'vanished' | 'too-deep' | 'outside' | 'unreadable';

export interface ListOptions {
  /** Called for each entry the listing passes over; the caller logs and counts it. */
  onUnreadable?(entry: UnreadableEntry): void;
}

/**
 * Chunk buffers lent to a read: the driver takes one to read each chunk into, and whoever is done
 * with the chunk gives it back. dockd's pool (src/archive/buffer-pool.ts) is one.
 */
export interface ChunkBuffers {
  /** A buffer of at least `bytes` bytes, its contents undefined. */
  take(bytes: number): Buffer;
  /** Gives back the buffer a chunk (or any view into it) was read into. */
  give(chunk: Buffer): void;
}

export interface ReadOptions {
  signal?: AbortSignal;
  /**
   * Where the stream may take its chunk buffers from; the reader gives each chunk back once it
   * is done with it. A driver that ignores it allocates its own.
   */
  buffers?: ChunkBuffers;
}

export interface SessionCapabilities {
  /** `read()` accepts offsets other than 0. */
  resume: boolean;
  /**
   * `delete()` may succeed. It can turn false during a session, once the camera refused
   * deleting in a way that would refuse every recording (PTP: OperationNotSupported); it never
   * turns true again before the next docking.
   */
  delete: boolean;
  /**
   * `setClock()` sets the camera's clock. dockd sets it at docking, before listing: a driver
   * whose way of setting the time could change what `list()` returns (a time file among the
   * recordings) must keep that file out of its listing. Absent = false.
   */
  clock?: boolean;
  /** `settings()` reads and `applySettings()` changes the camera's settings. Absent = false. */
  settings?: boolean;
  /** `eventLog()` returns the camera's power, display and recording events. Absent = false. */
  eventLog?: boolean;
  /**
   * Applying settings may change what `list()` returns or interrupt a read (a camera that
   * reboots, reformats or remounts its storage to take them): dockd then applies them only
   * once every recording is off the camera. Absent = false.
   */
  settingsDisturbRecordings?: boolean;
}

/** A camera setting as the camera reports it: settings are flat, one scalar per key. */
export type SettingValue = string | number | boolean;
export type CameraSettings = Record<string, SettingValue>;

/** The event types a camera's own event log may hold; anything else is dropped by the caller. */
export const CAMERA_EVENT_TYPES = [
  'power.on',
  'power.off',
  'display.on',
  'display.off',
  'recording.start',
  'recording.stop',
] as const;
export type CameraEventType = (typeof CAMERA_EVENT_TYPES)[number];

/** One entry of the camera's event log, with the camera's own timestamp as it was written. */
export interface CameraEvent {
  at: Date;
  type: string;
}

export interface CameraSession {
  readonly capabilities: SessionCapabilities;
  identity(): Promise<CameraIdentity>;
  /** What the camera reports now; null when it reports no battery. */
  battery(): Promise<BatteryReading | null>;
  /** The camera's current clock; absent when the driver cannot read it. */
  clock?(): Promise<Date>;
  /** Battery and mode events the camera kept since it was last docked. */
  deviceLog?(): Promise<DeviceLogEntry[]>;
  /**
   * Power, display and recording events the camera kept, with the timestamps they were written
   * with: a camera whose log is a ring buffer hands the same entries again at its next docking,
   * unchanged even when its clock was set in between.
   */
  eventLog?(): Promise<CameraEvent[]>;
  /** Sets the camera's clock to `date` (the dock's clock). Present only with `capabilities.clock`. */
  setClock?(date: Date): Promise<void>;
  /** The camera's current settings, untrusted like every other camera string. */
  settings?(): Promise<CameraSettings>;
  /**
   * Changes the given settings and leaves the others as they are. Rejects with a `permanent`
   * DriverError whose message names the key when the camera refuses a key or a value.
   */
  applySettings?(partial: CameraSettings): Promise<void>;
  list(options?: ListOptions): AsyncIterable<RecordingEntry>;
  read(id: string, offset: number, options?: ReadOptions): Promise<Readable>;
  /**
   * What the camera holds under `id` now, described as `list()` would; null when it holds
   * nothing there any more. Callers ask before they delete a recording and after they copied
   * one, to learn whether the file is still the one they copied.
   */
  stat(id: string): Promise<RecordingEntry | null>;
  /**
   * Removes the recording from the camera. Resolves only once the removal is on the device
   * itself, not in a cache of this machine: a camera pulled out right after must not keep it,
   * and custody records the deletion as soon as this resolves.
   *
   * With `identity`, the driver removes the file only if it still has that identity (as
   * `list()` and `stat()` describe it), as close to atomically as the device allows, and rejects
   * with a `permanent` DriverError of code `changed` otherwise, leaving the file in place. A
   * driver whose ids name one object for good (a PTP handle within a session) may ignore it.
   */
  delete(id: string, identity?: string): Promise<void>;
  close(): Promise<void>;
}

/** The subset of a pino logger a driver may use; drivers never import a global logger. */
export interface DriverLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  child(bindings: Record<string, unknown>): DriverLogger;
}

export interface CameraDriver {
  readonly name: string;
  /** 0 = not mine; higher scores win when several drivers match. */
  matches(device: DeviceInfo): number;
  open(device: DeviceInfo, log: DriverLogger): Promise<CameraSession>;
}

/** Bounds on camera strings so a hostile device cannot make us hold megabytes of "serial". */
export const MAX_CAMERA_STRING = 256;

export function boundString(value: unknown, max = MAX_CAMERA_STRING): string {
  const s = typeof value === 'string' ? value : String(value ?? '');
  return s.length > max ? s.slice(0, max) : s;
}
