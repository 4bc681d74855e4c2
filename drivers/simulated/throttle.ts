import { setTimeout as sleep } from 'node:timers/promises';

/**
 * The simulated link's rate limit, shared by every read of one camera as a real USB link is.
 * Each chunk books the link for bytes/rate seconds after the previous booking.
 */
export class Throttle {
  private nextFree = 0;

  constructor(public bytesPerSec: number) {}

  async take(bytes: number, signal?: AbortSignal): Promise<void> {
    if (!this.bytesPerSec) return;
    const now = performance.now();
    const start = Math.max(now, this.nextFree);
    this.nextFree = start + (bytes / this.bytesPerSec) * 1000;
    const wait = this.nextFree - now;
    if (wait > 1) await sleep(wait, undefined, { signal }).catch(() => undefined);
  }
}
