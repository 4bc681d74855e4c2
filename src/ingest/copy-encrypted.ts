/**
 * The copy for a write-only dock: plaintext from the camera is hashed and encrypted to the
 * custodians' age recipients in the same pass, so only ciphertext ever reaches the disk. The
 * stored file is verified by its ciphertext hash, which needs no secret key.
 *
 * An age stream cannot be continued from the middle without its file key, which the dock must
 * not keep, so an interrupted encrypted copy starts over.
 */
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DriverError } from '../../drivers/types.js';
import { createEncryptStream } from '../crypto/age.js';
import { BatchedWriter, guardedRead, hashWhole, readSourceAgain, syncStaging, VerifyError, type CopyContext, type CopyRequest, type CopyResult } from './copy.js';

export async function copyRecordingEncrypted(req: CopyRequest, ctx: CopyContext, recipients: string[]): Promise<CopyResult> {
  const plain = createHash('sha256');
  const stored = createHash('sha256');
  let plainBytes = 0;
  let storedBytes = 0;
  const fh = await open(req.stagingPath, 'w', 0o640);
  try {
    await ctx.checkSpace?.(req.expectedBytes);
    const source = async function* () {
      for await (const chunk of guardedRead(ctx, req.sourceId, 0)) {
        if (plainBytes + chunk.length > req.expectedBytes) {
          throw new DriverError('transient', 'size-mismatch', `camera sent more than the ${req.expectedBytes} bytes it listed`);
        }
        plain.update(chunk);
        plainBytes += chunk.length;
        ctx.onProgress?.(plainBytes);
        yield chunk;
      }
    };
    const out = new BatchedWriter(fh, 0);
    await pipeline(Readable.from(source()), createEncryptStream(recipients), async (ciphertext: AsyncIterable<Buffer>) => {
      for await (const chunk of ciphertext) {
        stored.update(chunk);
        await out.write(chunk);
        storedBytes += chunk.length;
      }
      await out.flush();
    });
    if (plainBytes !== req.expectedBytes) {
      throw new DriverError('transient', 'short-read', `camera sent ${plainBytes} of the ${req.expectedBytes} bytes it listed`);
    }
    const sha256 = plain.digest('hex');
    if (ctx.verifySource) await readSourceAgain(ctx, req, sha256);
    ctx.onSourceDone?.();
    await syncStaging(fh);
    const storedSha256 = stored.digest('hex');
    await fh.close();
    const reread = ctx.hashPool ? await ctx.hashPool.hashFile(req.stagingPath, storedBytes) : await hashWhole(req.stagingPath);
    if (reread.bytes !== storedBytes || reread.sha256 !== storedSha256) {
      throw new VerifyError('verify-mismatch', `the stored ciphertext does not match what was written (${reread.sha256.slice(0, 12)}… vs ${storedSha256.slice(0, 12)}…)`);
    }
    return { sha256, bytes: plainBytes, storedSha256, storedBytes, resumedFrom: 0 };
  } finally {
    await fh.close().catch(() => undefined);
  }
}
