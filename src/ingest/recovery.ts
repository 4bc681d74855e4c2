/**
 * Start-up recovery after a crash or `kill -9` (DESIGN invariant 3). Runs before any camera is
 * touched: interrupted copies go back to pending with their durable prefix, archive files that
 * were renamed into place but never committed as verified are removed (the camera still has the
 * recording: nothing is deleted from a camera before the commit), and orphan staging is dropped.
 */
import type { Logger } from 'pino';
import type { Archive } from '../archive/archive.js';
import type { CustodyLog } from '../store/custody-log.js';
import type { Db } from '../store/db.js';
import { copyingRecordings, recordingState } from '../store/recordings.js';
import { Transitions } from '../store/transitions.js';
import { CameraStore } from '../store/cameras.js';

export interface RecoveryReport {
  interrupted: number;
  uncommittedArchiveFiles: number;
  orphanStaging: number;
  camerasMarkedUndocked: number;
}

export async function recover(db: Db, custody: CustodyLog, archive: Archive, log: Logger): Promise<RecoveryReport> {
  const report: RecoveryReport = {
    interrupted: 0,
    uncommittedArchiveFiles: 0,
    orphanStaging: 0,
    camerasMarkedUndocked: 0,
  };
  const copying = copyingRecordings(db);
  for (const rec of copying) {
    // Only a 'copying' row can have reached the rename before the crash.
    const p = archive.pathFor({
      id: rec.id,
      camera: rec.camera,
      sourcePath: rec.source_path,
      discoveredAt: rec.discovered_at,
    });
    if (await archive.remove(p)) report.uncommittedArchiveFiles++;
  }
  report.interrupted = new Transitions(db, custody).copiesInterruptedByRestart(copying);
  report.camerasMarkedUndocked = new CameraStore(db, custody).undockAllAfterRestart();
  for (const id of await archive.stagingIds()) {
    const row = recordingState(db, id);
    // A partial copy of content the camera no longer holds can never be finished.
    if (!row || row.status === 'verified' || row.deleted_from_camera !== 0) {
      await archive.discardStaging(id);
      report.orphanStaging++;
    }
  }
  if (report.interrupted || report.orphanStaging || report.camerasMarkedUndocked) {
    log.warn({ event: 'daemon.recovered', ...report }, 'recovered from an unclean stop');
  }
  return report;
}
