/**
 * Opening an existing dockd.db for inspection (doctor, backup) without the side effects of
 * `openStore`: no data dir is created, nothing is migrated, no pragma is changed.
 */
import Database from 'better-sqlite3';
import { chownSync, existsSync, statSync } from 'node:fs';
import { dbPath, type Db } from '../store/db.js';

export class NoStoreError extends Error {
  constructor(readonly file: string) {
    super(`no database at ${file}: the daemon creates it at its first start`);
    this.name = 'NoStoreError';
  }
}

export interface InspectedStore {
  db: Db;
  file: string;
  close(): void;
}

const SIDECARS = ['-wal', '-shm'];

/**
 * The connection is read-write but used only for reads: a read-only connection would leave a
 * fresh `-wal`/`-shm` behind, while the last read-write connection to close removes them. Were
 * an admin's root shell to leave root-owned ones behind anyway (say, killed mid-check), the
 * daemon's user could no longer open its own database, so they are handed back to the owner.
 */
export function openExistingStore(dataDir: string): InspectedStore {
  const file = dbPath(dataDir);
  if (!existsSync(file)) throw new NoStoreError(file);
  const before = new Set(SIDECARS.filter((s) => existsSync(file + s)));
  const db = new Database(file, { fileMustExist: true });
  try {
    db.pragma('busy_timeout = 5000');
  } catch (err) {
    db.close();
    throw err;
  }
  return {
    db,
    file,
    close() {
      db.close();
      if (process.getuid?.() !== 0) return;
      const owner = statSync(file);
      for (const s of SIDECARS) {
        if (before.has(s) || !existsSync(file + s)) continue;
        try {
          const st = statSync(file + s);
          if (st.uid !== owner.uid || st.gid !== owner.gid) chownSync(file + s, owner.uid, owner.gid);
        } catch {
          // Gone in between: the daemon checkpointed and removed it.
        }
      }
    },
  };
}
