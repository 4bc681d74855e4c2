import { Readable } from 'node:stream';
import type { FileHandle } from 'node:fs/promises';
import { DriverError, type ChunkBuffers } from '../types.js';

const CHUNK = 1024 * 1024;

export interface VolumeReadOptions {
  handle: FileHandle;
  offset: number;
  signal?: AbortSignal;
  buffers?: ChunkBuffers;
  /** Throws a deviceGone DriverError when the camera left; cheap enough to run per chunk. */
  check(): Promise<void>;
  /** Turns a filesystem error into the DriverError callers branch on. */
  classify(err: unknown): Promise<DriverError>;
}

/**
 * A file on the camera's volume from an offset to its end. Between chunks it checks that the
 * USB device is still there: an open file on a yanked volume may keep answering from the page
 * cache, and a copy must not end "complete" from a camera that is gone.
 */
export class VolumeReadStream extends Readable {
  private pos: number;
  private inflight: Promise<void> | null = null;
  private aborted = false;
  private readonly onAbort = () => {
    this.aborted = true;
    const err = new DriverError('transient', 'aborted', 'read aborted');
    // The contract: the device is no longer touched by the time the stream is destroyed.
    void (this.inflight ?? Promise.resolve()).finally(() => this.destroy(err));
  };

  constructor(private readonly o: VolumeReadOptions) {
    super({ highWaterMark: CHUNK });
    this.pos = o.offset;
    o.signal?.addEventListener('abort', this.onAbort, { once: true });
    // Aborted while the file was being opened: that fired no event, and the read would run whole.
    if (o.signal?.aborted) this.onAbort();
  }

  override _read(): void {
    if (this.aborted || this.destroyed) return;
    const p = this.readChunk();
    this.inflight = p.catch(() => undefined);
    p.catch((err: unknown) => this.destroy(err as Error));
  }

  private async readChunk(): Promise<void> {
    await this.o.check();
    if (this.aborted || this.destroyed) return;
    const buf = this.o.buffers?.take(CHUNK) ?? Buffer.allocUnsafe(CHUNK);
    let bytesRead: number;
    try {
      ({ bytesRead } = await this.o.handle.read(buf, 0, CHUNK, this.pos));
    } catch (err) {
      throw await this.o.classify(err);
    }
    if (this.aborted || this.destroyed) return;
    if (bytesRead === 0) {
      this.push(null);
      return;
    }
    this.pos += bytesRead;
    this.push(buf.subarray(0, bytesRead));
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.o.signal?.removeEventListener('abort', this.onAbort);
    this.o.handle.close().then(
      () => cb(err),
      () => cb(err),
    );
  }
}
