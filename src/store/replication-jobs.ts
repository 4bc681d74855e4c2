/** The replication queue as rows in `jobs`; kept free of the S3 client so the CLI loads fast. */
import type { Db } from './db.js';
import type { CustodyLog } from './custody-log.js';
import type { CustodyEvent } from './chain.js';

export function queueReplication(db: Db, recording: string, now = new Date().toISOString()): void {
  db.prepare(
    "INSERT OR IGNORE INTO jobs (recording, kind, state, created_at, updated_at) VALUES (?, 'replicate', 'queued', ?, ?)",
  ).run(recording, now, now);
}

export interface Backlog {
  count: number;
  bytes: number;
  oldestAt: string | null;
}

export function replicationBacklog(db: Db): Backlog {
  const r = db
    .prepare<[], { count: number; bytes: number | null; oldest: string | null }>(
      "SELECT count(*) count, sum(r.bytes) bytes, min(j.created_at) oldest FROM jobs j JOIN recordings r ON r.id = j.recording WHERE j.kind = 'replicate' AND j.state = 'queued'",
    )
    .get()!;
  return { count: r.count, bytes: r.bytes ?? 0, oldestAt: r.oldest };
}

/** Uploads that exhausted their retries (or found the archive changed): they wait for a person. */
export function replicationFailed(db: Db): number {
  return db
    .prepare<[], { n: number }>("SELECT count(*) n FROM jobs WHERE kind = 'replicate' AND state = 'failed'")
    .get()!.n;
}

/** A queued upload with what the replicator needs of its recording. */
export interface ReplicationJob {
  recording: string;
  camera: string;
  source_path: string;
  archive_path: string;
  sha256: string;
  /** What the archive holds (ciphertext when encrypted): what is uploaded. */
  bytes: number;
  stored_sha256: string;
  recorded_at: string | null;
  verified_at: string;
  attempts: number;
}

/** The next due upload, the longest waiting first. */
export function nextReplicationJob(db: Db, now = Date.now()): ReplicationJob | undefined {
  return db
    .prepare<[number], ReplicationJob>(
      `SELECT j.recording, j.attempts, r.camera, r.source_path, r.archive_path, r.sha256, coalesce(r.stored_bytes, r.bytes) bytes,
              coalesce(r.stored_sha256, r.sha256) stored_sha256, r.recorded_at, r.verified_at
       FROM jobs j JOIN recordings r ON r.id = j.recording
       WHERE j.kind = 'replicate' AND j.state = 'queued' AND j.not_before <= ? AND r.status = 'verified'
       ORDER BY j.not_before, j.id LIMIT 1`,
    )
    .get(now);
}

/** done ← queued, with the `replication.verified` event built by the caller (it names the object). */
export function markReplicated(
  db: Db,
  custody: CustodyLog,
  job: Pick<ReplicationJob, 'recording' | 'camera' | 'sha256'>,
  at: Date,
  details: Record<string, unknown>,
): CustodyEvent {
  return db
    .transaction(() => {
      const ev = custody.append({
        type: 'replication.verified',
        camera: job.camera,
        recording: job.recording,
        sha256: job.sha256,
        at,
        details,
      });
      db.prepare(
        "UPDATE jobs SET state = 'done', attempts = attempts + 1, last_error = NULL, updated_at = ? WHERE recording = ? AND kind = 'replicate'",
      ).run(at.toISOString(), job.recording);
      return ev;
    })
    .immediate();
}

/**
 * failed ← queued: the archived file no longer has the hash it was verified with. Uploading again
 * would send the same wrong bytes, so the job waits for a person, and the chain of custody says
 * when the change was noticed.
 */
export function replicationFoundMismatch(
  db: Db,
  custody: CustodyLog,
  job: Pick<ReplicationJob, 'recording' | 'camera'>,
  m: { error: string; file: string; expected: string; actual: string },
  at = new Date(),
): void {
  db.transaction(() => {
    db.prepare(
      "UPDATE jobs SET state = 'failed', attempts = attempts + 1, last_error = ?, updated_at = ? WHERE recording = ? AND kind = 'replicate'",
    ).run(m.error, at.toISOString(), job.recording);
    custody.append({
      type: 'archive.mismatch',
      camera: job.camera,
      recording: job.recording,
      sha256: m.expected,
      at,
      details: { file: m.file, actual: m.actual, noticedBy: 'replication' },
    });
  }).immediate();
}

/**
 * An upload failed: queued again after `notBefore`, or failed once its retries are spent. A
 * blocking failure (the object store refuses everyone) spends no attempt and holds back every
 * queued upload until `notBefore`: the cause is the store, not the recording.
 */
export function replicationFailedAttempt(
  db: Db,
  recording: string,
  f: { error: string; exhausted: boolean; blocking: boolean; notBefore: number },
): void {
  db.prepare(
    "UPDATE jobs SET state = ?, attempts = attempts + ?, last_error = ?, not_before = ?, updated_at = ? WHERE recording = ? AND kind = 'replicate'",
  ).run(
    f.exhausted ? 'failed' : 'queued',
    f.blocking ? 0 : 1,
    f.error,
    f.notBefore,
    new Date().toISOString(),
    recording,
  );
  if (f.blocking)
    db.prepare("UPDATE jobs SET not_before = max(not_before, ?) WHERE kind = 'replicate' AND state = 'queued'").run(
      f.notBefore,
    );
}

/** queued ← failed or (nothing): `dockd replicate` backfills these recordings. */
export function requeueReplication(db: Db, recordings: string[], now = new Date().toISOString()): void {
  db.transaction(() => {
    for (const id of recordings) {
      queueReplication(db, id, now);
      db.prepare(
        "UPDATE jobs SET state = 'queued', not_before = 0 WHERE recording = ? AND kind = 'replicate' AND state = 'failed'",
      ).run(id);
    }
  }).immediate();
}

/** Verified recordings with no `replication.verified` event: all of them, or the one named. */
export function unreplicated(db: Db, recording?: string): string[] {
  return db
    .prepare<string[], { id: string }>(
      `SELECT id FROM recordings r WHERE status = 'verified' ${recording !== undefined ? 'AND id = ?' : ''}
       AND NOT EXISTS (SELECT 1 FROM custody_events c WHERE c.recording = r.id AND c.type = 'replication.verified')`,
    )
    .all(...(recording !== undefined ? [recording] : []))
    .map((r) => r.id);
}
