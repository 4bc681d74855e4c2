import { DriverError } from '../../drivers/types.js';
import { nextStep } from '../lib/failure-policy.js';
import type { RecordingRow } from '../store/recordings.js';
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
    try {
      // The driver checks the identity once more as it deletes: the camera may write in between.
      await cam.session.delete(rec.source_id, rec.source_identity ?? undefined);
    } catch (err) {
      if (!(err instanceof DriverError && err.code === 'changed')) throw err;
      lostTrack(w, cam, rec, 'release', await cam.session.stat(rec.source_id).catch(() => null));
      return;
    }
    w.tx.markDeletedFromCamera(rec, false);
    log.info({ event: 'camera.file_deleted' }, `deleted ${rec.source_path} from the camera`);
  } catch (err) {
    let kind = classify(err);
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
