/** Row shapes and queries over recordings that ingest, the dock and the CLI share. */
import type { Db } from './db.js';
import { OFFICER_SQL } from './officers.js';

export type RecordingStatus = 'pending' | 'copying' | 'verified' | 'failed' | 'deleted';

export interface RecordingRow {
  id: string;
  camera: string;
  source_path: string;
  source_id: string;
  source_identity: string | null;
  bytes: number;
  modified_at: string | null;
  status: RecordingStatus;
  attempts: number;
  last_error: string | null;
  not_before: number;
  bytes_done: number;
  seen_visit: number;
  sha256: string | null;
  stored_sha256: string | null;
  stored_bytes: number | null;
  archive_path: string | null;
  deleted_from_camera: number;
  discovered_at: string;
  verified_at: string | null;
  recorded_at: string | null;
  held: number;
  hold_reason: string | null;
  deleted_at: string | null;
  /** Only present on rows read with OFFICER_SQL. */
  officer?: string | null;
}

/** The contract's `recordings --json` element. */
export interface RecordingJson {
  id: string;
  camera: string;
  sourcePath: string;
  archivePath: string | null;
  bytes: number;
  sha256: string | null;
  status: RecordingStatus;
  attempts: number;
  lastError: string | null;
  deletedFromCamera: boolean;
  /** The camera itself no longer holds this content: it replaced the file, or it was gone before dockd deleted it. */
  leftCamera: boolean;
  discoveredAt: string;
  verifiedAt: string | null;
  modifiedAt: string | null;
  recordedAt: string | null;
  officer: string | null;
  held: boolean;
  holdReason: string | null;
  deletedAt: string | null;
  /** The archive holds it encrypted to the custodians' age keys. */
  encrypted: boolean;
  storedSha256: string | null;
}

export function recordingJson(r: RecordingRow): RecordingJson {
  const verified = r.status === 'verified';
  return {
    id: r.id,
    camera: r.camera,
    sourcePath: r.source_path,
    archivePath: verified ? r.archive_path : null,
    bytes: r.bytes,
    sha256: verified ? r.sha256 : null,
    status: r.status,
    attempts: r.attempts,
    lastError: r.last_error,
    deletedFromCamera: r.deleted_from_camera === 1,
    leftCamera: r.deleted_from_camera === 2,
    discoveredAt: r.discovered_at,
    verifiedAt: r.verified_at,
    modifiedAt: r.modified_at,
    recordedAt: r.recorded_at,
    officer: r.officer ?? null,
    held: r.held === 1,
    holdReason: r.hold_reason,
    deletedAt: r.deleted_at,
    encrypted: r.stored_sha256 !== null && r.stored_sha256 !== r.sha256,
    storedSha256: verified ? r.stored_sha256 : null,
  };
}

export function getRecording(db: Db, id: string): RecordingRow | undefined {
  return db
    .prepare<[string], RecordingRow>(`SELECT r.*, ${OFFICER_SQL} officer FROM recordings r WHERE id = ?`)
    .get(id);
}

export interface RecordingFilter {
  camera?: string;
  status?: string;
}

export function* iterateRecordings(db: Db, f: RecordingFilter = {}): IterableIterator<RecordingRow> {
  const where: string[] = [];
  const args: string[] = [];
  if (f.camera !== undefined) {
    where.push('r.camera = ?');
    args.push(f.camera);
  }
  if (f.status !== undefined) {
    where.push('r.status = ?');
    args.push(f.status);
  }
  const sql = `SELECT r.*, ${OFFICER_SQL} officer FROM recordings r ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY r.discovered_at, r.rowid`;
  yield* db.prepare<string[], RecordingRow>(sql).iterate(...args);
}

export interface QueueCounts {
  pending: number;
  active: number;
  failed: number;
  verified: number;
}

export function queueCounts(db: Db): QueueCounts {
  const rows = db.prepare<[], { status: RecordingStatus; n: number }>('SELECT status, n FROM recording_counts').all();
  const c: QueueCounts = { pending: 0, active: 0, failed: 0, verified: 0 };
  for (const r of rows) {
    if (r.status === 'copying') c.active = r.n;
    else if (r.status !== 'deleted') c[r.status] = r.n;
  }
  return c;
}

/**
 * The camera itself no longer holds the content this row was bound to: it replaced the file, or
 * the file went before it was verified. The row keeps its status when verified (the archive has
 * the content) and becomes failed otherwise; either way it stops claiming the name, so content
 * now there can be planned as a recording of its own, and nothing deletes in its name.
 */
export function markLeftCamera(db: Db, id: string, error: string, now: string): { releaseCancelled: boolean } {
  db.prepare(
    `UPDATE recordings SET deleted_from_camera = 2, bytes_done = 0,
       status = CASE WHEN status IN ('verified','deleted') THEN status ELSE 'failed' END,
       last_error = CASE WHEN status IN ('verified','deleted') THEN last_error ELSE ? END
     WHERE id = ?`,
  ).run(error, id);
  const cancelled = db
    .prepare(
      "UPDATE jobs SET state = 'failed', last_error = ?, updated_at = ? WHERE recording = ? AND kind = 'release' AND state = 'queued'",
    )
    .run('not deleted: the camera no longer holds the content that was archived', now, id);
  return { releaseCancelled: cancelled.changes > 0 };
}

/** Copies under way when the daemon last stopped: after a crash, copies it never finished. */
export function copyingRecordings(db: Db): RecordingRow[] {
  return db.prepare<[], RecordingRow>("SELECT * FROM recordings WHERE status = 'copying'").all();
}

/** Just enough of a recording to tell whether its staging file can still be finished. */
export function recordingState(
  db: Db,
  id: string,
): { status: RecordingStatus; deleted_from_camera: number } | undefined {
  return db
    .prepare<[string], { status: RecordingStatus; deleted_from_camera: number }>(
      'SELECT status, deleted_from_camera FROM recordings WHERE id = ?',
    )
    .get(id);
}
