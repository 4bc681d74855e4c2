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
   * The faults armed for one read of `path`, each with the byte it fires at. A fault is counted
   * down only when a read reaches its byte (`fire`), so a read that stops short of it, or a
   * second read racing the first to it, does not use it up.
   */
  planRead(path: string): ReadPlan {
    const plan: ReadPlan = {};
    const io = this.armed('io-error', path)[0];
    if (io) plan.ioError = { at: io.atByte ?? 0, spec: io };
    const corrupt = this.armed('corrupt', path)[0];
    if (corrupt) plan.corrupt = { at: corrupt.atByte ?? 0, spec: corrupt };
    const stall = this.armed('stall', path)[0];
    if (stall) plan.stall = { at: stall.atByte ?? 0, spec: stall };
    return plan;
  }

  /** A read reached the fault's byte: it fires if it has occurrences left, and uses one. */
  fire(f: PlannedFault): boolean {
    return this.take(f.spec);
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

export interface PlannedFault {
  at: number;
  spec: FaultSpec;
}

export interface ReadPlan {
  ioError?: PlannedFault;
  corrupt?: PlannedFault;
  stall?: PlannedFault;
}
