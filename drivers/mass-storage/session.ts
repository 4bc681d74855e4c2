/**
 * A docked mass-storage camera: the files under the configured folders of its mounted volume.
 * Recording ids are `/`-separated paths relative to the volume root, e.g. DCIM/100AXON/A001.MP4.
 */
import { constants } from 'node:fs';
import { open, realpath, type FileHandle } from 'node:fs/promises';
import {
  DriverError,
  type BatteryReading,
  type CameraIdentity,
  type CameraSession,
  type DriverLogger,
  type ListOptions,
  type ReadOptions,
  type RecordingEntry,
} from '../types.js';
import { readMounts, type Volume } from './volume.js';
import { usbDevicePresent } from './sysfs.js';
import { VolumeReadStream } from './read-stream.js';
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
}

/**
 * Writes a folder's entries through to the device. An unlink lives in this machine's page cache
 * until then; on vfat, fsync of the folder writes its entry and the allocation table and flushes
 * the disk (fat_file_fsync), so a camera pulled out a moment later no longer holds the file.
 */
async function syncDirectory(dir: Buffer): Promise<void> {
  const handle = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await handle.sync();
  } finally {
    await handle.close().catch(() => undefined);
  }
}

export class MassStorageSession implements CameraSession {
  readonly capabilities = { resume: true, delete: true };
  private closed = false;
  private readonly streams = new Set<VolumeReadStream>();

  private constructor(
    private readonly o: MassStorageSessionOptions,
    /** The mount point as realpath gives it: nothing outside it is ever read or deleted. */
    private readonly realMount: Buffer,
  ) {}

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
    for (const folder of this.o.folders) yield* walkTree(walk, Buffer.from(folder));
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
