/**
 * A docked mass-storage camera: the files under the configured folders of its mounted volume.
 * Recording ids are `/`-separated paths relative to the volume root, e.g. DCIM/100AXON/A001.MP4.
 */
import { constants, type BigIntStats } from 'node:fs';
import { lstat, open, opendir, realpath, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import {
  DriverError,
  type BatteryReading,
  type CameraIdentity,
  type CameraSession,
  type DriverLogger,
  type ReadOptions,
  type RecordingEntry,
} from '../types.js';
import { readMounts, type Volume } from './volume.js';
import { usbDevicePresent } from './sysfs.js';
import { VolumeReadStream } from './read-stream.js';

const MAX_DEPTH = 8;
/** Errors that only a device that went away gives. */
const GONE_CODES = new Set(['ENODEV', 'ENXIO', 'ESHUTDOWN', 'ENOMEDIUM', 'ENOTCONN']);
/** Errors no retry fixes: the volume refuses, or the path is not a plain file. */
const REFUSED_CODES = new Set(['EROFS', 'EACCES', 'EPERM', 'ELOOP', 'EISDIR', 'ENOTDIR']);

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
async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await handle.sync();
  } finally {
    await handle.close().catch(() => undefined);
  }
}

function inside(root: string, p: string): boolean {
  const rel = path.relative(root, p);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

export class MassStorageSession implements CameraSession {
  readonly capabilities = { resume: true, delete: true };
  private closed = false;
  private readonly streams = new Set<VolumeReadStream>();

  private constructor(
    private readonly o: MassStorageSessionOptions,
    private readonly realMount: string,
  ) {}

  static async open(o: MassStorageSessionOptions): Promise<MassStorageSession> {
    let real: string;
    try {
      real = await realpath(o.volume.mountPoint);
    } catch (err) {
      throw new DriverError('deviceGone', 'unmounted', `${o.volume.mountPoint} went away as it was found`, { cause: err });
    }
    return new MassStorageSession(o, real);
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
    if (!(await usbDevicePresent(this.o.sysfsRoot, this.o.portPath))) throw new DriverError('deviceGone', 'unplugged', `USB device ${this.o.portPath} is gone`);
  }

  private async ready(): Promise<void> {
    await this.attached();
    if (!(await this.mounted())) throw new DriverError('deviceGone', 'unmounted', `${this.mountPoint} is no longer mounted`);
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

  async *list(): AsyncIterable<RecordingEntry> {
    await this.ready();
    for (const folder of this.o.folders) yield* this.walk(folder, 0);
  }

  private async *walk(rel: string, depth: number): AsyncGenerator<RecordingEntry> {
    if (depth > MAX_DEPTH) return;
    const dir = await opendir(path.join(this.mountPoint, rel)).catch(async (err: unknown) => {
      const e = await this.classify(err, `cannot list ${rel || '/'}`);
      // A configured folder the camera does not have is an empty folder, not a fault.
      if (e.kind === 'permanent' && (e.code === 'ENOENT' || e.code === 'ENOTDIR')) return null;
      throw e;
    });
    if (!dir) return;
    try {
      for await (const ent of dir) {
        // Symlinks are skipped, never followed: they could point anywhere on the host.
        if (ent.name.startsWith('.') || ent.isSymbolicLink()) continue;
        const id = rel ? `${rel}/${ent.name}` : ent.name;
        if (ent.isDirectory()) {
          yield* this.walk(id, depth + 1);
        } else if (ent.isFile()) {
          const st = await lstat(path.join(this.mountPoint, id), { bigint: true }).catch(() => null);
          if (st?.isFile()) yield entryOf(id, st);
        }
      }
    } catch (err) {
      throw await this.classify(err, `cannot list ${rel || '/'}`);
    }
  }

  /** The id's absolute path, its folder resolved without leaving the volume. */
  private async resolve(id: string): Promise<string> {
    const parts = String(id).split('/');
    if (String(id).includes('\0') || parts.some((p) => p === '' || p === '.' || p === '..')) {
      throw new DriverError('permanent', 'bad-id', `not a recording id: ${JSON.stringify(id)}`);
    }
    const abs = path.join(this.mountPoint, ...parts);
    let parent: string;
    try {
      parent = await realpath(path.dirname(abs));
    } catch (err) {
      throw await this.classify(err, `cannot find ${id}`);
    }
    if (!inside(this.realMount, parent)) throw new DriverError('permanent', 'bad-id', `recording id leads outside the camera's volume: ${id}`);
    return path.join(parent, path.basename(abs));
  }

  async read(id: string, offset: number, options: ReadOptions = {}): Promise<VolumeReadStream> {
    if (options.signal?.aborted) throw new DriverError('transient', 'aborted', 'read aborted');
    await this.ready();
    if (!Number.isSafeInteger(offset) || offset < 0) throw new DriverError('permanent', 'bad-offset', `bad offset ${offset}`);
    const file = await this.resolve(id);
    let handle: FileHandle;
    try {
      handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch (err) {
      throw await this.classify(err, `cannot open ${id}`);
    }
    try {
      const st = await handle.stat();
      if (!st.isFile()) throw new DriverError('permanent', 'not-a-file', `${id} is not a file`);
      if (offset > st.size) throw new DriverError('permanent', 'bad-offset', `offset ${offset} is past the end (${st.size}) of ${id}`);
    } catch (err) {
      await handle.close().catch(() => undefined);
      throw await this.classify(err, `cannot read ${id}`);
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
      const st = await lstat(await this.resolve(id), { bigint: true });
      return st.isFile() ? entryOf(id, st) : null;
    } catch (err) {
      const e = await this.classify(err, `cannot stat ${id}`);
      if (e.code === 'ENOENT' || e.code === 'ENOTDIR') return null;
      throw e;
    }
  }

  async delete(id: string): Promise<void> {
    await this.ready();
    try {
      const file = await this.resolve(id);
      if (!(await lstat(file)).isFile()) throw new DriverError('permanent', 'not-a-file', `${id} is not a file`);
      await unlink(file);
      await syncDirectory(path.dirname(file));
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
    await Promise.all([...this.streams].map((s) => new Promise<void>((r) => (s.closed ? r() : s.once('close', () => r())))));
    await this.o.release();
  }
}

/**
 * A file's identity on the volume: FAT keeps modification times to 2 s, so a file rewritten in
 * place within that window keeps them; its size usually changes, and a file renamed over it
 * has another directory entry, hence another inode number.
 */
function entryOf(id: string, st: BigIntStats): RecordingEntry {
  const bytes = Number(st.size);
  return { id, path: id, bytes, modifiedAt: new Date(Number(st.mtimeMs)), identity: `${bytes}:${st.mtimeNs}:${st.ino}` };
}
