import { Readable } from 'node:stream';
import type { FileHandle } from 'node:fs/promises';
import { DriverError, type ChunkBuffers } from '../types.js';
import type { FaultState, ReadPlan } from './faults.js';
import type { Throttle } from './throttle.js';

const CHUNK = 256 * 1024;

export interface SimReadOptions {
  handle: FileHandle;
  offset: number;
  size: number;
  plan: ReadPlan;
  faults: FaultState;
  throttle: Throttle;
  signal?: AbortSignal;
  buffers?: ChunkBuffers;
  isGone: () => boolean;
}

/**
 * Streams a file the way a USB link delivers it: in chunks, at the link's rate, with the faults
 * of the read's plan applied at their byte positions.
 */
export class SimReadStream extends Readable {
  private pos: number;
  private readonly o: SimReadOptions;
  private stalled = false;
  private readonly onAbort = () => this.destroy(new DriverError('transient', 'aborted', 'read aborted'));

  constructor(o: SimReadOptions) {
    super({ highWaterMark: CHUNK });
    this.o = o;
    this.pos = o.offset;
    o.signal?.addEventListener('abort', this.onAbort, { once: true });
    // An abort before the read began fires no event: without this the read would run whole.
    if (o.signal?.aborted) this.onAbort();
  }

  override _read(): void {
    this.readChunk().catch((err: unknown) => this.destroy(err as Error));
  }

  private async readChunk(): Promise<void> {
    const { plan, faults } = this.o;
    if (this.destroyed || this.stalled) return;
    if (this.o.isGone() || faults.isDetached) throw new DriverError('deviceGone', 'detached', 'camera is gone');
    // A fault reached by this read fires now, or never on this read if its occurrences are used up.
    if (plan.ioError && this.pos >= plan.ioError.at) {
      const fires = faults.fire(plan.ioError);
      plan.ioError = undefined;
      if (fires) throw new DriverError('transient', 'io-error', `I/O error at byte ${this.pos}`);
    }
    if (plan.stall && this.pos >= plan.stall.at) {
      const fires = faults.fire(plan.stall);
      plan.stall = undefined;
      if (fires) {
        // A stalled link delivers nothing and never ends; only the reader's timeout frees it.
        this.stalled = true;
        return;
      }
    }
    let want = Math.min(CHUNK, this.o.size - this.pos);
    // Stop exactly at a fault's byte so it fires there and not a chunk later.
    for (const f of [plan.ioError, plan.stall]) if (f) want = Math.min(want, f.at - this.pos);
    if (want <= 0) {
      this.push(null);
      return;
    }
    const allowed = faults.allowance(want);
    if (allowed === 0) throw new DriverError('deviceGone', 'detached', 'camera detached');
    await this.o.throttle.take(allowed, this.o.signal);
    if (this.destroyed) return;
    const buf = this.o.buffers?.take(allowed) ?? Buffer.allocUnsafe(allowed);
    const { bytesRead } = await this.o.handle.read(buf, 0, allowed, this.pos);
    if (bytesRead === 0) {
      this.push(null);
      return;
    }
    const chunk = buf.subarray(0, bytesRead);
    const corrupt = plan.corrupt;
    if (corrupt && corrupt.at >= this.pos && corrupt.at < this.pos + bytesRead) {
      plan.corrupt = undefined;
      if (faults.fire(corrupt)) chunk[corrupt.at - this.pos]! ^= 0xff;
    }
    this.pos += bytesRead;
    if (!this.destroyed) this.push(chunk);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.o.signal?.removeEventListener('abort', this.onAbort);
    this.o.handle.close().then(
      () => cb(err),
      () => cb(err),
    );
  }
}
