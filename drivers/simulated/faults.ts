/**
 * Live fault state of one simulated camera. Each fault counts down its `times` as it fires; a
 * rewrite of camera.json replaces the whole state, which is how a test "plugs the camera back in".
 */
import type { FaultSpec } from './camera-file.js';

export class FaultState {
  private readonly faults: FaultSpec[];
  private delivered = 0;
  private detached = false;

  constructor(specs: FaultSpec[]) {
    this.faults = specs.map((f) => ({ ...f }));
  }

  private take(f: FaultSpec): boolean {
    if (f.times === undefined) return true;
    if (f.times <= 0) return false;
    f.times--;
    return true;
  }

  private armed(kind: FaultSpec['kind'], path: string): FaultSpec[] {
    return this.faults.filter((f) => f.kind === kind && f.path === path && (f.times === undefined || f.times > 0));
  }

  /**
   * The faults that will fire on one read of `path`, decided when the read starts so that a
   * fault with `times: 1` fires on exactly one read even if that read is retried midway.
   */
  planRead(path: string): ReadPlan {
    const plan: ReadPlan = {};
    const io = this.armed('io-error', path)[0];
    if (io && this.take(io)) plan.ioErrorAt = io.atByte ?? 0;
    const corrupt = this.armed('corrupt', path)[0];
    if (corrupt && this.take(corrupt)) plan.corruptAt = corrupt.atByte ?? 0;
    const stall = this.armed('stall', path)[0];
    if (stall && this.take(stall)) plan.stallAt = stall.atByte ?? 0;
    return plan;
  }

  deleteFails(path: string): boolean {
    const f = this.armed('delete-error', path)[0];
    return f !== undefined && this.take(f);
  }

  get isDetached(): boolean {
    return this.detached;
  }

  /** Counts delivered bytes; returns how many of `n` may still be delivered before a detach. */
  allowance(n: number): number {
    if (this.detached) return 0;
    for (const f of this.faults) {
      if (f.kind !== 'detach' || f.afterBytes === undefined) continue;
      if (f.times !== undefined && f.times <= 0) continue;
      const left = f.afterBytes - this.delivered;
      if (left < n) {
        this.take(f);
        this.detached = true;
        const allowed = Math.max(0, left);
        this.delivered += allowed;
        return allowed;
      }
    }
    this.delivered += n;
    return n;
  }
}

export interface ReadPlan {
  ioErrorAt?: number;
  corruptAt?: number;
  stallAt?: number;
}
