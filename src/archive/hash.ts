/**
 * SHA-256 of stored files on the main thread: a resumed copy's kept prefix, and `dockd verify`'s
 * re-hash of the archive. A finished copy is re-hashed off the main thread (hash-pool.ts).
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';

export async function hashWhole(file: string, sizeHint?: number): Promise<{ sha256: string; bytes: number }> {
  const h = createHash('sha256');
  const bytes = await hashFile(file, h, undefined, sizeHint);
  return { sha256: h.digest('hex'), bytes };
}

/** Feeds the first `limit` bytes of `file` (all of it without) to `hash`; returns how many it read. */
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
