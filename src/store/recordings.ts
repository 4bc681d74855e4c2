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

export function recordingExists(db: Db, id: string): boolean {
  return !!db.prepare('SELECT 1 FROM recordings WHERE id = ?').get(id);
}

/** Every verified recording's camera, path on the camera and SHA-256. */
export function verifiedSources(db: Db): { camera: string; source_path: string; sha256: string }[] {
  return db
    .prepare<[], { camera: string; source_path: string; sha256: string }>(
      "SELECT camera, source_path, sha256 FROM recordings WHERE status = 'verified'",
    )
    .all();
}

/** How many recordings each camera has pending, copying or failed: only the rows still to do. */
export function openRecordingsByCamera(db: Db): { camera: string; status: string; n: number }[] {
  // Through the status index, only the rows still to do: a store of 100,000 verified
  // recordings took 30 ms to group whole.
  return db
    .prepare<[], { camera: string; status: string; n: number }>(
      "SELECT camera, status, count(*) n FROM recordings WHERE status IN ('pending','copying','failed') GROUP BY camera, status",
    )
    .all();
}

/** A camera's recordings seen in one visit, counted. */
export interface VisitCounts {
  total: number;
  done: number;
  bytesTotal: number;
  bytesDone: number;
  /** Recordings still to copy (pending or copying); failed ones wait for `dockd retry`. */
  toDo: number;
  bytesToDo: number;
}

/** Counts of one visit's recordings, by camera and visit; prepared once for many cameras. */
export function visitCountsQuery(db: Db): (camera: string, visit: number) => VisitCounts | undefined {
  const stmt = db.prepare<[string, number], VisitCounts>(
    `SELECT count(*) total, coalesce(sum(status = 'verified'), 0) done, coalesce(sum(bytes), 0) bytesTotal,
            coalesce(sum(CASE WHEN status = 'verified' THEN bytes ELSE 0 END), 0) bytesDone,
            coalesce(sum(status IN ('pending', 'copying')), 0) toDo,
            coalesce(sum(CASE WHEN status IN ('pending', 'copying') THEN bytes ELSE 0 END), 0) bytesToDo
     FROM recordings WHERE camera = ? AND seen_visit = ?`,
  );
  return (camera, visit) => stmt.get(camera, visit);
}

/** A verified recording's claim on its archive file. */
export interface ArchivedRow {
  id: string;
  camera: string;
  archive_path: string;
  sha256: string | null;
  bytes: number;
  stored_sha256: string | null;
  stored_bytes: number | null;
}

/** Every verified recording with an archive file, oldest first. */
export function verifiedInArchive(db: Db): ArchivedRow[] {
  return db
    .prepare<[], ArchivedRow>(
      "SELECT id, camera, archive_path, sha256, bytes, stored_sha256, stored_bytes FROM recordings WHERE status = 'verified' AND archive_path IS NOT NULL ORDER BY discovered_at, id",
    )
    .all();
}

export function verifiedInArchiveCount(db: Db): number {
  return (
    db.prepare("SELECT count(*) n FROM recordings WHERE status = 'verified' AND archive_path IS NOT NULL").get() as {
      n: number;
    }
  ).n;
}

/** Whether a recording is still verified with this archive file; prepared once for many recordings. */
export function stillVerifiedQuery(db: Db): (id: string, archivePath: string) => boolean {
  const stmt = db.prepare<[string, string], { n: number }>(
    "SELECT 1 n FROM recordings WHERE id = ? AND archive_path = ? AND status = 'verified'",
  );
  return (id, archivePath) => !!stmt.get(id, archivePath);
}

/** A camera's verified recordings made in [from, to) (ISO), in the order they were made. */
export function verifiedOfCameraBetween(db: Db, camera: string, fromIso: string, toIso: string): RecordingRow[] {
  return db
    .prepare<[string, string, string], RecordingRow>(
      "SELECT * FROM recordings WHERE camera = ? AND coalesce(recorded_at, discovered_at) >= ? AND coalesce(recorded_at, discovered_at) < ? AND status = 'verified' ORDER BY coalesce(recorded_at, discovered_at)",
    )
    .all(camera, fromIso, toIso);
}
