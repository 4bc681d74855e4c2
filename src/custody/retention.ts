/**
 * Retention: recordings may be kept only as long as the law allows unless they are needed.
 * The sweep deletes expired, unheld recordings from the archive and leaves a `retention.deleted`
 * custody event carrying the SHA-256, the rule and the time: the proof of deletion.
 */
import { rm } from 'node:fs/promises';
import type { Config } from '../config.js';
import type { Db } from '../store/db.js';
import type { CustodyLog } from './log.js';

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
  const rows = db
    .prepare<
      [string, number],
      { id: string; camera: string; source_path: string; sha256: string; verified_at: string }
    >(
      `SELECT id, camera, source_path, sha256, verified_at FROM recordings r
       WHERE status = 'verified' AND held = 0 AND verified_at < ?
         AND (? = 0 OR EXISTS (SELECT 1 FROM custody_events c WHERE c.recording = r.id AND c.type = 'replication.verified'))
       ORDER BY verified_at`,
    )
    .all(cutoff, rule.requireReplicated ? 1 : 0);
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

/**
 * Commits the deletion first, then removes the file: a crash in between leaves a file the next
 * sweep removes, never a "verified" recording whose file is silently gone.
 */
export async function sweepRetention(
  db: Db,
  custody: CustodyLog,
  rule: Config['retention'],
  now = Date.now(),
): Promise<SweepResult> {
  const deleted: RetentionCandidate[] = [];
  const mark = db.prepare(
    "UPDATE recordings SET status = 'deleted', deleted_at = ? WHERE id = ? AND status = 'verified' AND held = 0",
  );
  for (const c of retentionCandidates(db, rule, now)) {
    const done = db
      .transaction(() => {
        const at = new Date().toISOString();
        if (mark.run(at, c.id).changes === 0) return false;
        custody.append({
          type: 'retention.deleted',
          camera: c.camera,
          recording: c.id,
          sha256: c.sha256,
          details: {
            rule: { days: rule.days, requireReplicated: rule.requireReplicated },
            verifiedAt: c.verifiedAt,
            ageDays: Number(c.ageDays.toFixed(3)),
            sourcePath: c.sourcePath,
          },
        });
        return true;
      })
      .immediate();
    if (done) deleted.push(c);
  }
  await removeDeletedFiles(db);
  return { deleted };
}

export async function removeDeletedFiles(db: Db): Promise<number> {
  const rows = db
    .prepare<[], { id: string; archive_path: string }>(
      "SELECT id, archive_path FROM recordings WHERE status = 'deleted' AND archive_path IS NOT NULL",
    )
    .all();
  const clear = db.prepare('UPDATE recordings SET archive_path = NULL WHERE id = ?');
  for (const r of rows) {
    await rm(r.archive_path, { force: true });
    clear.run(r.id);
  }
  return rows.length;
}

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
