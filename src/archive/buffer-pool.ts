import type { ChunkBuffers } from '../../drivers/types.js';

/**
 * Chunk buffers that a reader hands back once it is done with them, so that a driver reads the
 * next chunk into memory that is already mapped. Every fresh 256 KiB buffer is new pages for the
 * kernel to fault in on the first read into it; on the VM the benchmark runs on, that cost the
 * libuv threads more system time than the reads and writes themselves.
 *
 * A buffer is lent out by `take` and comes back by `give`, at most once: a chunk given twice, or
 * one that was never lent, is ignored, so one buffer is never lent to two readers at once. A
 * reader that keeps a chunk (or loses it to an error) costs nothing but the reuse.
 */
export class BufferPool implements ChunkBuffers {
  /** Free buffers by size class (powers of two from MIN_CLASS to MAX_CLASS). */
  private readonly free = new Map<number, Buffer[]>();
  // Weak: a chunk that never comes back must not be held here.
  private readonly lent = new WeakSet<ArrayBufferLike>();
  private keptBytes = 0;
  private lastTake = 0;
  private idleTimer: NodeJS.Timeout | null = null;

  static readonly MIN_CLASS = 64 * 1024;
  static readonly MAX_CLASS = 1024 * 1024;

  /**
   * @param keepBytes bytes of free buffers kept for reuse at most
   * @param idleMs    after this long without a `take`, the kept buffers are let go, so that an
   *                  idle daemon does not hold them
   */
  constructor(
    private readonly keepBytes: number,
    private readonly idleMs = 5_000,
  ) {}

  /** A buffer of at least `bytes` bytes, its contents undefined. */
  take(bytes: number): Buffer {
    if (bytes > BufferPool.MAX_CLASS) return Buffer.allocUnsafe(bytes);
    const size = sizeClass(bytes);
    const buf = this.free.get(size)?.pop();
    if (buf) this.keptBytes -= size;
    const out = buf ?? Buffer.allocUnsafeSlow(size);
    this.lent.add(out.buffer);
    this.lastTake = Date.now();
    return out;
  }

  /** Gives back the buffer a chunk (or any view into it) was read into. */
  give(chunk: Buffer): void {
    const ab = chunk.buffer;
    if (!this.lent.delete(ab)) return;
    const size = ab.byteLength;
    // A buffer moved to a worker thread is detached (0 bytes): nothing is left of it to reuse.
    if (size !== sizeClass(size) || this.keptBytes + size > this.keepBytes) return;
    let list = this.free.get(size);
    if (!list) this.free.set(size, (list = []));
    list.push(Buffer.from(ab, 0, size));
    this.keptBytes += size;
    this.armIdleTimer(this.idleMs);
  }

  /**
   * Takes a lent chunk's buffer off the books because it moves to another thread (a transfer
   * detaches it here). True when it was one of ours, to be moved whole.
   */
  handOver(chunk: Buffer): boolean {
    return this.lent.delete(chunk.buffer);
  }

  /**
   * Keeps memory that came back from another thread, moved (not shared), for the next take. Only
   * for memory nothing else holds: what a worker transfers back after using a handed-over chunk.
   */
  adopt(memory: ArrayBuffer): void {
    if (memory.byteLength === 0) return;
    this.lent.add(memory);
    this.give(Buffer.from(memory));
  }

  /** Bytes of free buffers kept now. */
  get kept(): number {
    return this.keptBytes;
  }

  private armIdleTimer(ms: number): void {
    if (this.idleTimer !== null) return;
    this.idleTimer = setTimeout(() => {
      this.idleTimer = null;
      const idle = Date.now() - this.lastTake;
      if (idle < this.idleMs) return this.armIdleTimer(this.idleMs - idle);
      this.free.clear();
      this.keptBytes = 0;
    }, ms);
    this.idleTimer.unref();
  }
}

function sizeClass(bytes: number): number {
  let size = BufferPool.MIN_CLASS;
  while (size < bytes) size *= 2;
  return size;
}
