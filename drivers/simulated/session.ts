import { readFile, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import {
  DriverError,
  type BatteryReading,
  type CameraEvent,
  type CameraIdentity,
  type CameraSettings,
  type CameraSession,
  type DeviceLogEntry,
  type DriverLogger,
  type ListOptions,
  type ReadOptions,
  type RecordingEntry,
} from '../types.js';
import { CameraFileError, parseCameraFile, type CameraSpec } from './camera-file.js';
import { FaultState } from './faults.js';
import { openInside, statInside, unlinkInside, walkTree } from '../file-tree.js';
import { SimReadStream } from './read-stream.js';
import { Throttle } from './throttle.js';
import { CLOCK_FILE, SETTINGS_FILE } from './camera-settings-file.js';
import { clockWasSet, reportedSettings, writeClock, writeSettings } from './configuration.js';

export const CAMERA_FILE = 'camera.json';
const MAX_DEPTH = 32;
/** Errors no retry fixes: the path is not a plain file, or the slot refuses. */
const REFUSED_CODES = new Set(['ENOENT', 'EACCES', 'EPERM', 'ELOOP', 'EISDIR', 'ENOTDIR', 'ENAMETOOLONG']);

function classify(err: unknown, what: string): DriverError {
  if (err instanceof DriverError) return err;
  const code = (err as NodeJS.ErrnoException).code ?? 'io-error';
  return new DriverError(
    REFUSED_CODES.has(code) ? 'permanent' : 'transient',
    code,
    `${what}: ${(err as Error).message}`,
    { cause: err },
  );
}

/**
 * A docked simulated camera: a slot folder whose files are its storage. camera.json is re-read on
 * every call, so battery, clock and faults follow the file as the contract asks; a rewrite of the
 * file after a detach makes the camera answer again.
 */
export class SimCameraSession implements CameraSession {
  /**
   * Taking settings changes nothing on the camera's storage (the firmware reads settings.json,
   * the listing never shows it), so dockd may configure a simulated camera before offloading.
   */
  get capabilities() {
    return {
      resume: true,
      delete: true,
      clock: true,
      eventLog: true,
      settings: this.spec.settings !== null,
      settingsDisturbRecordings: false,
    };
  }
  private spec: CameraSpec;
  private specKey: string;
  private faults: FaultState;
  private readonly throttle: Throttle;
  private closed = false;

  private constructor(
    private readonly dir: string,
    /** The slot folder as realpath gives it: nothing outside it is ever read or deleted. */
    private readonly root: Buffer,
    private readonly log: DriverLogger,
    spec: CameraSpec,
    specKey: string,
  ) {
    this.spec = spec;
    this.specKey = specKey;
    this.faults = new FaultState(spec.faults);
    this.throttle = new Throttle(spec.throughputBytesPerSec);
  }

  static async open(dir: string, log: DriverLogger): Promise<SimCameraSession> {
    const { spec, key } = await readSpec(dir);
    const root = await realpath(dir, { encoding: 'buffer' });
    return new SimCameraSession(dir, root, log, spec, key);
  }

  private async refresh(): Promise<void> {
    if (this.closed) throw new DriverError('deviceGone', 'closed', 'session is closed');
    let loaded: { spec: CameraSpec; key: string };
    try {
      loaded = await readSpec(this.dir, this.specKey);
    } catch (err) {
      if (err instanceof Unchanged) return;
      if (err instanceof DriverError) throw err;
      // A half-edited camera.json must not unplug the camera: keep the last good state.
      this.log.warn(
        { event: 'sim.camera_file_invalid', err: (err as Error).message },
        'camera.json is invalid; keeping the last good state',
      );
      return;
    }
    if (loaded.key === this.specKey) return;
    this.spec = loaded.spec;
    this.specKey = loaded.key;
    this.faults = new FaultState(loaded.spec.faults);
    this.throttle.bytesPerSec = loaded.spec.throughputBytesPerSec;
  }

  private gone(): boolean {
    return this.closed || this.faults.isDetached;
  }

  private async ready(): Promise<void> {
    await this.refresh();
    if (this.gone()) throw new DriverError('deviceGone', 'detached', 'camera is gone');
  }

  async identity(): Promise<CameraIdentity> {
    await this.ready();
    return { serial: this.spec.serial, model: this.spec.model, firmware: this.spec.firmware };
  }

  async battery(): Promise<BatteryReading | null> {
    await this.ready();
    return this.spec.battery ? { ...this.spec.battery } : null;
  }

  async clock(): Promise<Date> {
    await this.ready();
    const offsetSeconds = (await clockWasSet(this.dir)) ? 0 : this.spec.clockOffsetSeconds;
    return new Date(Date.now() + offsetSeconds * 1000);
  }

  async setClock(date: Date): Promise<void> {
    await this.ready();
    await writeClock(this.dir, date);
  }

  async settings(): Promise<CameraSettings> {
    await this.ready();
    if (!this.spec.settings) throw new DriverError('permanent', 'no-settings', 'the camera reports no settings');
    return reportedSettings(this.dir, this.spec.settings);
  }

  async applySettings(partial: CameraSettings): Promise<void> {
    await this.ready();
    if (!this.spec.settings)
      throw new DriverError('permanent', 'no-settings', 'the camera reports no settings and cannot be configured');
    const written = await writeSettings(this.dir, this.spec.settings, partial);
    if (written) this.log.debug({ event: 'sim.settings_written', keys: Object.keys(partial) }, 'settings.json written');
  }

  async eventLog(): Promise<CameraEvent[]> {
    await this.ready();
    return this.spec.eventLog.map((e) => ({ at: e.at, type: e.type }));
  }

  async deviceLog(): Promise<DeviceLogEntry[]> {
    await this.ready();
    return this.spec.batteryLog.map((e) => ({ at: e.at, type: 'battery', percent: e.percent, charging: e.charging }));
  }

  async *list(options: ListOptions = {}): AsyncIterable<RecordingEntry> {
    await this.ready();
    yield* walkTree(
      {
        root: this.root,
        maxDepth: MAX_DEPTH,
        notFootage: (name) => isCameraFile(name.toString('latin1')),
        classify: async (err, what) => classify(err, what),
        onUnreadable: options.onUnreadable,
      },
      Buffer.alloc(0),
    );
  }

  async read(id: string, offset: number, options: ReadOptions = {}): Promise<SimReadStream> {
    await this.ready();
    let opened;
    try {
      opened = await openInside(this.root, id);
    } catch (err) {
      throw classify(err, `cannot open ${id}`);
    }
    const { handle, size } = opened;
    if (offset > size) {
      await handle.close();
      throw new DriverError('permanent', 'bad-offset', `offset ${offset} is past the end (${size}) of ${id}`);
    }
    return new SimReadStream({
      handle,
      offset,
      size,
      plan: this.faults.planRead(id),
      faults: this.faults,
      throttle: this.throttle,
      signal: options.signal,
      buffers: options.buffers,
      isGone: () => this.gone(),
    });
  }

  async stat(id: string): Promise<RecordingEntry | null> {
    await this.ready();
    try {
      return await statInside(this.root, id);
    } catch (err) {
      throw classify(err, `cannot stat ${id}`);
    }
  }

  async delete(id: string, identity?: string): Promise<void> {
    await this.ready();
    if (this.faults.deleteFails(id))
      throw new DriverError('transient', 'delete-error', `camera refused to delete ${id}`);
    try {
      await unlinkInside(this.root, id, identity);
    } catch (err) {
      const e = classify(err, `cannot delete ${id}`);
      // Already gone is what delete wanted.
      if (e.code !== 'ENOENT') throw e;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

async function readSpec(dir: string, knownKey?: string): Promise<{ spec: CameraSpec; key: string }> {
  const file = path.join(dir, CAMERA_FILE);
  let text: string;
  let stamp: string;
  try {
    const st = await stat(file);
    stamp = `${st.mtimeMs}:${st.size}:${st.ino}:`;
    // Unchanged since the last read (same mtime, size and inode): no need to read and parse it.
    if (knownKey?.startsWith(stamp)) throw new Unchanged();
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      throw new DriverError('deviceGone', 'undocked', 'camera.json is gone');
    throw err;
  }
  // The mtime is part of the key: rewriting identical content still counts as "written again".
  return { spec: parseCameraFile(text), key: stamp + text };
}

class Unchanged extends Error {}

/** The slot's own files, which are the camera's state and configuration, never recordings. */
function isCameraFile(name: string): boolean {
  return name === CAMERA_FILE || name === SETTINGS_FILE || name === CLOCK_FILE;
}

export { CameraFileError };
