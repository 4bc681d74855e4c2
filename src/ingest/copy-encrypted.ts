/**
 * The copy for a write-only dock: plaintext from the camera is hashed and encrypted to the
 * custodians' age recipients in the same pass, so only ciphertext ever reaches the disk. The
 * stored file is verified by its ciphertext hash, which needs no secret key.
 *
 * The main thread reads and hashes the plaintext; a worker of the seal pool encrypts, hashes the
 * ciphertext and writes the staging file, so the two run on separate cores.
 *
 * An age stream cannot be continued from the middle without its file key, which the dock must
 * not keep, so an interrupted encrypted copy starts over.
 */
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { DriverError } from '../../drivers/types.js';
import type { AgeSealPool, SealJob } from '../crypto/age-seal-pool.js';
import { CHECK_SPACE_EVERY, guardedRead, hashWhole, readSourceAgain, syncStaging, VerifyError, type CopyContext, type CopyRequest, type CopyResult } from './copy.js';

export async function copyRecordingEncrypted(req: CopyRequest, ctx: CopyContext, recipients: string[], seals: AgeSealPool): Promise<CopyResult> {
  const plain = createHash('sha256');
  let plainBytes = 0;
  const fh = await open(req.stagingPath, 'w', 0o640);
  let job: SealJob | null = null;
  try {
    await ctx.checkSpace?.(req.expectedBytes);
    job = seals.open(fh.fd, recipients);
    let sinceSpaceCheck = 0;
    for await (const chunk of guardedRead(ctx, req.sourceId, 0, ctx.buffers)) {
      if (plainBytes + chunk.length > req.expectedBytes) {
        throw new DriverError('transient', 'size-mismatch', `camera sent more than the ${req.expectedBytes} bytes it listed`);
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
      throw new DriverError('transient', 'short-read', `camera sent ${plainBytes} of the ${req.expectedBytes} bytes it listed`);
    }
    const sha256 = plain.digest('hex');
    if (ctx.verifySource) await readSourceAgain(ctx, req, sha256);
    ctx.onSourceDone?.();
    const stored = await job.end();
    job = null;
    await syncStaging(fh);
    await fh.close();
    // The seal worker writes through the page cache; the re-read still comes from the disk.
    const reread = ctx.hashPool ? await ctx.hashPool.hashFile(req.stagingPath, { direct: ctx.direct !== undefined }) : await hashWhole(req.stagingPath);
    if (reread.bytes !== stored.bytes || reread.sha256 !== stored.sha256) {
      throw new VerifyError('verify-mismatch', `the stored ciphertext does not match what was written (${reread.sha256.slice(0, 12)}… vs ${stored.sha256.slice(0, 12)}…)`);
    }
    return { sha256, bytes: plainBytes, storedSha256: stored.sha256, storedBytes: stored.bytes, resumedFrom: 0 };
  } finally {
    // The worker writes through this descriptor: it has to let go before the file is closed.
    await job?.abort();
    await fh.close().catch(() => undefined);
  }
}
