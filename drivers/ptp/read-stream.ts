import { Readable } from 'node:stream';
import { DriverError } from '../types.js';
import { Op } from './constants.js';
import { PtpProtocolError } from './errors.js';
import type { DataStream, PtpSession } from './session.js';

/**
 * How bytes from an offset are fetched: GetObject (from 0, skipping up to the offset when no
 * partial read can serve it), Android's GetPartialObject64, or PTP's 32-bit GetPartialObject.
 */
export type ReadMethod = 'object' | 'partial64' | 'partial32';

/** One partial-read transaction asks for at most this much; a 32-bit length cannot say more anyway. */
const SLICE_BYTES = 1024 * 1024 * 1024;
const TWO_32 = 0x1_0000_0000;

export interface ObjectReadOptions {
  session: PtpSession;
  handle: number;
  /** The object's size as listed. */
  size: number;
  offset: number;
  method: ReadMethod;
  /** The recording id, for messages. */
  label: string;
  /** Buffered bytes before the stream stops pulling from the camera. */
  highWaterMark: number;
  signal?: AbortSignal;
}

/**
 * An object's bytes from an offset to its end, pulled from the camera one bulk transfer per
 * `_read`: nothing is read ahead of the consumer beyond the stream's buffer. While a transfer
 * is running the session is held; aborting or destroying the stream waits for the transfer in
 * flight, cancels the transaction on the camera and only then lets the stream close.
 */
export class PtpObjectStream extends Readable {
  private pos: number;
  /** Bytes of a GetObject to throw away before the requested offset. */
  private skip = 0;
  private current: DataStream | null = null;
  private sliceAsked = 0;
  private sliceGot = 0;
  private objectRead = false;
  private inflight: Promise<void> | null = null;
  private aborted = false;
  private readonly onAbort = () => {
    if (this.aborted) return;
    this.aborted = true;
    const err = new DriverError('transient', 'aborted', 'read aborted');
    void this.stop().finally(() => this.destroy(err));
  };

  private constructor(private readonly o: ObjectReadOptions) {
    super({ highWaterMark: o.highWaterMark });
    this.pos = o.offset;
  }

  /** Starts the first transaction before returning, so a refusal rejects here rather than mid-stream. */
  static async open(o: ObjectReadOptions): Promise<PtpObjectStream> {
    const s = new PtpObjectStream(o);
    try {
      if (!s.atEnd()) await s.openTransaction();
    } catch (err) {
      s.destroy();
      throw err;
    }
    o.signal?.addEventListener('abort', s.onAbort, { once: true });
    if (o.signal?.aborted) s.onAbort();
    return s;
  }

  private atEnd(): boolean {
    return this.o.method === 'object' ? this.objectRead || this.o.size === this.pos : this.pos >= this.o.size;
  }

  private async openTransaction(): Promise<void> {
    const { session, handle, label } = this.o;
    if (this.o.method === 'object') {
      this.skip = this.pos;
      this.current = await session.stream(Op.GetObject, [handle], `GetObject ${label}`, this.o.size);
      return;
    }
    const length = Math.min(SLICE_BYTES, this.o.size - this.pos);
    this.sliceAsked = length;
    this.sliceGot = 0;
    this.current =
      this.o.method === 'partial64'
        ? await session.stream(
            Op.GetPartialObject64,
            [handle, this.pos % TWO_32, Math.floor(this.pos / TWO_32), length],
            `GetPartialObject64 ${label}`,
            length,
          )
        : await session.stream(Op.GetPartialObject, [handle, this.pos, length], `GetPartialObject ${label}`, length);
  }

  /** The next chunk for the consumer, or null at the end. */
  private async pull(): Promise<Uint8Array | null> {
    for (;;) {
      if (this.aborted || this.destroyed) return null;
      if (!this.current) {
        if (this.atEnd()) return null;
        await this.openTransaction();
        continue;
      }
      const chunk = await this.current.next();
      if (chunk === null) {
        const response = await this.current.finish();
        this.current = null;
        if (this.o.method === 'object') {
          this.objectRead = true;
          return null;
        }
        this.endSlice(response.params[0]);
        // A camera that serves nothing more (the file shrank) ends the read; the caller sees it short.
        if (this.sliceGot === 0) return null;
        continue;
      }
      let out = chunk;
      if (this.skip > 0) {
        const n = Math.min(this.skip, out.length);
        this.skip -= n;
        out = out.subarray(n);
        if (out.length === 0) continue;
      }
      this.sliceGot += out.length;
      this.pos += out.length;
      return out;
    }
  }

  private endSlice(reported: number | undefined): void {
    if (reported !== undefined && reported !== this.sliceGot) {
      throw new PtpProtocolError(
        `partial read of ${this.o.label} says ${reported} bytes but sent ${this.sliceGot}`,
        'ptp-partial-mismatch',
      );
    }
    if (this.sliceGot > this.sliceAsked) {
      throw new PtpProtocolError(
        `partial read of ${this.o.label} sent ${this.sliceGot} bytes where ${this.sliceAsked} were asked for`,
        'ptp-partial-mismatch',
      );
    }
  }

  override _read(): void {
    if (this.inflight) return;
    this.inflight = this.pull().then(
      (chunk) => {
        this.inflight = null;
        if (this.aborted || this.destroyed) return;
        this.push(chunk === null ? null : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      },
      (err: unknown) => {
        this.inflight = null;
        // The transaction already cancelled itself; nothing is left to release.
        this.current = null;
        this.destroy(err as Error);
      },
    );
  }

  /** Waits for the transfer in flight, then cancels whatever transaction is still open. */
  private async stop(): Promise<void> {
    await this.inflight;
    const open = this.current;
    this.current = null;
    if (open && !open.finished) await open.cancel().catch(() => undefined);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.o.signal?.removeEventListener('abort', this.onAbort);
    this.stop().then(
      () => cb(err),
      () => cb(err),
    );
  }
}
