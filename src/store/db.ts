import Database from 'better-sqlite3';
import { chmodSync, existsSync } from 'node:fs';
import path from 'node:path';
import { MIGRATIONS } from './schema.js';
import { fsyncDirSync, mkdirDurably } from '../lib/durable.js';

export type Db = Database.Database;

export function dbPath(dataDir: string): string {
  return path.join(dataDir, 'dockd.db');
}

/**
 * Opens (creating and migrating if needed) the store of a data dir. Every connection, daemon or
 * CLI, gets `synchronous = FULL`: WAL mode persists in the file but this build defaults later
 * connections to NORMAL, which could lose a committed custody event on power loss.
 * With `mustExist`, a missing store is an error (SQLITE_CANTOPEN) instead of a new one.
 */
export function openStore(dataDir: string, opts: { mustExist?: boolean } = {}): Db {
  if (!opts.mustExist) mkdirDurably(dataDir);
  const file = dbPath(dataDir);
  const fresh = !existsSync(file);
  const db = new Database(file, { fileMustExist: !!opts.mustExist });
  // Evidence metadata is nobody else's business, whatever the umask of whoever created it.
  if (fresh) chmodSync(file, 0o640);
  db.pragma('busy_timeout = 5000');
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  migrate(db);
  // SQLite syncs the folder when it makes the WAL; the database file's own entry is made sure of here.
  if (fresh) fsyncDirSync(dataDir);
  return db;
}

export function migrate(db: Db): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > MIGRATIONS.length) {
    throw new Error(
      `the database was written by a newer dockd (schema ${current}, this one knows ${MIGRATIONS.length})`,
    );
  }
  if (current === MIGRATIONS.length) return;
  // IMMEDIATE so that two processes opening a fresh store at once do not both migrate.
  db.transaction(() => {
    const now = db.pragma('user_version', { simple: true }) as number;
    for (let v = now; v < MIGRATIONS.length; v++) {
      db.exec(MIGRATIONS[v]!);
      db.pragma(`user_version = ${v + 1}`);
    }
  }).immediate();
}

/**
 * A write transaction whose loss in a power cut costs nothing but a redo: it commits without an
 * fsync of its own. The next durable (FULL) commit fsyncs the WAL, and with it every commit made
 * before it, so ordering holds. Use it only for steps no outside effect depends on: never for
 * the commit that lets a recording be deleted from a camera, nor for a signed checkpoint.
 */
export function relaxedTransaction<T>(db: Db, fn: () => T): T {
  let p = syncPragmas.get(db);
  if (!p) {
    p = { normal: db.prepare('PRAGMA synchronous = NORMAL'), full: db.prepare('PRAGMA synchronous = FULL') };
    syncPragmas.set(db, p);
  }
  p.normal.run();
  try {
    return db.transaction(fn).immediate();
  } finally {
    p.full.run();
  }
}

const syncPragmas = new WeakMap<Db, { normal: Database.Statement; full: Database.Statement }>();

/**
 * SQLite's online backup of `db` into `file`. SQLite restarts a backup from page one whenever
 * another process writes to the source between steps, and the daemon writes its heartbeat every
 * few seconds: a large database would never finish. A read transaction held open across the
 * steps pins one snapshot (WAL readers do not block the daemon's writes), so the copy runs
 * through once.
 */
export async function backupFromSnapshot(
  db: Db,
  file: string,
  progress: NonNullable<Database.BackupOptions['progress']>,
): Promise<void> {
  try {
    db.exec('BEGIN');
    db.prepare('SELECT count(*) FROM sqlite_master').get();
    await db.backup(file, { progress });
    db.exec('COMMIT');
  } catch (err) {
    if (db.inTransaction) db.exec('ROLLBACK');
    throw err;
  }
}
