import type { Logger } from 'pino';
import { FailureStreak } from '../log.js';
import type { Db } from '../store/db.js';
import { recordBeat, verifiedThisVisit } from '../store/heartbeat.js';
import type { CheckpointSigner } from './checkpoints.js';
import { RateMeter } from './rate.js';

/** What a beat reads from the offloading, and wakes afterwards. */
export interface IngestView {
  progress(): Array<{ serial: string; inflightBytes: number; receivedBytes: number }>;
  readonly diskLowNow: boolean;
  readonly storeUnwritable: string | null;
  readonly queueActive: number;
  kick(): void;
}

export interface HeartbeatOptions {
  db: Db;
  intervalMs: number;
  log: Logger;
  ingest: IngestView;
  /** Cameras docked in two slots at once. */
  conflicts(): unknown[];
  replicationError(): string | null;
  signer: CheckpointSigner;
}

/**
 * The daemon's beat, every `daemon.heartbeatIntervalMs`: writes what each camera is doing to the
 * store (which `dockd status` reads), signs the custody chain head once enough events have been
 * appended, then wakes the idle cameras (e.g. after `dockd retry`).
 */
export class HeartbeatLoop {
  private readonly rates = new RateMeter();
  private readonly failing = new FailureStreak();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly o: HeartbeatOptions) {}

  /** Beats on the interval until stop or until `signal` aborts. */
  start(signal: AbortSignal): void {
    if (signal.aborted) return;
    this.timer = setInterval(() => this.tick(), this.o.intervalMs);
    signal.addEventListener('abort', () => this.stop(), { once: true });
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private tick(): void {
    const { db, log, ingest } = this.o;
    // Read in the same tick as the engine's bytes in flight: status adds the two up without
    // counting a file that finished in between twice (src/cli/progress.ts).
    try {
      const cameras = ingest.progress().map((c) => ({
        ...c,
        ...verifiedThisVisit(db, c.serial),
        rateBytesPerSec: this.rates.update(c.serial, c.receivedBytes, c.inflightBytes > 0),
      }));
      recordBeat(db, {
        cameras,
        diskLow: ingest.diskLowNow,
        storeUnwritable: ingest.storeUnwritable,
        conflicts: this.o.conflicts(),
        active: ingest.queueActive,
        replicationError: this.o.replicationError(),
      });
      const failedForMs = this.failing.ended();
      // Whoever was paged by the failure learns from the same log that it is over.
      if (failedForMs !== null)
        log.info(
          { event: 'daemon.heartbeat_restored', failedForMs },
          `the heartbeat is written again, after ${Math.round(failedForMs / 1000)} s`,
        );
      this.o.signer.maybeSign();
    } catch (err) {
      // A full disk, or another process holding the store locked, refuses even the heartbeat;
      // status then shows the daemon as not running.
      if (this.failing.failed())
        log.error(
          { event: 'daemon.heartbeat_failed', err },
          `cannot write the heartbeat: ${(err as Error)?.message ?? String(err)}`,
        );
    }
    ingest.kick();
  }
}
