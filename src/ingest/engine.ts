/**
 * The offload scheduler: for every docked camera, `perCamera` workers claim work from SQLite one
 * recording at a time and run it through one p-queue bounded by `concurrency`. Work lives in the
 * database, never in an array of promises, so memory does not grow with the number of recordings.
 * What one task does is elsewhere: offload.ts copies a recording, release.ts deletes one from its
 * camera, disk-guard.ts pauses both while the dock's own disk cannot take them.
 */
import PQueue from 'p-queue';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { FailureStreak } from '../log.js';
import type { CameraSession } from '../../drivers/types.js';
import type { Archive } from '../archive/archive.js';
import type { Config } from '../config.js';
import type { RecordingRow } from '../store/recordings.js';
import type { Transitions } from '../store/transitions.js';
import { DiskGuard } from './disk-guard.js';
import { classify, errorText } from './errors.js';
import { CameraLink } from './link.js';
import { offloadOne } from './offload.js';
import { releaseOne } from './release.js';
import type { ActiveCamera, EngineEvents, IngestWork } from './work.js';

export type { EngineEvents } from './work.js';

export interface IngestEngineOptions {
  transitions: Transitions;
  /** Where copies are stored, plain or encrypted. */
  archive: Archive;
  cfg: Config['ingest'];
  log: Logger;
  events: EngineEvents;
  /** Queue an upload in the same transaction that records the verification. */
  replicate?: boolean;
}

type Task = { kind: 'offload' | 'release'; rec: RecordingRow };

export interface CameraProgress {
  serial: string;
  inflightBytes: number;
  receivedBytes: number;
}

export class IngestEngine {
  private readonly queue: PQueue;
  private readonly cameras = new Map<string, ActiveCamera>();
  private readonly claimed = new Set<string>();
  /** Since when the queue could not be read from the store; null while it can. */
  private readonly unreadable = new FailureStreak();
  private stopping = false;
  private readonly work: IngestWork;

  constructor(private readonly opts: IngestEngineOptions) {
    const { cfg, archive, log } = opts;
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
    this.work = {
      tx: opts.transitions,
      archive,
      guard: new DiskGuard(archive, cfg.minFreeBytes, log),
      cfg,
      log,
      events: opts.events,
      replicate: !!opts.replicate,
    };
  }

  private get cfg(): Config['ingest'] {
    return this.opts.cfg;
  }

  private get log(): Logger {
    return this.opts.log;
  }

  private get tx(): Transitions {
    return this.opts.transitions;
  }

  /** Offloading waits for free space (`ingest.minFreeBytes`). */
  get diskLowNow(): boolean {
    return this.work.guard.diskLow;
  }

  /** Why offloading is paused for the dock PC's own storage, for status; null when it is not. */
  get storeUnwritable(): string | null {
    return this.work.guard.unwritable;
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
          this.opts.events.cleared(cam.serial);
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
        const guard = this.work.guard;
        if (task.kind === 'offload' && (!(await guard.writable()) || !(await guard.spaceFor(task.rec)))) {
          await sleep(1000, undefined, { signal }).catch(() => undefined);
          continue;
        }
        if (task.kind === 'release') {
          // A deletion neither waits for the link nor holds it: taking its turn between two
          // transfers, a deletion slowed by the archive's fsyncs (unlink needs the journal) left
          // each link idle for about 100 ms per recording. Drivers serialise their own commands.
          await releaseOne(this.work, cam, task.rec);
          continue;
        }
        // The camera's link first, then a global slot: a task never holds a slot while it
        // waits for its camera, so one busy camera cannot starve the others of slots.
        const releaseLink = await cam.link.acquire(signal).catch(() => null);
        if (!releaseLink) continue;
        try {
          await this.whileReading((done) =>
            offloadOne(this.work, cam, task.rec, () => {
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
        if (kind === 'diskLow') await this.work.guard.noteDiskLow(err);
        if (kind === 'storeUnwritable') this.work.guard.noteUnwritable(err);
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
}
