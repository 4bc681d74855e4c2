/**
 * What a mass-storage camera with a profile (profiles.ts) offers beyond its recordings: its clock,
 * settings and event log, each through a file its profile names on the volume. This class only
 * reads and writes those files under the volume's root; the session checks the device is still
 * there and turns file system errors into DriverErrors.
 *
 * The clock: the profile's time file holds the camera's clock at the moment it was connected.
 * The camera writes its own there when it is connected and, when it is unplugged, sets its clock
 * to what the file then holds plus the time it spent connected. So dockd reads the camera's clock
 * as that time plus the time since the connection, and sets it by writing the dock's clock at the
 * connection: both need to know when that was, `connectedAt` (dock clock, ms), which the kernel
 * gives (sysfs `power/connected_duration`).
 */
import {
  DriverError,
  type CameraEvent,
  type CameraSettings,
  type DriverLogger,
  type SessionCapabilities,
} from '../types.js';
import { MAX_EVENT_LOG_ENTRIES, parseEventLog } from './event-log.js';
import { readCameraFile, writeCameraFile, type AtomicWriteHooks } from './file-io.js';
import { formatLocalTime, parseLocalTime } from './local-time.js';
import { profileFiles, type MassStorageProfile } from './profiles.js';
import { encodeSettings, parseSettingsFile, updateSettingsFile } from './settings-file.js';

/** A settings file bigger than this is not one: it is refused, never parsed. */
export const MAX_SETTINGS_FILE = 64 * 1024;
/** A time file holds one line. */
const MAX_TIME_FILE = 256;
/** Of a bigger event log only the end is read: the newest entries, which a log appends last. */
export const MAX_EVENT_LOG_FILE = 4 * 1024 * 1024;

export interface CameraFilesOptions {
  /** The volume's root, as realpath gives it. */
  root: Buffer;
  profile: MassStorageProfile;
  /** When the camera was connected, on the dock's clock (ms). */
  connectedAt: number;
  log: DriverLogger;
  now?: () => number;
  writeHooks?: AtomicWriteHooks;
}

export class CameraFiles {
  private readonly files: Set<string>;
  private readonly now: () => number;

  constructor(private readonly o: CameraFilesOptions) {
    this.files = new Set(profileFiles(o.profile).map(folded));
    this.now = o.now ?? Date.now;
  }

  get capabilities(): Partial<SessionCapabilities> {
    const p = this.o.profile;
    return {
      clock: p.timeFile !== undefined,
      settings: p.settingsFile !== undefined,
      eventLog: p.eventLog !== undefined,
      settingsDisturbRecordings: p.disturbsRecordings ?? false,
    };
  }

  /** Whether a path on the volume is one of the profile's files (FAT compares names case-blind). */
  isCameraFile(rel: string): boolean {
    return this.files.has(folded(rel));
  }

  async clock(): Promise<Date> {
    const { path } = this.o.profile.timeFile!;
    const { bytes } = await readCameraFile(this.o.root, path, MAX_TIME_FILE);
    const at = parseLocalTime(bytes.toString('latin1').trim());
    if (!at) throw new DriverError('permanent', 'bad-time', `${path} holds no time as YYYY-MM-DD HH:MM:SS`);
    return new Date(at.getTime() + (this.now() - this.o.connectedAt));
  }

  async setClock(date: Date): Promise<void> {
    const { path } = this.o.profile.timeFile!;
    // The dock's clock at the moment the camera was connected, which the camera counts from;
    // rounded to the nearest second, which is all the file holds.
    const atConnection = new Date(date.getTime() - (this.now() - this.o.connectedAt) + 500);
    await writeCameraFile(this.o.root, path, Buffer.from(`${formatLocalTime(atConnection)}\n`), this.o.writeHooks);
  }

  async settings(): Promise<CameraSettings> {
    const { path, settings } = this.o.profile.settingsFile!;
    const { bytes } = await readCameraFile(this.o.root, path, MAX_SETTINGS_FILE);
    const parsed = parseSettingsFile(bytes, settings);
    if (parsed.badLines > 0 || parsed.unreadable.length > 0)
      this.o.log.warn(
        {
          event: 'mass_storage.file_lines_skipped',
          file: path,
          skipped: parsed.badLines,
          unreadable: parsed.unreadable,
        },
        `${path}: ${parsed.badLines} lines that are not key=value` +
          (parsed.unreadable.length ? `, values not read for ${parsed.unreadable.join(', ')}` : ''),
      );
    return parsed.values;
  }

  async applySettings(partial: CameraSettings): Promise<void> {
    const { path, settings } = this.o.profile.settingsFile!;
    const changes = encodeSettings(partial, settings);
    if (changes.size === 0) return;
    const { bytes } = await readCameraFile(this.o.root, path, MAX_SETTINGS_FILE);
    await writeCameraFile(this.o.root, path, updateSettingsFile(bytes, changes), this.o.writeHooks);
    const after = parseSettingsFile(
      (await readCameraFile(this.o.root, path, MAX_SETTINGS_FILE)).bytes,
      settings,
    ).values;
    for (const [key, value] of Object.entries(partial))
      if (after[key] !== value)
        throw new DriverError('permanent', 'readback', `${key}: ${path} reads back ${String(after[key])}`);
  }

  async eventLog(): Promise<CameraEvent[]> {
    const { path } = this.o.profile.eventLog!;
    let read;
    try {
      read = await readCameraFile(this.o.root, path, MAX_EVENT_LOG_FILE, { tail: true });
    } catch (err) {
      // A camera that has logged nothing yet may have no log.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    let bytes = read.bytes;
    const cut = read.size - bytes.length;
    // Read from the middle of the file: up to its first line end it is the rest of a line not read.
    if (cut > 0) {
      const lf = bytes.indexOf(0x0a);
      bytes = lf < 0 ? Buffer.alloc(0) : bytes.subarray(lf + 1);
    }
    const parsed = parseEventLog(bytes, MAX_EVENT_LOG_ENTRIES);
    if (parsed.skipped > 0 || cut > 0 || parsed.dropped > 0)
      this.o.log.warn(
        {
          event: 'mass_storage.file_lines_skipped',
          file: path,
          skipped: parsed.skipped,
          truncatedBytes: cut,
          droppedEntries: parsed.dropped,
        },
        `${path}: ${parsed.skipped} lines that are not entries` +
          (cut > 0 ? `; only its last ${bytes.length} of ${read.size} bytes were read` : '') +
          (parsed.dropped > 0 ? `; its ${parsed.dropped} oldest entries beyond ${MAX_EVENT_LOG_ENTRIES} left out` : ''),
      );
    return parsed.entries;
  }
}

function folded(rel: string): string {
  return rel
    .split('/')
    .filter((p) => p !== '')
    .join('/')
    .toLowerCase();
}
