/**
 * Retention: recordings may be kept only as long as the law allows unless they are needed.
 * The sweep deletes expired, unheld recordings from the archive and leaves a `retention.deleted`
 * custody event carrying the SHA-256, the rule and the time: the proof of deletion.
 */
import { rm } from 'node:fs/promises';
import type { Config } from '../config.js';
import type { Db } from '../store/db.js';
import type { CustodyLog } from '../store/custody-log.js';
import { archiveFileRemoved, deletedWithFiles, expiredRecordings, markExpired } from '../store/retention.js';

export interface RetentionCandidate {
  id: string;
  camera: string;
  sourcePath: string;
  sha256: string;
  verifiedAt: string;
  ageDays: number;
  reason: string;
}

const DAY_MS = 86_400_000;

export function retentionCandidates(db: Db, rule: Config['retention'], now = Date.now()): RetentionCandidate[] {
  if (rule.days <= 0) return [];
  const cutoff = new Date(now - rule.days * DAY_MS).toISOString();
  const rows = expiredRecordings(db, cutoff, rule.requireReplicated);
  return rows.map((r) => {
    const ageDays = (now - Date.parse(r.verified_at)) / DAY_MS;
    return {
      id: r.id,
      camera: r.camera,
      sourcePath: r.source_path,
      sha256: r.sha256,
      verifiedAt: r.verified_at,
      ageDays,
      reason: `verified ${ageDays.toFixed(1)} days ago, retention is ${rule.days} days, no hold${rule.requireReplicated ? ', replicated' : ''}`,
    };
  });
}

export interface SweepResult {
  deleted: RetentionCandidate[];
}

/** Recordings marked between two turns of the event loop: each is a durable commit of its own. */
const SWEEP_BATCH = 64;

/**
 * Commits the deletion first, then removes the file: a crash in between leaves a file the next
 * sweep removes, never a "verified" recording whose file is silently gone. The first sweep after
 * retention is turned on may find years of recordings: it lets the event loop go every few
 * dozen (heartbeat, copies, a stop), and an abort stops it there; the next sweep goes on.
 */
export async function sweepRetention(
  db: Db,
  custody: CustodyLog,
  rule: Config['retention'],
  now = Date.now(),
  signal?: AbortSignal,
): Promise<SweepResult> {
  const deleted: RetentionCandidate[] = [];
  let sinceYield = 0;
  for (const c of retentionCandidates(db, rule, now)) {
    if (++sinceYield >= SWEEP_BATCH) {
      sinceYield = 0;
      await new Promise((r) => setImmediate(r));
    }
    if (signal?.aborted) break;
    const done = markExpired(db, custody, c, {
      rule: { days: rule.days, requireReplicated: rule.requireReplicated },
      verifiedAt: c.verifiedAt,
      ageDays: Number(c.ageDays.toFixed(3)),
      sourcePath: c.sourcePath,
    });
    if (done) deleted.push(c);
  }
  // Even when stopped: what custody now says is deleted must not stay on the disk.
  await removeDeletedFiles(db);
  return { deleted };
}

export async function removeDeletedFiles(db: Db): Promise<number> {
  let removed = 0;
  for (const r of deletedWithFiles(db)) {
    await rm(r.archive_path, { force: true });
    archiveFileRemoved(db, r.id);
    removed++;
  }
  return removed;
}
