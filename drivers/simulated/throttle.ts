import { setTimeout as sleep } from 'node:timers/promises';

/**
 * How much link time a camera banks while the host is not asking, as a device's buffer fills
 * between two transfers. Without it every moment the reader spends elsewhere (writing, hashing)
 * would be lost for good: a reader that only hashes got 91.5 % of the nominal rate.
 */
export const BURST_MS = 50;

export interface ThrottleClock {
  now(): number;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

const realClock: ThrottleClock = {
  now: () => performance.now(),
  sleep: (ms, signal) => sleep(ms, undefined, { signal }).catch(() => undefined),
};

/**
 * The simulated link's rate limit, shared by every read of one camera as a real USB link is.
 * A token bucket: each chunk books the link for bytes/rate seconds after the previous booking,
 * and a link that stood idle may run ahead by at most BURST_MS, so over any stretch longer than
 * that it delivers the nominal rate and never more.
 */
export class Throttle {
  private nextFree = -Infinity;

  constructor(
    public bytesPerSec: number,
    private readonly clock: ThrottleClock = realClock,
  ) {}

  async take(bytes: number, signal?: AbortSignal): Promise<void> {
    if (!this.bytesPerSec) return;
    const now = this.clock.now();
    const start = Math.max(now - BURST_MS, this.nextFree);
    this.nextFree = start + (bytes / this.bytesPerSec) * 1000;
    const wait = this.nextFree - now;
    if (wait > 1) await this.clock.sleep(wait, signal);
  }
}
