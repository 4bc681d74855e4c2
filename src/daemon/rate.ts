/** Per-camera transfer rate, smoothed so one slow chunk does not swing the ETA wildly. */
export class RateMeter {
  private readonly last = new Map<string, { t: number; bytes: number; rate: number | null }>();

  constructor(private readonly alpha = 0.3) {}

  update(key: string, totalBytes: number, now = performance.now()): number | null {
    const prev = this.last.get(key);
    if (!prev) {
      this.last.set(key, { t: now, bytes: totalBytes, rate: null });
      return null;
    }
    const dt = (now - prev.t) / 1000;
    if (dt <= 0) return prev.rate;
    const inst = Math.max(0, totalBytes - prev.bytes) / dt;
    const rate = prev.rate === null ? inst : prev.rate + this.alpha * (inst - prev.rate);
    this.last.set(key, { t: now, bytes: totalBytes, rate });
    return Math.round(rate);
  }
}
