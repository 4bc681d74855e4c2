/**
 * Per-camera transfer rate, smoothed so one slow chunk does not swing the ETA wildly. A camera
 * with nothing in flight and no bytes since the last reading has no rate: a finished camera
 * must not show a figure slowly falling towards zero, nor lend it to the next visit's start.
 */
export class RateMeter {
  private readonly last = new Map<string, { t: number; bytes: number; rate: number | null }>();

  constructor(private readonly alpha = 0.3) {}

  update(key: string, totalBytes: number, inFlight = true, now = performance.now()): number | null {
    const prev = this.last.get(key);
    if (!inFlight && (!prev || totalBytes <= prev.bytes)) {
      this.last.set(key, { t: now, bytes: totalBytes, rate: null });
      return null;
    }
    if (!prev) {
      this.last.set(key, { t: now, bytes: totalBytes, rate: null });
      return null;
    }
    const dt = (now - prev.t) / 1000;
    if (dt <= 0) return prev.rate === null ? null : Math.round(prev.rate);
    const inst = Math.max(0, totalBytes - prev.bytes) / dt;
    const rate = prev.rate === null ? inst : prev.rate + this.alpha * (inst - prev.rate);
    this.last.set(key, { t: now, bytes: totalBytes, rate });
    return Math.round(rate);
  }
}
