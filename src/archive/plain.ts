/**
 * The archive that stores the camera's bytes as they are. A copy goes on after the durable bytes
 * of an interrupted one when the camera still holds them; it is written in batches, or with
 * O_DIRECT (direct-io.ts), made durable every 64 MiB while the camera is read, fsynced at the
 * end, and re-read off the main thread to prove it: from the disk, with O_DIRECT.
 */
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import type { StageRequest, Staging, StoredCopy } from './archive.js';
import type { BufferPool } from './buffer-pool.js';
import { AlignedBuffers, DIRECT_ALIGN, DirectWriter } from './direct-io.js';
import { ArchiveError } from './errors.js';
import { hashFile } from './hash.js';
import type { HashPool } from './hash-pool.js';
import { LocalArchive, type LocalArchiveOptions } from './local.js';
import { BatchedWriter, Checkpointer, syncStaging, type StagingWriter } from './staging.js';

const DURABLE_EVERY = 64 * 1024 * 1024;

/** How much of a kept prefix is read again from the camera before a copy goes on after it. */
export const RESUME_CHECK_BYTES = 1024 * 1024;

export class PlainArchive extends LocalArchive {
  readonly resumable = true;

  constructor(o: LocalArchiveOptions) {
    super(o, '');
  }

  async stage(req: StageRequest): Promise<Staging> {
    const file = this.stagingPathFor(req.id);
    const direct = this.direct ? constants.O_DIRECT : 0;
    const staging = (fh: FileHandle, resumedFrom: number, resumeRefused = false) =>
      new PlainStaging({
        fh,
        file,
        expectedBytes: req.expectedBytes,
        resumedFrom,
        resumeRefused,
        direct: this.direct,
        buffers: this.buffers,
        hashPool: this.hashPool,
        onDurable: req.onDurable,
      });
    const create = () => open(file, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | direct);
    if (req.resumeFrom <= 0) return staging(await create(), 0);
    const fh = await open(file, constants.O_RDWR | direct).catch(create);
    try {
      const { size } = await fh.stat();
      // Direct writes go on from a block boundary; the rest of the last block is read again.
      const keep = this.direct ? req.resumeFrom - (req.resumeFrom % DIRECT_ALIGN) : req.resumeFrom;
      if (size >= keep && keep <= req.expectedBytes && (await keptTailMatches(file, keep, req))) {
        await fh.truncate(keep);
        await hashFile(file, req.hash, keep);
        return staging(fh, keep);
      }
      await fh.truncate(0);
      return staging(fh, 0, keep > 0);
    } catch (err) {
      await fh.close();
      throw err;
    }
  }
}

/**
 * A copy resumes only onto bytes the camera still holds: the last MiB of the kept prefix is read
 * again from the camera and compared with the staging file. A file replaced under the same name
 * and size between two attempts would otherwise be archived as the first file's head spliced onto
 * the second one's tail, and verified, since the hash covers exactly what was stored.
 */
async function keptTailMatches(file: string, keep: number, req: StageRequest): Promise<boolean> {
  const n = Math.min(keep, RESUME_CHECK_BYTES);
  if (n === 0) return true;
  const kept = Buffer.alloc(n);
  const fh = await open(file, 'r');
  try {
    const { bytesRead } = await fh.read(kept, 0, n, keep - n);
    if (bytesRead !== n) return false;
  } finally {
    await fh.close();
  }
  return req.sourceHolds(kept, keep - n);
}

interface PlainStagingOptions {
  fh: FileHandle;
  file: string;
  expectedBytes: number;
  resumedFrom: number;
  resumeRefused: boolean;
  direct: AlignedBuffers | undefined;
  buffers: BufferPool;
  hashPool: HashPool;
  onDurable?: (bytes: number) => void;
}

class PlainStaging implements Staging {
  readonly resumedFrom: number;
  readonly resumeRefused: boolean;
  private readonly out: StagingWriter;
  private readonly checkpoint: Checkpointer;
  /** End of what write() has taken so far, as a position in the file. */
  private received: number;
  private sinceDurable = 0;
  private finished = false;
  private closed = false;

  constructor(private readonly o: PlainStagingOptions) {
    this.resumedFrom = o.resumedFrom;
    this.resumeRefused = o.resumeRefused;
    this.received = o.resumedFrom;
    this.out = o.direct
      ? new DirectWriter(o.fh, o.resumedFrom, o.direct)
      : new BatchedWriter(o.fh, o.resumedFrom, o.buffers);
    this.checkpoint = new Checkpointer(o.fh, o.onDurable);
  }

  async write(chunk: Buffer): Promise<void> {
    this.checkpoint.throwIfFailed();
    await this.out.write(chunk);
    // A direct write has copied the chunk by now; a batched one gives it back once written.
    if (this.o.direct) this.o.buffers.give(chunk);
    this.received += chunk.length;
    this.sinceDurable += chunk.length;
    // The last chunk needs none: finish() syncs it once the camera is free.
    if (this.sinceDurable >= DURABLE_EVERY && this.received < this.o.expectedBytes && !this.checkpoint.busy) {
      await this.out.flush();
      this.checkpoint.start(this.out.written);
      this.sinceDurable = 0;
    }
  }

  async finish(): Promise<void> {
    await this.out.finish();
    await this.checkpoint.settled();
    await syncStaging(this.o.fh);
    this.finished = true;
    await this.close();
  }

  async abandon(keep: boolean): Promise<void> {
    if (this.finished) return;
    await this.checkpoint.settled().catch(() => undefined);
    // Keep what arrived: once synced, the next attempt resumes after it instead of starting over.
    // Only what reached the file counts, so a flush that fails half-way (ENOSPC) keeps the rest.
    if (!keep || this.received <= this.resumedFrom) return;
    await this.out.flush().catch(() => undefined);
    try {
      await syncStaging(this.o.fh);
      if (this.out.written > this.resumedFrom) this.o.onDurable?.(this.out.written);
    } catch {
      // the original error is the one worth reporting
    }
  }

  async verifyStored(sha256: string, bytes: number): Promise<StoredCopy> {
    const stored = await this.o.hashPool.hashFile(this.o.file, { direct: this.o.direct !== undefined });
    if (stored.bytes !== bytes || stored.sha256 !== sha256) {
      throw new ArchiveError(
        'verify-mismatch',
        `the stored copy does not match what was read (${stored.sha256.slice(0, 12)}… vs ${sha256.slice(0, 12)}…)`,
      );
    }
    return { sha256, bytes };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.out.close();
    } finally {
      await this.o.fh.close();
    }
  }
}
