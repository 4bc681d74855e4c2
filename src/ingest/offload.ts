import { nextStep } from '../lib/failure-policy.js';
import type { RecordingRow } from '../store/recordings.js';
import { copyRecording, spoilsStaging } from './copy.js';
import { classify, errorText } from './errors.js';
import { stillOnCamera, type ActiveCamera, type IngestWork } from './work.js';

/**
 * One recording's offload: copy and hash it from the camera into staging, verify what landed,
 * make sure the camera still holds what was copied, commit it to the archive and record it
 * verified. A failure is recorded with what the failure policy makes of it.
 */
export async function offloadOne(
  w: IngestWork,
  cam: ActiveCamera,
  rec: RecordingRow,
  releaseLink: () => void,
): Promise<void> {
  const log = w.log.child({ camera: cam.serial, recording: rec.id });
  const attempt = rec.attempts + 1;
  const resumeFrom = cam.session.capabilities.resume && w.archive.resumable ? rec.bytes_done : 0;
  w.tx.markCopying(rec, attempt, resumeFrom);
  log.info({ event: 'offload.started', attempt, resumeFrom, bytes: rec.bytes }, `copying ${rec.source_path}`);
  let durable = resumeFrom;
  cam.inflight.set(rec.id, resumeFrom);
  let lastSeen = resumeFrom;
  try {
    const result = await copyRecording(
      { id: rec.id, sourceId: rec.source_id, expectedBytes: rec.bytes, resumeFrom },
      {
        archive: w.archive,
        session: cam.session,
        readTimeoutMs: w.cfg.readTimeoutMs,
        verifySource: w.cfg.verifySource,
        signal: cam.abort.signal,
        onSourceDone: releaseLink,
        onProgress: (n) => {
          cam.received += Math.max(0, n - lastSeen);
          lastSeen = n;
          cam.inflight.set(rec.id, n);
        },
        onDurable: (n) => {
          durable = n;
          w.tx.saveProgress(rec.id, n);
        },
        checkSpace: (remaining) => w.guard.checkSpace(remaining),
      },
    );
    if (!(await stillOnCamera(w, cam, rec, 'copy'))) {
      await w.archive.discardStaging(rec.id);
      return;
    }
    const ref = { id: rec.id, camera: rec.camera, sourcePath: rec.source_path, discoveredAt: rec.discovered_at };
    const archivePath = await w.archive.commit(ref);
    w.tx.markVerified(rec, {
      sha256: result.sha256,
      storedSha256: result.storedSha256,
      storedBytes: result.storedBytes,
      bytes: result.bytes,
      archivePath,
      at: new Date(),
      attempt,
      resumedFrom: result.resumedFrom,
      resumeRefused: !!result.resumeRefused,
      verifiedSource: w.cfg.verifySource,
      encryptedTo: result.encryptedTo ?? null,
      release: w.cfg.deleteFromCamera,
      replicate: w.replicate,
    });
    if (result.resumeRefused) {
      log.warn(
        { event: 'offload.resume_refused', keptBytes: resumeFrom },
        `${rec.source_path}: the kept bytes are not the camera's any more; copied again from the start`,
      );
    }
    log.info(
      { event: 'offload.verified', sha256: result.sha256, bytes: result.bytes, attempt, archivePath },
      `verified ${rec.source_path}`,
    );
  } catch (err) {
    await offloadFailed(w, cam, rec, attempt, err, durable);
  } finally {
    cam.inflight.delete(rec.id);
  }
}

async function offloadFailed(
  w: IngestWork,
  cam: ActiveCamera,
  rec: RecordingRow,
  attempt: number,
  err: unknown,
  durable: number,
): Promise<void> {
  const log = w.log.child({ camera: cam.serial, recording: rec.id });
  const error = errorText(err);
  let kind = classify(err);
  // Our own abort (undock, shutdown) is an interruption, like the camera going away.
  if (cam.abort.signal.aborted) kind = 'deviceGone';
  if (spoilsStaging(err)) {
    await w.archive.discardStaging(rec.id);
    durable = 0;
  }
  // The dock PC's own faults interrupt a copy; they are no fault of the recording.
  const interrupted = kind === 'deviceGone' || kind === 'diskLow' || kind === 'storeUnwritable';
  const step = nextStep({ attempt, paused: interrupted, permanent: kind === 'permanent' }, w.cfg.retry);
  const exhausted = step.action === 'fail';
  const delay = step.action === 'fail' ? 0 : step.delayMs;
  w.tx.copyFailed(rec, {
    attempt,
    error,
    class: kind,
    interrupted,
    exhausted,
    retryInMs: delay,
    keptBytes: durable,
  });
  if (kind === 'deviceGone') {
    log.warn(
      { event: 'offload.interrupted', attempt, error, keptBytes: durable },
      `copy of ${rec.source_path} interrupted; it resumes when the camera docks again`,
    );
    if (!cam.abort.signal.aborted) w.events.deviceGone(cam.serial, error);
  } else if (kind === 'diskLow') {
    await w.guard.noteDiskLow(err);
  } else if (kind === 'storeUnwritable') {
    w.guard.noteUnwritable(err);
  } else if (exhausted) {
    log.error(
      { event: 'offload.failed', attempt, error, class: kind },
      `giving up on ${rec.source_path}; it stays on the camera`,
    );
  } else {
    log.warn(
      { event: 'offload.retry', attempt, error, retryInMs: delay },
      `copy of ${rec.source_path} failed; retrying`,
    );
  }
}
