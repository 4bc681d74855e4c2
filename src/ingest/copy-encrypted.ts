/**
 * The copy for a write-only dock: plaintext from the camera is hashed and encrypted to the
 * custodians' age recipients in the same pass, so only ciphertext ever reaches the disk.
 *
 * The main thread reads and hashes the plaintext; a worker of the seal pool encrypts and writes
 * the staging file, so the two run on separate cores. The stored file is then re-read once, from
 * the disk, by a worker of the hash pool: that pass gives the ciphertext SHA-256 custody records
 * (what `dockd verify` later checks, with no secret key) and proves, by every chunk's Poly1305
 * tag under the file's payload key, that the stored bytes are the ones sealed. The key lives in
 * memory until then and is wiped; no second SHA-256 of the ciphertext is needed while writing.
 *
 * An age stream cannot be continued from the middle without its file key, which the dock must
 * not keep, so an interrupted encrypted copy starts over.
 */
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { DriverError } from '../../drivers/types.js';
import { ArchiveError } from '../archive/errors.js';
import { startAgeFile } from '../crypto/age.js';
import type { AgeSealPool, SealJob } from '../crypto/age-seal-pool.js';
import {
  CHECK_SPACE_EVERY,
  guardedRead,
  readSourceAgain,
  syncStaging,
  type CopyContext,
  type CopyRequest,
  type CopyResult,
} from './copy.js';

export async function copyRecordingEncrypted(
  req: CopyRequest,
  ctx: CopyContext,
  recipients: string[],
  seals: AgeSealPool,
): Promise<CopyResult> {
  const rehash = ctx.hashPool;
  if (!rehash) throw new Error('an encrypted copy is re-read by a hash pool, and none was given');
  const plain = createHash('sha256');
  let plainBytes = 0;
  const { prefix, key } = startAgeFile(recipients);
  const fh = await open(req.stagingPath, 'w', 0o640).catch((err: unknown) => {
    key.fill(0);
    throw err;
  });
  let job: SealJob | null = null;
  try {
    await ctx.checkSpace?.(req.expectedBytes);
    job = seals.open(fh.fd, prefix, key);
    let sinceSpaceCheck = 0;
    for await (const chunk of guardedRead(ctx, req.sourceId, 0, ctx.buffers)) {
      if (plainBytes + chunk.length > req.expectedBytes) {
        throw new DriverError(
          'transient',
          'size-mismatch',
          `camera sent more than the ${req.expectedBytes} bytes it listed`,
        );
      }
      plain.update(chunk);
      plainBytes += chunk.length;
      sinceSpaceCheck += chunk.length;
      ctx.onProgress?.(plainBytes);
      await job.write(chunk);
      if (sinceSpaceCheck >= CHECK_SPACE_EVERY) {
        await ctx.checkSpace?.(req.expectedBytes - plainBytes);
        sinceSpaceCheck = 0;
      }
    }
    if (plainBytes !== req.expectedBytes) {
      throw new DriverError(
        'transient',
        'short-read',
        `camera sent ${plainBytes} of the ${req.expectedBytes} bytes it listed`,
      );
    }
    const sha256 = plain.digest('hex');
    if (ctx.verifySource) await readSourceAgain(ctx, req, sha256);
    ctx.onSourceDone?.();
    const stored = await job.end();
    job = null;
    await syncStaging(fh);
    await fh.close();
    // The seal worker writes through the page cache; the re-read still comes from the disk.
    const reread = await rehash.hashFile(req.stagingPath, {
      direct: ctx.direct !== undefined,
      age: { key, prefix, total: stored.bytes },
    });
    if (reread.sealed !== null) {
      throw new ArchiveError(
        'verify-mismatch',
        `the stored ciphertext is not what was sealed: ${reread.sealed ?? 'the re-read did not check it'}`,
      );
    }
    return { sha256, bytes: plainBytes, storedSha256: reread.sha256, storedBytes: reread.bytes, resumedFrom: 0 };
  } finally {
    key.fill(0);
    // The worker writes through this descriptor: it has to let go before the file is closed.
    await job?.abort();
    await fh.close().catch(() => undefined);
  }
}
