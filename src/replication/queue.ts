/** The replication queue as rows in `jobs`; kept free of the S3 client so the CLI loads fast. */
import type { Db } from '../store/db.js';

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
