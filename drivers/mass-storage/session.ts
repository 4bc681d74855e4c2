/**
 * A docked mass-storage camera: the files under the configured folders of its mounted volume.
 * Recording ids are `/`-separated paths relative to the volume root, e.g. DCIM/100AXON/A001.MP4.
 */
import { realpath, type FileHandle } from 'node:fs/promises';
import {
  DriverError,
  type BatteryReading,
  type CameraEvent,
  type CameraIdentity,
  type CameraSession,
  type CameraSettings,
  type DriverLogger,
  type ListOptions,
  type ReadOptions,
  type RecordingEntry,
  type SessionCapabilities,
} from '../types.js';
import { readMounts, type Volume } from './volume.js';
import { usbDevicePresent } from './sysfs.js';
import { VolumeReadStream } from './read-stream.js';
import { CameraFiles } from './camera-files.js';
import { syncDirectory, type AtomicWriteHooks } from './file-io.js';
import type { MassStorageProfile } from './profiles.js';
import { openInside, statInside, unlinkInside, walkTree, type TreeWalk } from '../file-tree.js';

const MAX_DEPTH = 8;
/** Errors that only a device that went away gives. */
const GONE_CODES = new Set(['ENODEV', 'ENXIO', 'ESHUTDOWN', 'ENOMEDIUM', 'ENOTCONN']);
/** Errors no retry fixes: the volume refuses, or the path is not a plain file. */
const REFUSED_CODES = new Set(['EROFS', 'EACCES', 'EPERM', 'ELOOP', 'EISDIR', 'ENOTDIR']);
/**
 * File systems whose inode numbers Linux makes up at each mount (FAT and exFAT have none on
 * disk; fuseblk is exfat-fuse's): a file's inode there says nothing from one docking to the next.
 */
const INODES_PER_MOUNT = new Set(['vfat', 'msdos', 'exfat', 'fuseblk']);

export interface MassStorageSessionOptions {
  portPath: string;
  volume: Volume;
  identity: CameraIdentity;
  folders: string[];
  sysfsRoot: string;
  mountinfoPath: string;
  log: DriverLogger;
  /** Unmounts what the driver mounted. */
  release(): Promise<void>;
  /** The camera's row of the profile table, when it has one: its settings, time and event files. */
  profile?: MassStorageProfile;
  /** When the camera was connected, on this machine's clock (ms); the profile's time file counts from it. */
  connectedAt?: number;
  writeHooks?: AtomicWriteHooks;
}

export class MassStorageSession implements CameraSession {
  readonly capabilities: SessionCapabilities;
  private closed = false;
  private readonly streams = new Set<VolumeReadStream>();
  /** The profile's files; null for a camera without a profile, which offers only its recordings. */
  private readonly files: CameraFiles | null;
  readonly clock?: () => Promise<Date>;
  readonly setClock?: (date: Date) => Promise<void>;
  readonly settings?: () => Promise<CameraSettings>;
  readonly applySettings?: (partial: CameraSettings) => Promise<void>;
  readonly eventLog?: () => Promise<CameraEvent[]>;

  private constructor(
    private readonly o: MassStorageSessionOptions,
    /** The mount point as realpath gives it: nothing outside it is ever read or deleted. */
    private readonly realMount: Buffer,
  ) {
    const files = o.profile
      ? new CameraFiles({
          root: realMount,
          profile: o.profile,
          connectedAt: o.connectedAt ?? Date.now(),
          log: o.log,
          writeHooks: o.writeHooks,
        })
      : null;
    this.files = files;
    this.capabilities = { resume: true, delete: true, ...files?.capabilities };
    // Only what the profile names: dockd tells by their presence what a camera can do.
    if (files && this.capabilities.clock) {
      this.clock = () => this.withFiles('cannot read the time file', () => files.clock());
      this.setClock = (date) => this.withFiles('cannot write the time file', () => files.setClock(date));
    }
    if (files && this.capabilities.settings) {
      this.settings = () => this.withFiles('cannot read the settings file', () => files.settings());
      this.applySettings = (partial) =>
        this.withFiles('cannot write the settings file', () => files.applySettings(partial));
    }
    if (files && this.capabilities.eventLog)
      this.eventLog = () => this.withFiles('cannot read the event log', () => files.eventLog());
  }

  private async withFiles<T>(what: string, fn: () => Promise<T>): Promise<T> {
    await this.ready();
    try {
      return await fn();
    } catch (err) {
      throw await this.classify(err, what);
    }
  }

  static async open(o: MassStorageSessionOptions): Promise<MassStorageSession> {
    let real: Buffer;
    try {
      real = await realpath(o.volume.mountPoint, { encoding: 'buffer' });
    } catch (err) {
      throw new DriverError('deviceGone', 'unmounted', `${o.volume.mountPoint} went away as it was found`, {
        cause: err,
      });
    }
    return new MassStorageSession(o, real);
  }

  private get stableInodes(): boolean {
    return !INODES_PER_MOUNT.has(this.o.volume.fsType);
  }

  private get mountPoint(): string {
    return this.o.volume.mountPoint;
  }

  private async mounted(): Promise<boolean> {
    try {
      const { mountPoint, dev } = this.o.volume;
      return (await readMounts(this.o.mountinfoPath)).some((m) => m.mountPoint === mountPoint && m.dev === dev);
    } catch {
      return true; // Not knowing is not evidence of absence.
    }
  }

  private async attached(): Promise<void> {
    if (this.closed) throw new DriverError('deviceGone', 'closed', 'session is closed');
    if (!(await usbDevicePresent(this.o.sysfsRoot, this.o.portPath)))
      throw new DriverError('deviceGone', 'unplugged', `USB device ${this.o.portPath} is gone`);
  }

  private async ready(): Promise<void> {
    await this.attached();
    if (!(await this.mounted()))
      throw new DriverError('deviceGone', 'unmounted', `${this.mountPoint} is no longer mounted`);
  }

  /** One place where filesystem errors become DriverErrors; a vanished volume explains any of them. */
  private async classify(err: unknown, what: string): Promise<DriverError> {
    if (err instanceof DriverError) return err;
    const code = (err as NodeJS.ErrnoException).code ?? 'io-error';
    const msg = `${what}: ${(err as Error).message}`;
    if (GONE_CODES.has(code)) return new DriverError('deviceGone', code, msg, { cause: err });
    try {
      await this.ready();
    } catch (gone) {
      return gone as DriverError;
    }
    if (code === 'ENOENT' || REFUSED_CODES.has(code)) return new DriverError('permanent', code, msg, { cause: err });
    return new DriverError('transient', code, msg, { cause: err });
  }

  async identity(): Promise<CameraIdentity> {
    await this.ready();
    return { ...this.o.identity };
  }

  async battery(): Promise<BatteryReading | null> {
    await this.ready();
    return null;
  }

  async *list(options: ListOptions = {}): AsyncIterable<RecordingEntry> {
    await this.ready();
    const walk: TreeWalk = {
      root: this.realMount,
      maxDepth: MAX_DEPTH,
      classify: (err, what) => this.classify(err, what),
      onUnreadable: options.onUnreadable,
      stableInodes: this.stableInodes,
    };
    for (const folder of this.o.folders)
      for await (const entry of walkTree(walk, Buffer.from(folder)))
        // The profile's files may lie in a recordings folder; they belong to the camera.
        if (!this.files?.isCameraFile(entry.id)) yield entry;
  }

  async read(id: string, offset: number, options: ReadOptions = {}): Promise<VolumeReadStream> {
    if (options.signal?.aborted) throw new DriverError('transient', 'aborted', 'read aborted');
    await this.ready();
    if (!Number.isSafeInteger(offset) || offset < 0)
      throw new DriverError('permanent', 'bad-offset', `bad offset ${offset}`);
    let handle: FileHandle;
    let size: number;
    try {
      ({ handle, size } = await openInside(this.realMount, id));
    } catch (err) {
      throw await this.classify(err, `cannot open ${id}`);
    }
    if (offset > size) {
      await handle.close().catch(() => undefined);
      throw new DriverError('permanent', 'bad-offset', `offset ${offset} is past the end (${size}) of ${id}`);
    }
    const stream = new VolumeReadStream({
      handle,
      offset,
      signal: options.signal,
      buffers: options.buffers,
      check: () => this.attached(),
      classify: (err) => this.classify(err, `reading ${id}`),
    });
    this.streams.add(stream);
    stream.once('close', () => this.streams.delete(stream));
    return stream;
  }

  async stat(id: string): Promise<RecordingEntry | null> {
    await this.ready();
    try {
      return await statInside(this.realMount, id, this.stableInodes);
    } catch (err) {
      throw await this.classify(err, `cannot stat ${id}`);
    }
  }

  async delete(id: string, identity?: string): Promise<void> {
    await this.ready();
    if (this.files?.isCameraFile(id))
      throw new DriverError('permanent', 'camera-file', `${id} is the camera's own file, not a recording`);
    try {
      await syncDirectory(await unlinkInside(this.realMount, id, identity, this.stableInodes));
    } catch (err) {
      const e = await this.classify(err, `cannot delete ${id}`);
      // Already gone is what delete wanted; a vanished volume was turned into deviceGone above.
      if (e.kind === 'permanent' && e.code === 'ENOENT') return;
      throw e;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const gone = new DriverError('deviceGone', 'closed', 'session is closed');
    for (const s of this.streams) s.destroy(gone);
    // Let the streams release their file handles before the volume is unmounted.
    await Promise.all(
      [...this.streams].map((s) => new Promise<void>((r) => (s.closed ? r() : s.once('close', () => r())))),
    );
    await this.o.release();
  }
}
