/**
 * What one recording's offload and one camera deletion share: the camera being worked on, and
 * the parts of ingest they report to. The scheduler (engine.ts) owns both and hands them over.
 */
import type { Logger } from 'pino';
import type { CameraSession, RecordingEntry } from '../../drivers/types.js';
import type { Archive } from '../archive/archive.js';
import type { Config } from '../config.js';
import type { RecordingRow } from '../store/recordings.js';
import type { Transitions } from '../store/transitions.js';
import type { DiskGuard } from './disk-guard.js';
import type { CameraLink } from './link.js';
import { sameContent } from './planner.js';

export interface EngineEvents {
  /** A driver reported the camera gone; the dock decides what that means. */
  deviceGone(serial: string, reason: string): void;
  /** Every recording of the visit is verified (and released) or failed. */
  cleared(serial: string): void;
  /** The camera's files changed under a copy or a deletion: list it again to plan what is there now. */
  relist(serial: string): void;
}

export interface ActiveCamera {
  serial: string;
  visit: number;
  session: CameraSession;
  abort: AbortController;
  workers: Set<Promise<void>>;
  /** Bytes received so far per in-flight recording, for progress. */
  inflight: Map<string, number>;
  received: number;
  /** 'cleared' was reported and no work has been claimed since. */
  cleared: boolean;
  link: CameraLink;
}

export interface IngestWork {
  tx: Transitions;
  archive: Archive;
  guard: DiskGuard;
  cfg: Config['ingest'];
  log: Logger;
  events: EngineEvents;
  /** Queue an upload in the same transaction that records the verification. */
  replicate: boolean;
}

/**
 * Asks the camera whether it still holds, under the recording's id, the content the row is
 * bound to. When it does not, the row lets go of the name (nothing is deleted in its name) and
 * the camera is listed again, so whatever it holds now is planned as a recording of its own.
 * A file already gone at a deletion is the deletion done: the archive holds the content.
 */
export async function stillOnCamera(
  w: IngestWork,
  cam: ActiveCamera,
  rec: RecordingRow,
  step: 'copy' | 'release',
): Promise<boolean> {
  const now = await cam.session.stat(rec.source_id);
  if (now && sameContent(rec, now)) return true;
  if (!now && step === 'release') {
    w.tx.markDeletedFromCamera(rec, true);
    w.log.info(
      { event: 'camera.file_deleted', camera: cam.serial, recording: rec.id, alreadyGone: true },
      `${rec.source_path} was already gone from the camera`,
    );
    return false;
  }
  lostTrack(w, cam, rec, step, now);
  return false;
}

/** The row lets go of a name the camera holds other content under (or nothing), and the camera is listed again. */
export function lostTrack(
  w: IngestWork,
  cam: ActiveCamera,
  rec: RecordingRow,
  step: 'copy' | 'release',
  now: RecordingEntry | null,
): void {
  const log = w.log.child({ camera: cam.serial, recording: rec.id });
  const noted = w.tx.lostTrack(rec, {
    noticedBy: step,
    now: now ? { bytes: now.bytes, identity: now.identity } : null,
  });
  if (!noted) {
    // Before a deletion there is nothing to say: nothing is deleted, and the listing said why.
    if (step === 'copy')
      log.info(
        { event: 'offload.discarded', sourcePath: rec.source_path },
        `${rec.source_path}: the copy is discarded, the camera's listing had already found other content under the name`,
      );
    return;
  }
  if (now) {
    log.warn(
      { event: 'recording.replaced_on_camera', sourcePath: rec.source_path, noticedBy: step, status: rec.status },
      step === 'release'
        ? `${rec.source_path} on the camera is not the file that was archived; not deleted, it is offloaded as a recording of its own`
        : `${rec.source_path} changed on the camera while it was copied; the copy is discarded and the file is offloaded as a recording of its own`,
    );
  } else {
    log.warn(
      { event: 'recording.vanished', sourcePath: rec.source_path, noticedBy: step },
      step === 'copy'
        ? `${rec.source_path} left the camera while it was copied; the copy is discarded`
        : `${rec.source_path} left the camera before dockd deleted it`,
    );
  }
  w.events.relist(cam.serial);
}
