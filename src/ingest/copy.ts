/**
 * Copies one recording from a camera into a staging file, hashing it with SHA-256 in the same
 * pass, then makes the copy durable and proves it: fsync, re-read, compare. Optionally reads the
 * source a second time (`verifySource`) to catch a bad transfer that the copy faithfully stored.
 */
import { createHash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { constants } from 'node:fs';
import type { Readable } from 'node:stream';
import { DriverError, type CameraSession } from '../../drivers/types.js';
import { ArchiveError } from '../archive/errors.js';
import type { HashPool } from '../archive/hash-pool.js';
import { hashFile, hashWhole } from '../archive/hash.js';
import type { BufferPool } from '../archive/buffer-pool.js';
import { DIRECT_ALIGN, DirectWriter, type AlignedBuffers } from '../archive/direct-io.js';

export interface CopyRequest {
  sourceId: string;
  expectedBytes: number;
  stagingPath: string;
  /** Bytes of the staging file known durable from an earlier attempt; 0 starts afresh. */
  resumeFrom: number;
}

export interface CopyContext {
  session: CameraSession;
  readTimeoutMs: number;
  verifySource: boolean;
  signal: AbortSignal;
  /** Called as bytes arrive (not durable yet), for progress display. */
  onProgress?(bytesDone: number): void;
  /** Called after an fsync: the first `bytes` of the staging file survive a crash. */
  onDurable?(bytes: number): void;
  /** Called once nothing more will be read from the camera for this copy. */
  onSourceDone?(): void;
  /** Where the verification pass re-hashes the stored copy; the main thread when absent. */
  hashPool?: HashPool;
  /** Chunk buffers for the camera's reads, each given back once it is hashed and written. */
  buffers?: BufferPool;
  /** Write the staging file with O_DIRECT through these buffers, and verify it from the disk. */
  direct?: AlignedBuffers;
  /** Throws (e.g. DiskLowError) to stop the copy; called every `checkEveryBytes`. */
  checkSpace?(bytesStillToWrite: number): Promise<void>;
}

export interface CopyResult {
  /** SHA-256 and size of what the camera recorded. */
  sha256: string;
  bytes: number;
  /** SHA-256 and size of what the archive holds: the same unless it is encrypted. */
  storedSha256: string;
  storedBytes: number;
  resumedFrom: number;
  /** A kept prefix was found not to be the camera's bytes any more, and the copy started over. */
  resumeRefused?: boolean;
}

const DURABLE_EVERY = 64 * 1024 * 1024;
export const CHECK_SPACE_EVERY = 16 * 1024 * 1024;

export async function copyRecording(req: CopyRequest, ctx: CopyContext): Promise<CopyResult> {
  const hash = createHash('sha256');
  let offset = 0;
  let fh: FileHandle;
  let resumeRefused = false;
  const direct = ctx.direct ? constants.O_DIRECT : 0;
  const create = () => open(req.stagingPath, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | direct);
  if (req.resumeFrom > 0 && ctx.session.capabilities.resume) {
    fh = await open(req.stagingPath, constants.O_RDWR | direct).catch(create);
    const { size } = await fh.stat();
    // Direct writes go on from a block boundary; the rest of the last block is read again.
    const keep = ctx.direct ? req.resumeFrom - (req.resumeFrom % DIRECT_ALIGN) : req.resumeFrom;
    const matches =
      size >= keep &&
      keep <= req.expectedBytes &&
      (await keptTailMatches(ctx, req, keep).catch(async (err: unknown) => {
        await fh.close();
        throw err;
      }));
    if (matches) {
      await fh.truncate(keep);
      await hashFile(req.stagingPath, hash, keep);
      offset = keep;
    } else {
      resumeRefused = keep > 0;
      await fh.truncate(0);
    }
  } else {
    fh = await create();
  }
  const resumedFrom = offset;
  const out: StagingWriter = ctx.direct
    ? new DirectWriter(fh, offset, ctx.direct)
    : new BatchedWriter(fh, offset, ctx.buffers);
  const checkpoint = new Checkpointer(fh, ctx.onDurable);
  try {
    let sinceDurable = 0;
    let sinceSpaceCheck = 0;
    await ctx.checkSpace?.(req.expectedBytes - offset);
    for await (const chunk of guardedRead(ctx, req.sourceId, offset, ctx.buffers)) {
      if (offset + chunk.length > req.expectedBytes) {
        throw new DriverError(
          'transient',
          'size-mismatch',
          `camera sent more than the ${req.expectedBytes} bytes it listed`,
        );
      }
      checkpoint.throwIfFailed();
      hash.update(chunk);
      await out.write(chunk);
      // A direct write has copied the chunk by now; a batched one gives it back once written.
      if (ctx.direct) ctx.buffers?.give(chunk);
      offset += chunk.length;
      sinceDurable += chunk.length;
      sinceSpaceCheck += chunk.length;
      ctx.onProgress?.(offset);
      // The last chunk needs none: the sync after the loop covers it once the camera is free.
      if (sinceDurable >= DURABLE_EVERY && offset < req.expectedBytes && !checkpoint.busy) {
        await out.flush();
        checkpoint.start(out.written);
        sinceDurable = 0;
      }
      if (sinceSpaceCheck >= CHECK_SPACE_EVERY) {
        await ctx.checkSpace?.(req.expectedBytes - offset);
        sinceSpaceCheck = 0;
      }
    }
    if (offset !== req.expectedBytes) {
      throw new DriverError(
        'transient',
        'short-read',
        `camera sent ${offset} of the ${req.expectedBytes} bytes it listed`,
      );
    }
    if (ctx.verifySource) await readSourceAgain(ctx, req, hash.copy().digest('hex'));
    ctx.onSourceDone?.();
    await out.finish();
    await checkpoint.settled();
    await syncStaging(fh);
  } catch (err) {
    await checkpoint.settled().catch(() => undefined);
    // Keep what arrived: once synced, the next attempt resumes after it instead of starting over.
    // Only what reached the file counts, so a flush that fails half-way (ENOSPC) keeps the rest.
    if (offset > resumedFrom && !spoilsStaging(err)) {
      await out.flush().catch(() => undefined);
      try {
        await syncStaging(fh);
        if (out.written > resumedFrom) ctx.onDurable?.(out.written);
      } catch {
        // the original error is the one worth reporting
      }
    }
    throw err;
  } finally {
    await out.close();
    await fh.close();
  }
  const sha256 = hash.digest('hex');
  const { sha256: storedHash, bytes: storedBytes } = ctx.hashPool
    ? await ctx.hashPool.hashFile(req.stagingPath, { direct: ctx.direct !== undefined })
    : await hashWhole(req.stagingPath, req.expectedBytes);
  if (storedBytes !== req.expectedBytes || storedHash !== sha256) {
    throw new ArchiveError(
      'verify-mismatch',
      `the stored copy does not match what was read (${storedHash.slice(0, 12)}… vs ${sha256.slice(0, 12)}…)`,
    );
  }
  return {
    sha256,
    bytes: offset,
    storedSha256: sha256,
    storedBytes: offset,
    resumedFrom,
    ...(resumeRefused ? { resumeRefused } : {}),
  };
}

/** How much of a kept prefix is read again from the camera before a copy goes on after it. */
export const RESUME_CHECK_BYTES = 1024 * 1024;

/**
 * A copy resumes only onto bytes the camera still holds: the last MiB of the kept prefix is read
 * again from the camera and compared with the staging file. A file replaced under the same name
 * and size between two attempts would otherwise be archived as the first file's head spliced onto
 * the second one's tail, and verified, since the hash covers exactly what was stored.
 */
async function keptTailMatches(ctx: CopyContext, req: CopyRequest, keep: number): Promise<boolean> {
  const n = Math.min(keep, RESUME_CHECK_BYTES);
  if (n === 0) return true;
  const kept = Buffer.alloc(n);
  const fh = await open(req.stagingPath, 'r');
  try {
    const { bytesRead } = await fh.read(kept, 0, n, keep - n);
    if (bytesRead !== n) return false;
  } finally {
    await fh.close();
  }
  let at = 0;
  for await (const chunk of guardedRead(ctx, req.sourceId, keep - n)) {
    const take = Math.min(chunk.length, n - at);
    if (!chunk.subarray(0, take).equals(kept.subarray(at, at + take))) return false;
    at += take;
    if (at === n) return true;
  }
  return false;
}

export async function readSourceAgain(ctx: CopyContext, req: CopyRequest, sha256: string): Promise<void> {
  const again = createHash('sha256');
  let n = 0;
  for await (const chunk of guardedRead(ctx, req.sourceId, 0, ctx.buffers)) {
    n += chunk.length;
    if (n > req.expectedBytes) break;
    again.update(chunk);
    ctx.buffers?.give(chunk);
  }
  const second = again.digest('hex');
  if (n !== req.expectedBytes || second !== sha256) {
    throw new DriverError(
      'transient',
      'source-mismatch',
      `two reads of the camera disagree (${sha256.slice(0, 12)}… vs ${second.slice(0, 12)}…)`,
    );
  }
}

/**
 * Whether a copy that failed with `err` must be thrown away, its staging file not resumed from:
 * two reads of the camera disagreed, or the stored copy is not what was written.
 */
export function spoilsStaging(err: unknown): boolean {
  return (
    (err instanceof DriverError && err.code === 'source-mismatch') ||
    (err instanceof ArchiveError && err.code === 'verify-mismatch')
  );
}

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

/**
 * Reads from the camera with a stall watchdog: if no byte arrives for `readTimeoutMs` the read
 * is aborted through its signal (so the driver stops touching the device) and fails as `stall`.
 */
export async function* guardedRead(
  ctx: CopyContext,
  sourceId: string,
  offset: number,
  buffers?: BufferPool,
): AsyncGenerator<Buffer> {
  const stall = new AbortController();
  const signal = AbortSignal.any([ctx.signal, stall.signal]);
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      stall.abort();
      // A driver that ignores its signal must not keep us waiting on a dead stream.
      stream?.destroy(stallError(ctx.readTimeoutMs));
    }, ctx.readTimeoutMs);
  };
  arm();
  let stream: Readable | undefined;
  try {
    stream = await ctx.session.read(sourceId, offset, { signal, buffers });
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      arm();
      yield chunk;
    }
    if (stall.signal.aborted) throw stallError(ctx.readTimeoutMs);
  } catch (err) {
    if (stall.signal.aborted && !ctx.signal.aborted) throw stallError(ctx.readTimeoutMs);
    throw err;
  } finally {
    clearTimeout(timer);
    stream?.destroy();
  }
}

function stallError(ms: number): DriverError {
  return new DriverError('transient', 'stall', `no data from the camera for ${ms} ms`);
}
