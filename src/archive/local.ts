/**
 * The local archive folder. Ingest hands it a verified staging file; it owns where finished
 * recordings live. `DATA/archive/` holds one file per verified recording and nothing else:
 * staging copies live in `DATA/staging/` on the same filesystem so the final rename is atomic.
 */
import { access, constants as fsConstants, mkdir, open, rename, rm, statfs, readdir, unlink } from 'node:fs/promises';
import path from 'node:path';
import { archiveRelPath } from './names.js';
import { createdChain, mkdirDurably } from '../lib/durable.js';

export interface ArchivedRecordingRef {
  id: string;
  camera: string;
  sourcePath: string;
  discoveredAt: string;
}

export class LocalArchive {
  readonly root: string;
  readonly stagingDir: string;

  /** Encrypted archives hold `.age` files only, so nobody mistakes one for playable footage. */
  constructor(
    dataDir: string,
    readonly encrypted = false,
  ) {
    this.root = path.join(dataDir, 'archive');
    this.stagingDir = path.join(dataDir, 'staging');
    mkdirDurably(this.root);
    mkdirDurably(this.stagingDir);
  }

  pathFor(rec: ArchivedRecordingRef): string {
    return path.join(this.root, archiveRelPath(rec)) + (this.encrypted ? '.age' : '');
  }

  stagingPathFor(id: string): string {
    return path.join(this.stagingDir, `${id}.part`);
  }

  /** Moves a verified staging file into place and makes the rename durable. */
  async commit(stagingPath: string, rec: ArchivedRecordingRef): Promise<string> {
    const dest = this.pathFor(rec);
    const dir = path.dirname(dest);
    const first = await mkdir(dir, { recursive: true, mode: 0o750 });
    await rename(stagingPath, dest);
    // A folder made for this file is an entry in its parent: without that fsync a cut can lose
    // the folder, and the file with it, after the database said verified.
    const synced = first === undefined ? [dir] : [path.dirname(first), ...createdChain(first, dir)];
    for (const d of synced.reverse()) await fsyncDir(d);
    return dest;
  }

  async discardStaging(id: string): Promise<void> {
    await rm(this.stagingPathFor(id), { force: true });
  }

  async remove(archivePath: string): Promise<void> {
    await rm(archivePath, { force: true });
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
}

export async function fsyncDir(dir: string): Promise<void> {
  const h = await open(dir, 'r');
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}
