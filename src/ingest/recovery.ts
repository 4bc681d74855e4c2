/**
 * Start-up recovery after a crash or `kill -9` (DESIGN invariant 3). Runs before any camera is
 * touched: interrupted copies go back to pending with their durable prefix, archive files that
 * were renamed into place but never committed as verified are removed (the camera still has the
 * recording: nothing is deleted from a camera before the commit), and orphan staging is dropped.
 */
import type { Logger } from 'pino';
import type { LocalArchive } from '../archive/local.js';
import type { CustodyLog } from '../custody/log.js';
import type { Db } from '../store/db.js';
import type { RecordingRow } from '../store/recordings.js';

export interface RecoveryReport {
  interrupted: number;
  uncommittedArchiveFiles: number;
  orphanStaging: number;
  camerasMarkedUndocked: number;
}

export async function recover(
  db: Db,
  custody: CustodyLog,
  archive: LocalArchive,
  log: Logger,
): Promise<RecoveryReport> {
  const report: RecoveryReport = {
    interrupted: 0,
    uncommittedArchiveFiles: 0,
    orphanStaging: 0,
    camerasMarkedUndocked: 0,
  };
  const copying = db.prepare<[], RecordingRow>("SELECT * FROM recordings WHERE status = 'copying'").all();
  for (const rec of copying) {
    // Only a 'copying' row can have reached the rename before the crash.
    const p = archive.pathFor({
      id: rec.id,
      camera: rec.camera,
      sourcePath: rec.source_path,
      discoveredAt: rec.discovered_at,
    });
    await archive.remove(p).then(() => report.uncommittedArchiveFiles++);
  }
  db.transaction(() => {
    for (const rec of copying) {
      db.prepare("UPDATE recordings SET status = 'pending' WHERE id = ?").run(rec.id);
      custody.append({
        type: 'offload.interrupted',
        camera: rec.camera,
        recording: rec.id,
        details: { reason: 'daemon restarted', keptBytes: rec.bytes_done },
      });
      report.interrupted++;
    }
    const docked = db
      .prepare<[], { serial: string; slot: string }>('SELECT serial, slot FROM cameras WHERE docked = 1')
      .all();
    for (const cam of docked) {
      db.prepare('UPDATE cameras SET docked = 0 WHERE serial = ?').run(cam.serial);
      custody.append({
        type: 'camera.undocked',
        camera: cam.serial,
        details: { slot: cam.slot, reason: 'daemon restarted' },
      });
      report.camerasMarkedUndocked++;
    }
  }).immediate();
  const live = db.prepare<[string], { status: string; deleted_from_camera: number }>(
    'SELECT status, deleted_from_camera FROM recordings WHERE id = ?',
  );
  for (const id of await archive.stagingIds()) {
    const row = live.get(id);
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
