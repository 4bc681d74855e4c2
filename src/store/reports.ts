/** The report's aggregates: offloads per day, failures (recordings and custody events), what the archive holds. */
import type { Db } from './db.js';

/** Recordings verified since `sinceIso`, when and how large. */
export function verifiedSince(db: Db, sinceIso: string): IterableIterator<{ verified_at: string; bytes: number }> {
  return db
    .prepare<[string], { verified_at: string; bytes: number }>(
      'SELECT verified_at, bytes FROM recordings WHERE verified_at >= ?',
    )
    .iterate(sinceIso);
}

/** Failed recordings grouped by their error, most first: the cameras (a JSON array) and one example path. */
export function failedRecordingsByError(db: Db): { error: string; count: number; cameras: string; example: string }[] {
  return db
    .prepare<[], { error: string; count: number; cameras: string; example: string }>(
      `SELECT coalesce(last_error, '') error, count(*) count, json_group_array(DISTINCT camera) cameras, min(source_path) example
       FROM recordings WHERE status = 'failed' GROUP BY error ORDER BY count DESC, error`,
    )
    .all();
}

/** Recordings by state; verifiedBytes is what the archive holds on disk (the ciphertext's size when encrypted). */
export function archiveCounts(db: Db): {
  verifiedCount: number;
  verifiedBytes: number;
  pending: number;
  failed: number;
} {
  return db
    .prepare<[], { verifiedCount: number; verifiedBytes: number; pending: number; failed: number }>(
      `SELECT coalesce(sum(status = 'verified'), 0) verifiedCount, coalesce(sum(CASE WHEN status = 'verified' THEN coalesce(stored_bytes, bytes) END), 0) verifiedBytes,
              coalesce(sum(status IN ('pending', 'copying')), 0) pending, coalesce(sum(status = 'failed'), 0) failed FROM recordings`,
    )
    .get()!;
}

/** The `offload.failed` events grouped by their class, most first, each with its latest error. */
export function offloadFailuresByClass(db: Db): {
  class: string | null;
  count: number;
  gaveUp: number;
  lastError: string | null;
  lastAt: string;
  lastSeq: number;
}[] {
  // With max(), SQLite takes the bare columns from the row holding the maximum: the latest event.
  return db
    .prepare<
      [],
      { class: string | null; count: number; gaveUp: number; lastError: string | null; lastAt: string; lastSeq: number }
    >(
      `SELECT class, count(*) count, coalesce(sum(json_extract(details, '$.willRetry') = 0), 0) gaveUp,
              max(seq) lastSeq, at lastAt, json_extract(details, '$.error') lastError
       FROM (SELECT seq, at, details, json_extract(details, '$.class') class FROM custody_events WHERE type = 'offload.failed')
       GROUP BY class ORDER BY count DESC, class`,
    )
    .all();
}
