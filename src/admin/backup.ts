/**
 * `dockd backup`: an online copy of dockd.db through SQLite's backup API, consistent even while
 * the daemon writes, checked with integrity_check before it takes the name it was asked for, so
 * a file under that name is always a complete, sound copy.
 */
import Database from 'better-sqlite3';
import { closeSync, existsSync, fsyncSync, openSync, renameSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { openExistingStore } from './store-file.js';
import { backupFromSnapshot } from '../store/db.js';
import { chainHead } from '../store/checkpoints.js';
import { custodyEventCount } from '../store/custody-log.js';

export interface BackupProgress {
  totalPages: number;
  remainingPages: number;
}

export interface BackupResult {
  file: string;
  bytes: number;
  pages: number;
  integrity: 'ok';
  custodyEvents: number;
  lastSeq: number | null;
  headHash: string | null;
  startedAt: string;
  finishedAt: string;
}

export class BackupError extends Error {
  constructor(
    message: string,
    /** True when the request itself was wrong (a target that exists), not the copy. */
    readonly usage = false,
  ) {
    super(message);
    this.name = 'BackupError';
  }
}

/** Pages copied per step: small enough that the daemon's writers are never held up for long. */
const PAGES_PER_STEP = 256;

function fsyncPath(p: string): void {
  const fd = openSync(p, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function removeWithSidecars(file: string): void {
  for (const s of ['', '-wal', '-shm', '-journal']) rmSync(file + s, { force: true });
}

export async function backupStore(
  dataDir: string,
  target: string,
  opts: { force?: boolean; onProgress?: (p: BackupProgress) => void } = {},
): Promise<BackupResult> {
  const file = path.resolve(target);
  const startedAt = new Date().toISOString();
  const store = openExistingStore(dataDir);
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.partial-${process.pid}`);
  try {
    if (path.resolve(store.file) === file || file.startsWith(path.resolve(store.file) + '-')) {
      throw new BackupError(`${file} is the live database; back up to another file`, true);
    }
    if (!statSync(path.dirname(file), { throwIfNoEntry: false })?.isDirectory())
      throw new BackupError(`${path.dirname(file)} is not a directory`, true);
    if (statSync(file, { throwIfNoEntry: false })?.isDirectory())
      throw new BackupError(`${file} is a directory; name the backup file`, true);
    if (existsSync(file) && !opts.force)
      throw new BackupError(`${file} already exists; pass --force to overwrite it`, true);
    removeWithSidecars(tmp);
    // The copy holds the whole custody log: owner-only from its first byte.
    closeSync(openSync(tmp, 'wx', 0o600));
    // From one snapshot, so the daemon's heartbeat does not restart the copy.
    await backupFromSnapshot(store.db, tmp, (p) => {
      opts.onProgress?.(p);
      return PAGES_PER_STEP;
    });
  } catch (err) {
    store.close();
    removeWithSidecars(tmp);
    throw err;
  }
  store.close();

  try {
    const copy = new Database(tmp, { fileMustExist: true });
    let summary: {
      integrity: string[];
      pages: number;
      events: number;
      lastSeq: number | null;
      headHash: string | null;
    };
    try {
      const rows = copy.pragma('integrity_check') as Array<{ integrity_check: string }>;
      const head = chainHead(copy);
      summary = {
        integrity: rows.map((r) => r.integrity_check),
        pages: copy.pragma('page_count', { simple: true }) as number,
        events: custodyEventCount(copy),
        lastSeq: head?.seq ?? null,
        headHash: head?.hash ?? null,
      };
    } finally {
      copy.close();
    }
    if (summary.integrity.length !== 1 || summary.integrity[0] !== 'ok') {
      throw new BackupError(
        `the copy failed integrity_check (${summary.integrity.slice(0, 3).join('; ')}); nothing was written to ${file}`,
      );
    }
    fsyncPath(tmp);
    // A -wal left next to the old file would be replayed into the new one at its next open.
    for (const s of ['-wal', '-shm', '-journal']) rmSync(file + s, { force: true });
    renameSync(tmp, file);
    fsyncPath(path.dirname(file));
    return {
      file,
      bytes: statSync(file).size,
      pages: summary.pages,
      integrity: 'ok',
      custodyEvents: summary.events,
      lastSeq: summary.lastSeq,
      headHash: summary.headHash,
      startedAt,
      finishedAt: new Date().toISOString(),
    };
  } finally {
    removeWithSidecars(tmp);
  }
}
