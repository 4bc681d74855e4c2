/**
 * Transitions a person asks for from the command line. Each appends its custody event, with the
 * person as actor, in the same transaction as the change.
 */
import type { Db } from './db.js';
import type { CustodyLog } from './custody-log.js';

/** Which failed work `dockd retry` puts back: one recording, one camera's, or all (`{}`). */
export type RetryScope = { recording: string } | { camera: string } | Record<string, never>;

export interface RetryResult {
  requeued: string[];
  releasesRequeued: number;
}

/**
 * pending ← failed for recordings still on their camera, attempts and back-off reset; failed
 * deletions from cameras queued again likewise. Each is a custody event: a deletion asked for
 * again is as much a person's decision about evidence as a copy asked for again.
 */
export function retryFailed(db: Db, custody: CustodyLog, scope: RetryScope): RetryResult {
  const args = { id: 'recording' in scope ? scope.recording : null, camera: 'camera' in scope ? scope.camera : null };
  const inScope = (r = '') => `(@id IS NULL OR ${r}id = @id) AND (@camera IS NULL OR ${r}camera = @camera)`;
  return db
    .transaction(() => {
      const failed = db
        .prepare<[typeof args], { id: string; camera: string; last_error: string | null }>(
          `SELECT id, camera, last_error FROM recordings WHERE status = 'failed' AND deleted_from_camera = 0 AND ${inScope()}`,
        )
        .all(args);
      const requeue = db.prepare("UPDATE recordings SET status = 'pending', attempts = 0, not_before = 0 WHERE id = ?");
      for (const r of failed) {
        requeue.run(r.id);
        custody.append({
          type: 'offload.retry_requested',
          camera: r.camera,
          recording: r.id,
          details: { previousError: r.last_error },
        });
      }
      const releases = db
        .prepare<[typeof args], { id: string; camera: string; source_path: string; last_error: string | null }>(
          `SELECT r.id, r.camera, r.source_path, j.last_error FROM jobs j JOIN recordings r ON r.id = j.recording
           WHERE j.kind = 'release' AND j.state = 'failed' AND r.deleted_from_camera = 0 AND ${inScope('r.')}`,
        )
        .all(args);
      const requeueRelease = db.prepare(
        "UPDATE jobs SET state = 'queued', attempts = 0, not_before = 0, updated_at = ? WHERE recording = ? AND kind = 'release'",
      );
      const now = new Date().toISOString();
      for (const r of releases) {
        requeueRelease.run(now, r.id);
        custody.append({
          type: 'camera.file_delete_retry_requested',
          camera: r.camera,
          recording: r.id,
          details: { sourcePath: r.source_path, previousError: r.last_error },
        });
      }
      return { requeued: failed.map((r) => r.id), releasesRequeued: releases.length };
    })
    .immediate();
}
