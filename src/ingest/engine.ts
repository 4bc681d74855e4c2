/**
 * The offload engine: for every docked camera, `perCamera` workers claim work from SQLite one
 * recording at a time and run it through one p-queue bounded by `concurrency`. Work lives in the
 * database, never in an array of promises, so memory does not grow with the number of recordings.
 */
import PQueue from 'p-queue';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { FailureStreak } from '../log.js';
import { DriverError, type CameraSession, type RecordingEntry } from '../../drivers/types.js';
import type { Config } from '../config.js';
import type { CustodyLog } from '../store/custody-log.js';
import type { Db } from '../store/db.js';
import type { RecordingRow } from '../store/recordings.js';
import { Transitions } from '../store/transitions.js';
import { sameContent } from './planner.js';
import type { Archive } from '../archive/archive.js';
import { copyRecording, spoilsStaging } from './copy.js';
import { CameraLink } from './link.js';
import { classify, DiskLowError, errorText } from './errors.js';
import { nextStep } from '../lib/failure-policy.js';

type Task = { kind: 'offload' | 'release'; rec: RecordingRow };

interface ActiveCamera {
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

export interface CameraProgress {
  serial: string;
  inflightBytes: number;
  receivedBytes: number;
}

export interface EngineEvents {
  /** A driver reported the camera gone; the dock decides what that means. */
  deviceGone(serial: string, reason: string): void;
  /** Every recording of the visit is verified (and released) or failed. */
  cleared(serial: string): void;
  /** The camera's files changed under a copy or a deletion: list it again to plan what is there now. */
  relist(serial: string): void;
}

export class IngestEngine {
  private readonly queue: PQueue;
  private readonly cameras = new Map<string, ActiveCamera>();
  private readonly claimed = new Set<string>();
  private diskLow = false;
  /** Why staging or the archive cannot be written; null while they can. */
  private unwritable: string | null = null;
  /** Since when the queue could not be read from the store; null while it can. */
  private readonly unreadable = new FailureStreak();
  private stopping = false;
  private readonly tx: Transitions;

  constructor(
    private readonly db: Db,
    private readonly custody: CustodyLog,
    /** Where copies are stored, plain or encrypted. */
    private readonly archive: Archive,
    private readonly cfg: Config['ingest'],
    private readonly log: Logger,
    private readonly events: EngineEvents,
    private readonly opts: {
      /** Queue a replication job in the same transaction that records the verification. */
      replicate?: boolean;
    } = {},
  ) {
    this.queue = new PQueue({ concurrency: cfg.concurrency });
    if (cfg.directIo) {
      const probe = archive.useDirectIo();
      if (probe.ok) {
        log.info({ event: 'ingest.direct_io', enabled: true }, 'staging files are written and verified with O_DIRECT');
      } else {
        // Asked for and refused: the copies are still verified, but from the page cache.
        log.warn(
          { event: 'ingest.direct_io', enabled: false, reason: probe.reason },
          `ingest.directIo: O_DIRECT failed in ${archive.stagingDir} (${probe.reason}); staging files go through the page cache`,
        );
      }
    }
    this.tx = new Transitions(db, custody);
  }

  attach(serial: string, visit: number, session: CameraSession): void {
    if (this.cameras.has(serial)) return;
    const cam: ActiveCamera = {
      serial,
      visit,
      session,
      abort: new AbortController(),
      workers: new Set(),
      inflight: new Map(),
      received: 0,
      cleared: false,
      link: new CameraLink(this.cfg.perCamera),
    };
    this.cameras.set(serial, cam);
    this.fill(cam);
  }

  /** Stops the camera's work; in-flight copies end as interrupted and resume at the next dock. */
  async detach(serial: string): Promise<void> {
    const cam = this.cameras.get(serial);
    if (!cam) return;
    this.cameras.delete(serial);
    cam.abort.abort();
    await Promise.allSettled([...cam.workers]);
  }

  isActive(serial: string): boolean {
    return this.cameras.has(serial);
  }

  /** Wakes idle cameras, e.g. after `dockd retry` put failed recordings back in the queue. */
  kick(): void {
    for (const cam of this.cameras.values()) this.fill(cam);
  }

  progress(): CameraProgress[] {
    return [...this.cameras.values()].map((c) => ({
      serial: c.serial,
      inflightBytes: [...c.inflight.values()].reduce((a, b) => a + b, 0),
      receivedBytes: c.received,
    }));
  }

  get queueActive(): number {
    return this.queue.pending;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.allSettled([...this.cameras.keys()].map((s) => this.detach(s)));
    await this.queue.onIdle();
  }

  private fill(cam: ActiveCamera): void {
    if (this.stopping || cam.abort.signal.aborted) return;
    // Twice the link's slots: while one copy is verified and committed the next one transfers.
    while (cam.workers.size < this.cfg.perCamera * 2) {
      const w: Promise<void> = this.worker(cam).finally(() => {
        cam.workers.delete(w);
        if (
          cam.workers.size === 0 &&
          !cam.cleared &&
          !cam.abort.signal.aborted &&
          this.cameras.get(cam.serial) === cam
        ) {
          cam.cleared = true;
          this.events.cleared(cam.serial);
        }
      });
      cam.workers.add(w);
    }
  }

  private claim(cam: ActiveCamera): Task | null {
    const now = Date.now();
    for (const rec of this.tx.dueReleases(cam.serial, now)) {
      if (!this.claimed.has(rec.id)) return { kind: 'release', rec };
    }
    for (const rec of this.tx.dueOffloads(cam.serial, now, this.cfg.perCamera * 2 + 1)) {
      if (!this.claimed.has(rec.id)) return { kind: 'offload', rec };
    }
    return null;
  }

  private async worker(cam: ActiveCamera): Promise<void> {
    const signal = cam.abort.signal;
    while (!signal.aborted) {
      let task: Task | null;
      let next: number | null | undefined;
      try {
        task = this.claim(cam);
        next = task ? undefined : this.tx.nextDue(cam.serial);
        this.queueReadable(true, cam.serial);
      } catch (err) {
        // A store that cannot be read (a failing disk) must not end the daemon: every recording
        // stays where it is, on the camera and in the store, until the store answers again.
        this.queueReadable(false, cam.serial, err);
        await sleep(1000, undefined, { signal }).catch(() => undefined);
        continue;
      }
      if (!task) {
        if (next === null || next === undefined) return;
        await sleep(Math.min(Math.max(next - Date.now(), 10), 1000), undefined, { signal }).catch(() => undefined);
        continue;
      }
      this.claimed.add(task.rec.id);
      cam.cleared = false;
      try {
        if (task.kind === 'offload' && (!(await this.writable()) || !(await this.spaceFor(task.rec)))) {
          await sleep(1000, undefined, { signal }).catch(() => undefined);
          continue;
        }
        if (task.kind === 'release') {
          // A deletion neither waits for the link nor holds it: taking its turn between two
          // transfers, a deletion slowed by the archive's fsyncs (unlink needs the journal) left
          // each link idle for about 100 ms per recording. Drivers serialise their own commands.
          await this.release(cam, task.rec);
          continue;
        }
        // The camera's link first, then a global slot: a task never holds a slot while it
        // waits for its camera, so one busy camera cannot starve the others of slots.
        const releaseLink = await cam.link.acquire(signal).catch(() => null);
        if (!releaseLink) continue;
        try {
          await this.whileReading((done) =>
            this.offload(cam, task.rec, () => {
              releaseLink();
              done();
            }),
          );
        } finally {
          releaseLink();
        }
      } catch (err) {
        // Only our own bookkeeping gets here (e.g. SQLite refusing a write on a full disk): keep
        // the worker alive, put the recording back where a later pass finds it, and slow down.
        const kind = classify(err);
        if (kind === 'diskLow')
          this.setDiskLow(true, await this.archive.freeBytes().catch(() => 0), this.cfg.minFreeBytes);
        if (kind === 'storeUnwritable') this.setUnwritable(err);
        this.log.error(
          { event: 'ingest.error', camera: cam.serial, recording: task.rec.id, err },
          'ingest bookkeeping failed; will try again',
        );
        await this.resetAfterError(task.rec, errorText(err), signal);
      } finally {
        this.claimed.delete(task.rec.id);
      }
    }
  }

  /** Logs the start and the end of a streak of failed queue reads, once each. */
  private queueReadable(ok: boolean, camera: string, err?: unknown): void {
    if (ok) {
      const failedForMs = this.unreadable.ended();
      if (failedForMs !== null)
        this.log.info(
          { event: 'ingest.queue_readable', camera, failedForMs },
          `the queue can be read from the store again, after ${Math.round(failedForMs / 1000)} s`,
        );
    } else if (this.unreadable.failed()) {
      this.log.error(
        { event: 'ingest.queue_unreadable', camera, err },
        `cannot read the queue from the store: ${errorText(err)}; trying again every second`,
      );
    }
  }

  /**
   * Runs a task that holds one of the `concurrency` slots only while it talks to a camera. The
   * fsync and re-hash of a finished copy run outside it: holding the slot through them kept a
   * camera's next transfer waiting on its own verification, and four links throttled to 40 MB/s
   * each lost about 3 % of their time that way.
   */
  private async whileReading(task: (done: () => void) => Promise<void>): Promise<void> {
    let run!: Promise<void>;
    await this.queue.add(async () => {
      let done!: () => void;
      const reading = new Promise<void>((resolve) => (done = resolve));
      run = task(done);
      await Promise.race([reading, run.catch(() => undefined)]);
    });
    await run;
  }

  /** Retries until the store takes the write again; nothing can progress without it anyway. */
  private async resetAfterError(rec: RecordingRow, error: string, signal: AbortSignal): Promise<void> {
    for (;;) {
      await sleep(1000, undefined, { signal }).catch(() => undefined);
      try {
        this.tx.copyInterrupted(rec, 'bookkeeping failed', error);
        return;
      } catch {
        // a restart's recovery resets 'copying' rows if this never succeeds
        if (signal.aborted) return;
      }
    }
  }

  private async spaceFor(rec: RecordingRow): Promise<boolean> {
    const free = await this.archive.freeBytes();
    const required = this.cfg.minFreeBytes + (rec.bytes - rec.bytes_done);
    this.setDiskLow(free < required, free, required);
    return !this.diskLow;
  }

  private setDiskLow(low: boolean, freeBytes: number, requiredBytes: number): void {
    if (low === this.diskLow) return;
    this.diskLow = low;
    if (low) {
      this.log.warn(
        { event: 'ingest.disk_low', freeBytes, requiredBytes },
        `offloading paused: ${freeBytes} bytes free, ${requiredBytes} required`,
      );
    } else {
      this.log.info({ event: 'ingest.disk_ok', freeBytes, requiredBytes }, 'offloading resumed: free space is back');
    }
  }

  /** Offloading waits for free space (`ingest.minFreeBytes`). */
  get diskLowNow(): boolean {
    return this.diskLow;
  }

  /** Why offloading is paused for the dock PC's own storage, for status; null when it is not. */
  get storeUnwritable(): string | null {
    return this.unwritable;
  }

  /**
   * While staging or the archive refuses writes, no copy starts: each would fail at once and
   * the camera's recordings are not at fault. The store is tried again before each claim.
   */
  private async writable(): Promise<boolean> {
    if (this.unwritable === null) return true;
    try {
      await this.archive.probeWritable();
    } catch (err) {
      if (classify(err) !== 'storeUnwritable') throw err;
      return false;
    }
    this.log.info(
      { event: 'ingest.store_writable' },
      'offloading resumed: staging and the archive can be written again',
    );
    this.unwritable = null;
    return true;
  }

  private setUnwritable(err: unknown): void {
    if (this.unwritable !== null) return;
    this.unwritable = errorText(err);
    this.log.error(
      { event: 'ingest.store_unwritable', err },
      `offloading paused: the dock cannot write its staging or archive folder (${this.unwritable}); recordings stay on the cameras and keep their retries`,
    );
  }

  private async offload(cam: ActiveCamera, rec: RecordingRow, releaseLink: () => void): Promise<void> {
    const log = this.log.child({ camera: cam.serial, recording: rec.id });
    const attempt = rec.attempts + 1;
    const resumeFrom = cam.session.capabilities.resume && this.archive.resumable ? rec.bytes_done : 0;
    this.tx.markCopying(rec, attempt, resumeFrom);
    log.info({ event: 'offload.started', attempt, resumeFrom, bytes: rec.bytes }, `copying ${rec.source_path}`);
    let durable = resumeFrom;
    cam.inflight.set(rec.id, resumeFrom);
    let lastSeen = resumeFrom;
    try {
      const result = await copyRecording(
        { id: rec.id, sourceId: rec.source_id, expectedBytes: rec.bytes, resumeFrom },
        {
          archive: this.archive,
          session: cam.session,
          readTimeoutMs: this.cfg.readTimeoutMs,
          verifySource: this.cfg.verifySource,
          signal: cam.abort.signal,
          onSourceDone: releaseLink,
          onProgress: (n) => {
            cam.received += Math.max(0, n - lastSeen);
            lastSeen = n;
            cam.inflight.set(rec.id, n);
          },
          onDurable: (n) => {
            durable = n;
            this.tx.saveProgress(rec.id, n);
          },
          checkSpace: async (remaining) => {
            const free = await this.archive.freeBytes();
            if (free < this.cfg.minFreeBytes + remaining)
              throw new DiskLowError(free, this.cfg.minFreeBytes + remaining);
          },
        },
      );
      if (!(await this.stillOnCamera(cam, rec, 'copy'))) {
        await this.archive.discardStaging(rec.id);
        return;
      }
      const ref = { id: rec.id, camera: rec.camera, sourcePath: rec.source_path, discoveredAt: rec.discovered_at };
      const archivePath = await this.archive.commit(ref);
      this.tx.markVerified(rec, {
        sha256: result.sha256,
        storedSha256: result.storedSha256,
        storedBytes: result.storedBytes,
        bytes: result.bytes,
        archivePath,
        at: new Date(),
        attempt,
        resumedFrom: result.resumedFrom,
        resumeRefused: !!result.resumeRefused,
        verifiedSource: this.cfg.verifySource,
        encryptedTo: result.encryptedTo ?? null,
        release: this.cfg.deleteFromCamera,
        replicate: !!this.opts.replicate,
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
      await this.offloadFailed(cam, rec, attempt, err, durable);
    } finally {
      cam.inflight.delete(rec.id);
    }
  }

  private async offloadFailed(
    cam: ActiveCamera,
    rec: RecordingRow,
    attempt: number,
    err: unknown,
    durable: number,
  ): Promise<void> {
    const log = this.log.child({ camera: cam.serial, recording: rec.id });
    const error = errorText(err);
    let kind = classify(err);
    // Our own abort (undock, shutdown) is an interruption, like the camera going away.
    if (cam.abort.signal.aborted) kind = 'deviceGone';
    if (spoilsStaging(err)) {
      await this.archive.discardStaging(rec.id);
      durable = 0;
    }
    // The dock PC's own faults interrupt a copy; they are no fault of the recording.
    const interrupted = kind === 'deviceGone' || kind === 'diskLow' || kind === 'storeUnwritable';
    const step = nextStep({ attempt, paused: interrupted, permanent: kind === 'permanent' }, this.cfg.retry);
    const exhausted = step.action === 'fail';
    const delay = step.action === 'fail' ? 0 : step.delayMs;
    this.tx.copyFailed(rec, {
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
      if (!cam.abort.signal.aborted) this.events.deviceGone(cam.serial, error);
    } else if (kind === 'diskLow') {
      const e = err instanceof DiskLowError ? err : null;
      this.setDiskLow(true, e?.freeBytes ?? 0, e?.requiredBytes ?? this.cfg.minFreeBytes);
    } else if (kind === 'storeUnwritable') {
      this.setUnwritable(err);
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

  /**
   * Asks the camera whether it still holds, under the recording's id, the content the row is
   * bound to. When it does not, the row lets go of the name (nothing is deleted in its name) and
   * the camera is listed again, so whatever it holds now is planned as a recording of its own.
   * A file already gone at a deletion is the deletion done: the archive holds the content.
   */
  private async stillOnCamera(cam: ActiveCamera, rec: RecordingRow, step: 'copy' | 'release'): Promise<boolean> {
    const now = await cam.session.stat(rec.source_id);
    if (now && sameContent(rec, now)) return true;
    const log = this.log.child({ camera: cam.serial, recording: rec.id });
    if (!now && step === 'release') {
      this.tx.markDeletedFromCamera(rec, true);
      log.info(
        { event: 'camera.file_deleted', alreadyGone: true },
        `${rec.source_path} was already gone from the camera`,
      );
      return false;
    }
    this.lostTrack(cam, rec, step, now);
    return false;
  }

  /** The row lets go of a name the camera holds other content under (or nothing), and the camera is listed again. */
  private lostTrack(cam: ActiveCamera, rec: RecordingRow, step: 'copy' | 'release', now: RecordingEntry | null): void {
    const log = this.log.child({ camera: cam.serial, recording: rec.id });
    this.tx.lostTrack(rec, { noticedBy: step, now: now ? { bytes: now.bytes, identity: now.identity } : null });
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
    this.events.relist(cam.serial);
  }

  private async release(cam: ActiveCamera, rec: RecordingRow): Promise<void> {
    if (cam.abort.signal.aborted) return;
    const log = this.log.child({ camera: cam.serial, recording: rec.id });
    try {
      if (!(await this.stillOnCamera(cam, rec, 'release'))) return;
      try {
        // The driver checks the identity once more as it deletes: the camera may write in between.
        await cam.session.delete(rec.source_id, rec.source_identity ?? undefined);
      } catch (err) {
        if (!(err instanceof DriverError && err.code === 'changed')) throw err;
        this.lostTrack(cam, rec, 'release', await cam.session.stat(rec.source_id).catch(() => null));
        return;
      }
      this.tx.markDeletedFromCamera(rec, false);
      log.info({ event: 'camera.file_deleted' }, `deleted ${rec.source_path} from the camera`);
    } catch (err) {
      let kind = classify(err);
      if (cam.abort.signal.aborted) kind = 'deviceGone';
      const error = errorText(err);
      const attempts = this.tx.releaseAttempts(rec.id) + 1;
      const gone = kind === 'deviceGone';
      const step = nextStep({ attempt: attempts, paused: gone, permanent: kind === 'permanent' }, this.cfg.retry);
      const exhausted = step.action === 'fail';
      this.tx.deleteFailed(rec, {
        attempt: attempts,
        error,
        exhausted,
        notBefore: Date.now() + (step.action === 'fail' ? 0 : step.delayMs),
      });
      log.warn(
        { event: 'camera.file_delete_failed', error, attempt: attempts, willRetry: !exhausted },
        `could not delete ${rec.source_path} from the camera`,
      );
      if (gone && !cam.abort.signal.aborted) this.events.deviceGone(cam.serial, error);
    }
  }
}
