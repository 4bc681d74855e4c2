/**
 * Copies one recording from a camera into the archive, hashing what the camera sends with SHA-256
 * in the same pass. Ingest reads the camera (through a stall watchdog) and checks what it sends;
 * the archive stages the bytes, makes them durable, and proves what it stored (src/archive/).
 * Optionally the source is read a second time (`verifySource`) to catch a bad transfer that the
 * copy faithfully stored.
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { DriverError, type CameraSession, type ChunkBuffers } from '../../drivers/types.js';
import type { Archive } from '../archive/archive.js';
import { ArchiveError } from '../archive/errors.js';

export interface CopyRequest {
  /** The recording's id: the archive stages the copy under it. */
  id: string;
  sourceId: string;
  expectedBytes: number;
  /** Bytes of the staging file known durable from an earlier attempt; 0 starts afresh. */
  resumeFrom: number;
}

export interface CopyContext {
  /** Where the copy is stored. */
  archive: Archive;
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
  /** Throws (e.g. DiskLowError) to stop the copy; called every `CHECK_SPACE_EVERY` bytes. */
  checkSpace?(bytesStillToWrite: number): Promise<void>;
}

export interface CopyResult {
  /** SHA-256 and size of what the camera recorded. */
  sha256: string;
  bytes: number;
  /** SHA-256 and size of what the archive holds: the same unless it is encrypted. */
  storedSha256: string;
  storedBytes: number;
  /** The age recipients the archive encrypted the copy to; absent when it stores it as it is. */
  encryptedTo?: string[];
  resumedFrom: number;
  /** A kept prefix was found not to be the camera's bytes any more, and the copy started over. */
  resumeRefused?: boolean;
}

const CHECK_SPACE_EVERY = 16 * 1024 * 1024;

export async function copyRecording(req: CopyRequest, ctx: CopyContext): Promise<CopyResult> {
  const hash = createHash('sha256');
  const buffers = ctx.archive.buffers;
  const staging = await ctx.archive.stage({
    id: req.id,
    expectedBytes: req.expectedBytes,
    resumeFrom: ctx.session.capabilities.resume ? req.resumeFrom : 0,
    hash,
    sourceHolds: (bytes, offset) => cameraHolds(ctx, req.sourceId, bytes, offset),
    onDurable: ctx.onDurable,
  });
  const resumedFrom = staging.resumedFrom;
  let offset = resumedFrom;
  try {
    let sha256: string;
    try {
      let sinceSpaceCheck = 0;
      await ctx.checkSpace?.(req.expectedBytes - offset);
      for await (const chunk of guardedRead(ctx, req.sourceId, offset, buffers)) {
        const n = chunk.length;
        if (offset + n > req.expectedBytes) {
          throw new DriverError(
            'transient',
            'size-mismatch',
            `camera sent more than the ${req.expectedBytes} bytes it listed`,
          );
        }
        hash.update(chunk);
        // The chunk is the archive's from here: it may be given back, or moved to a worker.
        await staging.write(chunk);
        offset += n;
        sinceSpaceCheck += n;
        ctx.onProgress?.(offset);
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
      sha256 = hash.digest('hex');
      if (ctx.verifySource) await readSourceAgain(ctx, req, sha256);
      ctx.onSourceDone?.();
      await staging.finish();
    } catch (err) {
      // What reached the staging file is kept for the next attempt, unless the camera contradicted it.
      await staging.abandon(!spoilsStaging(err));
      throw err;
    }
    const stored = await staging.verifyStored(sha256, offset);
    return {
      sha256,
      bytes: offset,
      storedSha256: stored.sha256,
      storedBytes: stored.bytes,
      ...(stored.encryptedTo ? { encryptedTo: stored.encryptedTo } : {}),
      resumedFrom,
      ...(staging.resumeRefused ? { resumeRefused: true } : {}),
    };
  } finally {
    await staging.close();
  }
}

/** Whether the camera holds `bytes` at `offset`: read again before a copy goes on after kept bytes. */
async function cameraHolds(ctx: ReadContext, sourceId: string, bytes: Buffer, offset: number): Promise<boolean> {
  const n = bytes.length;
  let at = 0;
  for await (const chunk of guardedRead(ctx, sourceId, offset)) {
    const take = Math.min(chunk.length, n - at);
    if (!chunk.subarray(0, take).equals(bytes.subarray(at, at + take))) return false;
    at += take;
    if (at === n) return true;
  }
  return false;
}

/** What a camera read needs: where chunk buffers come from, the session, its watchdog and abort. */
export type ReadContext = Pick<CopyContext, 'archive' | 'session' | 'readTimeoutMs' | 'signal'>;

/**
 * Whether the camera's file `sourceId` is `expectedBytes` long with this SHA-256, read whole once
 * more; it stops reading past `expectedBytes`.
 */
export async function cameraHashMatches(
  ctx: ReadContext,
  sourceId: string,
  expectedBytes: number,
  sha256: string,
): Promise<{ matches: boolean; sha256: string }> {
  const again = createHash('sha256');
  const buffers = ctx.archive.buffers;
  let n = 0;
  for await (const chunk of guardedRead(ctx, sourceId, 0, buffers)) {
    n += chunk.length;
    if (n > expectedBytes) break;
    again.update(chunk);
    buffers.give(chunk);
  }
  const second = again.digest('hex');
  return { matches: n === expectedBytes && second === sha256, sha256: second };
}

async function readSourceAgain(ctx: CopyContext, req: CopyRequest, sha256: string): Promise<void> {
  const { matches, sha256: second } = await cameraHashMatches(ctx, req.sourceId, req.expectedBytes, sha256);
  if (!matches) {
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

/**
 * Reads from the camera with a stall watchdog: if no byte arrives for `readTimeoutMs` the read
 * is aborted through its signal (so the driver stops touching the device) and fails as `stall`.
 */
async function* guardedRead(
  ctx: ReadContext,
  sourceId: string,
  offset: number,
  buffers?: ChunkBuffers,
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
