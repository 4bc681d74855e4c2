import { DriverError } from '../../drivers/types.js';
import { nextStep } from '../lib/failure-policy.js';
import type { RecordingRow } from '../store/recordings.js';
import { cameraHashMatches } from './copy.js';
import { classify, errorText } from './errors.js';
import { lostTrack, stillOnCamera, type ActiveCamera, type IngestWork } from './work.js';

/**
 * Deletes a verified recording from its camera, once the camera is known to still hold the very
 * content that was archived; the driver checks that identity again as it deletes.
 */
export async function releaseOne(w: IngestWork, cam: ActiveCamera, rec: RecordingRow): Promise<void> {
  if (cam.abort.signal.aborted) return;
  const log = w.log.child({ camera: cam.serial, recording: rec.id });
  try {
    if (!(await stillOnCamera(w, cam, rec, 'release'))) return;
    const identity = rec.source_identity ?? (await identityOfArchivedContent(w, cam, rec));
    if (identity === null) return;
    w.tx.beforeDeletion(rec);
    try {
      // The driver checks the identity once more as it deletes: the camera may write in between.
      await cam.session.delete(rec.source_id, identity);
    } catch (err) {
      if (!(err instanceof DriverError && err.code === 'changed')) throw err;
      lostTrack(w, cam, rec, 'release', await cam.session.stat(rec.source_id).catch(() => null));
      return;
    }
    w.tx.markDeletedFromCamera(rec, false);
    log.info({ event: 'camera.file_deleted' }, `deleted ${rec.source_path} from the camera`);
  } catch (err) {
    let kind = classify(err);
    // The store's own refusal: nothing was deleted, and the deletion's failure could not be
    // recorded either. The worker pauses on it as on any bookkeeping failure.
    if (kind === 'storeUnwritable' || kind === 'diskLow') throw err;
    if (cam.abort.signal.aborted) kind = 'deviceGone';
    const error = errorText(err);
    const attempts = w.tx.releaseAttempts(rec.id) + 1;
    const gone = kind === 'deviceGone';
    const step = nextStep({ attempt: attempts, paused: gone, permanent: kind === 'permanent' }, w.cfg.retry);
    const exhausted = step.action === 'fail';
    w.tx.deleteFailed(rec, {
      attempt: attempts,
      error,
      paused: gone,
      exhausted,
      notBefore: Date.now() + (step.action === 'fail' ? 0 : step.delayMs),
    });
    log.warn(
      { event: 'camera.file_delete_failed', error, attempt: attempts, willRetry: !exhausted },
      `could not delete ${rec.source_path} from the camera`,
    );
    if (gone && !cam.abort.signal.aborted) w.events.deviceGone(cam.serial, error);
  }
}

/**
 * A recording archived before dockd kept identities is matched to the camera's file by size
 * alone, which a rewritten file of the same size passes. Before such a deletion the file is read
 * again and held to the archived SHA-256; the identity it had then guards the deletion. Null
 * when the camera holds other content: the row lets go of the name and nothing is deleted.
 */
async function identityOfArchivedContent(w: IngestWork, cam: ActiveCamera, rec: RecordingRow): Promise<string | null> {
  const before = await cam.session.stat(rec.source_id);
  if (!before || rec.sha256 === null) {
    lostTrack(w, cam, rec, 'release', before);
    return null;
  }
  const ctx = {
    archive: w.archive,
    session: cam.session,
    readTimeoutMs: w.cfg.readTimeoutMs,
    signal: cam.abort.signal,
  };
  const { matches } = await cameraHashMatches(ctx, rec.source_id, rec.bytes, rec.sha256);
  if (!matches) {
    lostTrack(w, cam, rec, 'release', before);
    return null;
  }
  return before.identity;
}
