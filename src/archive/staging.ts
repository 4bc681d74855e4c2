/**
 * Writing a staging file: in batches or (direct-io.ts) with O_DIRECT, made durable in steps while
 * the copy goes on, and fsynced a few at a time.
 */
import type { FileHandle } from 'node:fs/promises';
import type { BufferPool } from './buffer-pool.js';
import { ArchiveError } from './errors.js';

/** fsyncs of staging files allowed at once; libuv's pool has four threads. */
const SYNCS_AT_ONCE = 2;
let syncsRunning = 0;
const syncWaiters: Array<() => void> = [];

/**
 * fsync of a staging file, at most SYNCS_AT_ONCE at a time. An fsync of a finished 64 MiB copy
 * holds a thread of libuv's pool for as long as the disk takes; four cameras finishing together
 * held all four, and every camera's next reads and writes queued behind them (8 % of four
 * 40 MB/s links). With two at most, the links kept 97 % of their rate; a bigger pool did as
 * well but has to be sized before Node's module loader first uses it.
 */
export async function syncStaging(fh: FileHandle): Promise<void> {
  while (syncsRunning >= SYNCS_AT_ONCE) await new Promise<void>((resolve) => syncWaiters.push(resolve));
  syncsRunning++;
  try {
    await fh.sync();
  } finally {
    syncsRunning--;
    syncWaiters.shift()?.();
  }
}

/**
 * Makes a long copy durable in steps without holding up the camera: the fsync runs on libuv's
 * pool while reading goes on, and only the bytes written before it began are reported durable.
 * Waiting for it in the read loop left each link idle for the length of an fsync of 64 MiB.
 */
export class Checkpointer {
  private running: Promise<void> | null = null;
  private failure: unknown = null;

  constructor(
    private readonly fh: FileHandle,
    private readonly onDurable?: (bytes: number) => void,
  ) {}

  get busy(): boolean {
    return this.running !== null;
  }

  start(bytes: number): void {
    this.running = syncStaging(this.fh).then(
      () => {
        this.running = null;
        this.onDurable?.(bytes);
      },
      (err: unknown) => {
        this.running = null;
        this.failure = err;
      },
    );
  }

  /** A failed fsync fails the copy at the next chunk, as it would have in the loop. */
  throwIfFailed(): void {
    if (this.failure !== null) throw this.failure;
  }

  async settled(): Promise<void> {
    await this.running;
    this.throwIfFailed();
  }
}

/** How a copy puts bytes into its staging file: batched through the page cache, or direct. */
export interface StagingWriter {
  /** Bytes that are in the file: what an fsync now makes durable. */
  readonly written: number;
  write(chunk: Buffer): Promise<void>;
  /** Puts what it can in the file now (a direct writer keeps a partial block back). */
  flush(): Promise<void>;
  /** Puts everything in the file. */
  finish(): Promise<void>;
  close(): Promise<void>;
}

/** Chunks are gathered into writes of at least this many bytes. */
const WRITE_BATCH = 1024 * 1024;

/**
 * Writes a stream of chunks to a file at increasing positions, in batches. Each write is a hop
 * to libuv's thread pool and a system call; on the 2-core VM the benchmark runs on that cost
 * 60–150 µs of the main thread each, so an encrypted copy's 64 KiB age chunks spent more time in
 * write calls than in ChaCha20. One `writev` per MiB makes the per-call cost vanish next to the
 * bytes.
 */
export class BatchedWriter implements StagingWriter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  /** @param buffers where each chunk is given back once all of it is in the file */
  constructor(
    private readonly fh: FileHandle,
    private position: number,
    private readonly buffers?: BufferPool,
  ) {}

  /** Bytes handed to the file so far: what an fsync now makes durable. */
  get written(): number {
    return this.position;
  }

  async write(chunk: Buffer): Promise<void> {
    if (chunk.length === 0) return;
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes >= WRITE_BATCH) await this.flush();
  }

  finish(): Promise<void> {
    return this.flush();
  }

  async close(): Promise<void> {}

  async flush(): Promise<void> {
    while (this.pendingBytes > 0) {
      const { bytesWritten } = await this.fh.writev(this.pending, this.position);
      // A file that takes nothing and says no error would otherwise hold the copy here for ever.
      if (bytesWritten === 0) throw new ArchiveError('write-stalled', 'the staging file accepted no bytes');
      this.position += bytesWritten;
      this.pendingBytes -= bytesWritten;
      // A short write (rare on files) leaves the rest, from the byte it stopped at, for the next turn.
      let left = bytesWritten;
      while (left > 0 && left >= this.pending[0]!.length) {
        const done = this.pending.shift()!;
        left -= done.length;
        this.buffers?.give(done);
      }
      if (left > 0) this.pending[0] = this.pending[0]!.subarray(left);
    }
  }
}
