import type { Logger } from 'pino';
import type { Db } from '../store/db.js';
import type { Config } from '../config.js';
import type { CustodyLog } from '../store/custody-log.js';
import type { BatteryRecorder } from '../battery/recorder.js';
import { sweepRetention } from '../custody/retention.js';
import { pruneCameraEvents } from '../store/camera-settings.js';

export interface SweepOptions {
  db: Db;
  custody: CustodyLog;
  battery: BatteryRecorder;
  retention: Config['retention'];
  /** battery.keepDays, for the log lines: the recorder holds the cut-off itself. */
  keepDays: number;
  log: Logger;
}

/**
 * The periodic clean-ups, one after another: the retention sweep, then the battery samples and
 * the cameras' event logs older than `battery.keepDays`. One sweep at start and one every
 * `retention.sweepIntervalMs`; a step that fails is logged and tried again at the next sweep.
 */
export class Sweeps {
  private timer: NodeJS.Timeout | null = null;
  /** The sweep under way: stop waits for it, so that it never finds the store closed. */
  private running: Promise<void> | null = null;

  constructor(private readonly o: SweepOptions) {}

  /** Sweeps now and then on the interval, until stop or until `signal` aborts. */
  start(signal: AbortSignal): void {
    const tick = () => {
      // A sweep still under way when the next is due is not doubled.
      if (this.running || signal.aborted) return;
      this.running = this.sweep(signal).finally(() => (this.running = null));
    };
    tick();
    this.timer = setInterval(tick, this.o.retention.sweepIntervalMs);
    signal.addEventListener('abort', () => this.clearTimer(), { once: true });
  }

  /** No more sweeps; resolves once the one under way, if any, has finished. */
  async stop(): Promise<void> {
    this.clearTimer();
    await this.running;
  }

  private clearTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /**
   * Never rejects. An abort skips the steps not yet begun, and stops a pruning between two of its
   * batches: a stop must not wait for years of old samples (a service manager kills a stop that
   * takes too long), and what is left is still old at the next sweep.
   */
  async sweep(signal: AbortSignal): Promise<void> {
    const { db, custody, battery, retention, keepDays, log } = this.o;
    if (signal.aborted) return;
    try {
      const { deleted } = await sweepRetention(db, custody, retention, Date.now(), signal);
      for (const d of deleted)
        log.info(
          { event: 'retention.deleted', camera: d.camera, recording: d.id, sha256: d.sha256, reason: d.reason },
          `retention deleted ${d.id}`,
        );
    } catch (err) {
      log.error({ event: 'retention.error', err }, 'retention sweep failed');
    }
    if (signal.aborted) return;
    try {
      const samples = await battery.prune(Date.now(), signal);
      if (samples)
        log.info(
          { event: 'battery.pruned', samples, keepDays, ...stopped(signal) },
          `deleted ${samples} battery samples older than ${keepDays} days${stoppedNote(signal)}`,
        );
    } catch (err) {
      // As with the retention sweep: the next sweep tries again, and nothing depends on it meanwhile.
      log.error({ event: 'battery.prune_failed', err }, 'battery sample pruning failed');
    }
    if (signal.aborted) return;
    try {
      // Cameras' event logs are kept exactly as long as their battery samples.
      const events = await pruneCameraEvents(db, battery.cutoff(), signal);
      if (events)
        log.info(
          { event: 'camera.events_pruned', events, keepDays, ...stopped(signal) },
          `deleted ${events} camera event-log entries older than ${keepDays} days${stoppedNote(signal)}`,
        );
    } catch (err) {
      log.error({ event: 'camera.events_prune_failed', err }, 'camera event-log pruning failed');
    }
  }
}

/** Marks a pruning cut short by the daemon's stop. */
function stopped(signal: AbortSignal): { interrupted?: true } {
  return signal.aborted ? { interrupted: true } : {};
}

function stoppedNote(signal: AbortSignal): string {
  return signal.aborted ? ' before the stop; the rest goes at the next sweep' : '';
}
