/**
 * The local archive folder, what the plain and the encrypted archive share: where finished
 * recordings live and where copies are staged. `DATA/archive/` holds one file per verified
 * recording and nothing else: staging copies live in `DATA/staging/` on the same filesystem so
 * the final rename is atomic.
 */
import { access, constants as fsConstants, mkdir, open, rename, rm, statfs, readdir, unlink } from 'node:fs/promises';
import path from 'node:path';
import { archiveRelPath } from './names.js';
import { createdChain, mkdirDurably } from '../lib/durable.js';
import type { Archive, ArchivedRecordingRef, DirectIoProbe, Staging, StageRequest } from './archive.js';
import { BufferPool } from './buffer-pool.js';
import { HashPool } from './hash-pool.js';
import { AlignedBuffers, probeDirectIo } from './direct-io.js';

/** Each direct copy holds two of these: one filling, one on its way to the disk. */
const DIRECT_WRITE_BUFFER = 1024 * 1024;

export interface LocalArchiveOptions {
  /** The data dir: the archive is its `archive/` folder, staging its `staging/` folder. */
  dataDir: string;
  /**
   * Chunk buffers the camera is read into and the staging writes give back. By default 16 MiB,
   * which holds what four cameras' copies have in flight at once (a read ahead, a 1 MiB write
   * batch, a write under way); beyond it buffers are let go.
   */
  buffers?: BufferPool;
  /** Where stored copies are re-hashed to verify them; a pool of its own by default. */
  hashPool?: HashPool;
}

export abstract class LocalArchive implements Archive {
  readonly root: string;
  readonly stagingDir: string;
  readonly buffers: BufferPool;
  abstract readonly resumable: boolean;
  protected readonly hashPool: HashPool;
  /** Set when staging files are written with O_DIRECT (see direct-io.ts). */
  protected direct: AlignedBuffers | undefined;

  /** @param suffix of every archived file's name: `.age` for an encrypted archive, so nobody mistakes one for playable footage */
  constructor(
    o: LocalArchiveOptions,
    private readonly suffix: string,
  ) {
    this.root = path.join(o.dataDir, 'archive');
    this.stagingDir = path.join(o.dataDir, 'staging');
    mkdirDurably(this.root);
    mkdirDurably(this.stagingDir);
    this.buffers = o.buffers ?? new BufferPool(16 * 1024 * 1024);
    this.hashPool = o.hashPool ?? new HashPool();
  }

  abstract stage(req: StageRequest): Promise<Staging>;

  pathFor(rec: ArchivedRecordingRef): string {
    return path.join(this.root, archiveRelPath(rec)) + this.suffix;
  }

  stagingPathFor(id: string): string {
    return path.join(this.stagingDir, `${id}.part`);
  }

  useDirectIo(): DirectIoProbe {
    const probe = probeDirectIo(this.stagingDir);
    if (probe.ok) this.direct ??= new AlignedBuffers(DIRECT_WRITE_BUFFER);
    return probe;
  }

  /** Moves a verified staging file into place and makes the rename durable. */
  async commit(rec: ArchivedRecordingRef): Promise<string> {
    const dest = this.pathFor(rec);
    const dir = path.dirname(dest);
    const first = await mkdir(dir, { recursive: true, mode: 0o750 });
    await rename(this.stagingPathFor(rec.id), dest);
    // A folder made for this file is an entry in its parent: without that fsync a cut can lose
    // the folder, and the file with it, after the database said verified.
    const synced = first === undefined ? [dir] : [path.dirname(first), ...createdChain(first, dir)];
    for (const d of synced.reverse()) await fsyncDir(d);
    return dest;
  }

  async discardStaging(id: string): Promise<void> {
    await rm(this.stagingPathFor(id), { force: true });
  }

  async remove(archivePath: string): Promise<boolean> {
    try {
      await unlink(archivePath);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
  }

  private free: { at: number; bytes: number } | null = null;

  /** Free space, measured at most every 250 ms: thousands of small copies each ask. */
  async freeBytes(): Promise<number> {
    const now = performance.now();
    if (this.free && now - this.free.at < 250) return this.free.bytes;
    const st = await statfs(this.root);
    this.free = { at: now, bytes: st.bavail * st.bsize };
    return this.free.bytes;
  }

  /**
   * Throws the error a copy would meet if staging or the archive cannot be written now (a
   * read-only remount, a failing disk, wrong ownership). Staging gets a real write and fsync;
   * the archive only an access check, since it must hold nothing but recordings even for an
   * instant.
   */
  async probeWritable(): Promise<void> {
    const probe = path.join(this.stagingDir, '.write-probe');
    const h = await open(probe, 'w');
    try {
      await h.write(Buffer.from('dockd'));
      await h.sync();
    } finally {
      await h.close();
    }
    await unlink(probe);
    await access(this.root, fsConstants.W_OK);
  }

  async stagingIds(): Promise<string[]> {
    const names = await readdir(this.stagingDir);
    return names.filter((n) => n.endsWith('.part')).map((n) => n.slice(0, -'.part'.length));
  }

  async close(): Promise<void> {
    await this.hashPool.close();
  }
}

async function fsyncDir(dir: string): Promise<void> {
  const h = await open(dir, 'r');
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}
