/**
 * The retention transitions: verified → deleted (the archive's copy is removed under the
 * retention rule, proven by a `retention.deleted` event), and holds that exempt a recording.
 */
import type { Db } from './db.js';
import type { CustodyLog } from './custody-log.js';

export interface ExpiredRow {
  id: string;
  camera: string;
  source_path: string;
  sha256: string;
  verified_at: string;
}

/** Verified, unheld recordings verified before `cutoff` (and replicated, when that is required). */
export function expiredRecordings(db: Db, cutoffIso: string, requireReplicated: boolean): ExpiredRow[] {
  return db
    .prepare<[string, number], ExpiredRow>(
      `SELECT id, camera, source_path, sha256, verified_at FROM recordings r
       WHERE status = 'verified' AND held = 0 AND verified_at < ?
         AND (? = 0 OR EXISTS (SELECT 1 FROM custody_events c WHERE c.recording = r.id AND c.type = 'replication.verified'))
       ORDER BY verified_at`,
    )
    .all(cutoffIso, requireReplicated ? 1 : 0);
}

/**
 * deleted ← verified, unless it was held or changed meanwhile (then false). Committed before the
 * file is removed: a crash in between leaves a file to remove, never a verified recording whose
 * file is silently gone.
 */
export function markExpired(
  db: Db,
  custody: CustodyLog,
  r: Pick<ExpiredRow, 'id' | 'camera' | 'sha256'>,
  details: Record<string, unknown>,
): boolean {
  return db
    .transaction(() => {
      const at = new Date().toISOString();
      const changed = db
        .prepare(
          "UPDATE recordings SET status = 'deleted', deleted_at = ? WHERE id = ? AND status = 'verified' AND held = 0",
        )
        .run(at, r.id).changes;
      if (changed === 0) return false;
      custody.append({ type: 'retention.deleted', camera: r.camera, recording: r.id, sha256: r.sha256, details });
      return true;
    })
    .immediate();
}

/** Deleted recordings whose archive file may still be on disk. */
export function deletedWithFiles(db: Db): { id: string; archive_path: string }[] {
  return db
    .prepare<[], { id: string; archive_path: string }>(
      "SELECT id, archive_path FROM recordings WHERE status = 'deleted' AND archive_path IS NOT NULL",
    )
    .all();
}

/** The deleted recording's file is gone from the archive. */
export function archiveFileRemoved(db: Db, id: string): void {
  db.prepare('UPDATE recordings SET archive_path = NULL WHERE id = ?').run(id);
}

/** held ↔ not held; false when it already was. Throws for an unknown or deleted recording. */
export function setHold(db: Db, custody: CustodyLog, id: string, held: boolean, reason: string): boolean {
  return db
    .transaction(() => {
      const row = db
        .prepare<[string], { camera: string; status: string; held: number; sha256: string | null }>(
          'SELECT camera, status, held, sha256 FROM recordings WHERE id = ?',
        )
        .get(id);
      if (!row) throw new Error(`no recording ${id}`);
      if (row.status === 'deleted') throw new Error(`recording ${id} was already deleted under retention`);
      if ((row.held === 1) === held) return false;
      db.prepare('UPDATE recordings SET held = ?, hold_reason = ? WHERE id = ?').run(
        held ? 1 : 0,
        held ? reason : null,
        id,
      );
      custody.append({
        type: held ? 'recording.held' : 'recording.hold_released',
        camera: row.camera,
        recording: id,
        sha256: row.sha256,
        details: { reason },
      });
      return true;
    })
    .immediate();
}
