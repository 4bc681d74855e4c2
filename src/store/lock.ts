import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import path from 'node:path';

export class AlreadyRunningError extends Error {
  constructor(dataDir: string) {
    super(`another dockd daemon is running on ${dataDir}`);
    this.name = 'AlreadyRunningError';
  }
}

/**
 * One daemon per data dir. The lock is an exclusive SQLite transaction held open on a file of its
 * own: the kernel drops the underlying POSIX lock when the process dies, so a daemon killed with
 * `kill -9` never blocks the next start, and no PID file can go stale.
 */
export class DataDirLock {
  private constructor(private readonly db: Database.Database) {}

  static acquire(dataDir: string): DataDirLock {
    mkdirSync(dataDir, { recursive: true, mode: 0o750 });
    const db = new Database(path.join(dataDir, 'daemon.lock'));
    try {
      db.pragma('busy_timeout = 0');
      db.pragma('locking_mode = EXCLUSIVE');
      db.exec('CREATE TABLE IF NOT EXISTS holder (pid INTEGER)');
      db.exec('BEGIN EXCLUSIVE');
      db.prepare('DELETE FROM holder').run();
      db.prepare('INSERT INTO holder (pid) VALUES (?)').run(process.pid);
    } catch (err) {
      db.close();
      if ((err as { code?: string }).code === 'SQLITE_BUSY') throw new AlreadyRunningError(dataDir);
      throw err;
    }
    return new DataDirLock(db);
  }

  /** True when a daemon holds the lock of this data dir right now. */
  static isHeld(dataDir: string): boolean {
    try {
      DataDirLock.acquire(dataDir).release();
      return false;
    } catch (err) {
      if (err instanceof AlreadyRunningError) return true;
      throw err;
    }
  }

  release(): void {
    try {
      this.db.exec('ROLLBACK');
    } finally {
      this.db.close();
    }
  }
}
