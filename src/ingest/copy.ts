/**
 * Copies one recording from a camera into a staging file, hashing it with SHA-256 in the same
 * pass, then makes the copy durable and proves it: fsync, re-read, compare. Optionally reads the
 * source a second time (`verifySource`) to catch a bad transfer that the copy faithfully stored.
 */
import { createHash, type Hash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { DriverError, type CameraSession } from '../../drivers/types.js';
import type { HashPool } from './hash-pool.js';

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
}

const DURABLE_EVERY = 64 * 1024 * 1024;
const CHECK_SPACE_EVERY = 16 * 1024 * 1024;

export async function copyRecording(req: CopyRequest, ctx: CopyContext): Promise<CopyResult> {
  const hash = createHash('sha256');
  let offset = 0;
  let fh: FileHandle;
  if (req.resumeFrom > 0 && ctx.session.capabilities.resume) {
    fh = await open(req.stagingPath, 'r+').catch(() => open(req.stagingPath, 'w'));
    const { size } = await fh.stat();
    if (size >= req.resumeFrom && req.resumeFrom <= req.expectedBytes) {
      await fh.truncate(req.resumeFrom);
      await hashFile(req.stagingPath, hash, req.resumeFrom);
      offset = req.resumeFrom;
    } else {
      await fh.truncate(0);
    }
  } else {
    fh = await open(req.stagingPath, 'w');
  }
  const resumedFrom = offset;
  try {
    let sinceDurable = 0;
    let sinceSpaceCheck = 0;
    await ctx.checkSpace?.(req.expectedBytes - offset);
    for await (const chunk of guardedRead(ctx, req.sourceId, offset)) {
      if (offset + chunk.length > req.expectedBytes) {
        throw new DriverError('transient', 'size-mismatch', `camera sent more than the ${req.expectedBytes} bytes it listed`);
      }
      hash.update(chunk);
      await writeAll(fh, chunk, offset);
      offset += chunk.length;
      sinceDurable += chunk.length;
      sinceSpaceCheck += chunk.length;
      ctx.onProgress?.(offset);
      if (sinceDurable >= DURABLE_EVERY) {
        await fh.sync();
        ctx.onDurable?.(offset);
        sinceDurable = 0;
      }
      if (sinceSpaceCheck >= CHECK_SPACE_EVERY) {
        await ctx.checkSpace?.(req.expectedBytes - offset);
        sinceSpaceCheck = 0;
      }
    }
    if (offset !== req.expectedBytes) {
      throw new DriverError('transient', 'short-read', `camera sent ${offset} of the ${req.expectedBytes} bytes it listed`);
    }
    if (ctx.verifySource) await readSourceAgain(ctx, req, hash.copy().digest('hex'));
    ctx.onSourceDone?.();
    await fh.sync();
  } catch (err) {
    // Keep what arrived: once synced, the next attempt resumes after it instead of starting over.
    if (offset > resumedFrom && !(err instanceof VerifyError)) {
      try {
        await fh.sync();
        ctx.onDurable?.(offset);
      } catch {
        // the original error is the one worth reporting
      }
    }
    throw err;
  } finally {
    await fh.close();
  }
  const sha256 = hash.digest('hex');

  const { sha256: storedHash, bytes: storedBytes } = ctx.hashPool
    ? await ctx.hashPool.hashFile(req.stagingPath, req.expectedBytes)
    : await hashWhole(req.stagingPath, req.expectedBytes);
  if (storedBytes !== req.expectedBytes || storedHash !== sha256) {
    throw new VerifyError('verify-mismatch', `the stored copy does not match what was read (${storedHash.slice(0, 12)}… vs ${sha256.slice(0, 12)}…)`);
  }
  return { sha256, bytes: offset, storedSha256: sha256, storedBytes: offset, resumedFrom };
}

export async function readSourceAgain(ctx: CopyContext, req: CopyRequest, sha256: string): Promise<void> {
  const again = createHash('sha256');
  let n = 0;
  for await (const chunk of guardedRead(ctx, req.sourceId, 0)) {
    n += chunk.length;
    if (n > req.expectedBytes) break;
    again.update(chunk);
  }
  const second = again.digest('hex');
  if (n !== req.expectedBytes || second !== sha256) {
    throw new VerifyError('source-mismatch', `two reads of the camera disagree (${sha256.slice(0, 12)}… vs ${second.slice(0, 12)}…)`);
  }
}

/** A copy that must be thrown away: the staging file is not to be resumed from. */
export class VerifyError extends DriverError {
  constructor(code: string, message: string) {
    super('transient', code, message);
  }
}

export async function writeAll(fh: FileHandle, chunk: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < chunk.length) {
    const { bytesWritten } = await fh.write(chunk, done, chunk.length - done, position + done);
    done += bytesWritten;
  }
}

export async function hashWhole(file: string, sizeHint?: number): Promise<{ sha256: string; bytes: number }> {
  const h = createHash('sha256');
  const bytes = await hashFile(file, h, undefined, sizeHint);
  return { sha256: h.digest('hex'), bytes };
}

export async function hashFile(file: string, hash: Hash, limit?: number, sizeHint?: number): Promise<number> {
  let n = 0;
  if (limit === 0) return 0;
  // A 1 MiB read buffer per small file is what made thousands of small recordings GC-bound.
  const highWaterMark = Math.max(64 * 1024, Math.min(1 << 20, limit ?? sizeHint ?? 1 << 20));
  const opts = limit === undefined ? { highWaterMark } : { highWaterMark, end: limit - 1 };
  for await (const chunk of createReadStream(file, opts) as AsyncIterable<Buffer>) {
    hash.update(chunk);
    n += chunk.length;
  }
  return n;
}

/**
 * Reads from the camera with a stall watchdog: if no byte arrives for `readTimeoutMs` the read
 * is aborted through its signal (so the driver stops touching the device) and fails as `stall`.
 */
export async function* guardedRead(ctx: CopyContext, sourceId: string, offset: number): AsyncGenerator<Buffer> {
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
    stream = await ctx.session.read(sourceId, offset, { signal });
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
