/**
 * Re-hashing stored copies off the main thread. The copy pass hashes on the main thread as bytes
 * arrive; the verification pass re-reads a whole file, and doing that in a worker lets it run on
 * another core while the next copy streams in. An encrypted copy's re-read also checks the age
 * file chunk by chunk against the key it was sealed with (storedAgeCheck in age-stream.ts).
 */
import { Worker } from 'node:worker_threads';
import os from 'node:os';
import { AEAD_ADDON, loadChunkAead } from '../crypto/aead.js';
import { CHUNK, storedAgeCheck, streamNonce } from '../crypto/age-stream.js';

// Plain CommonJS evaluated in the worker, so the same code runs from dist/ and under vitest.
// Two buffers, reused: the next read is under way while the last one is hashed, so a direct read
// (from the disk, see direct-io.ts) costs the worker no more time than the hashing. A worker
// hashes one file at a time. Both buffers are WebAssembly memories, which start on a page, as
// O_DIRECT wants; a read stream would have left a fresh 1 MiB buffer per read for the collector
// (30 MB of the daemon's peak RSS in the offload benchmark).
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const { close, constants, open, read } = require('node:fs');
const { promisify } = require('node:util');
const [closeP, openP] = [promisify(close), promisify(open)];
const readP = (fd, b, pos) => new Promise((resolve, reject) => read(fd, b, 0, b.length, pos, (err, n) => (err ? reject(err) : resolve(n))));
const buffers = [0, 1].map(() => Buffer.from(new WebAssembly.Memory({ initial: 16, maximum: 16 }).buffer));
const CHUNK = ${CHUNK};
const streamNonce = ${streamNonce.toString()};
const storedAgeCheck = ${storedAgeCheck.toString()};
const loadChunkAead = ${loadChunkAead.toString()};
let aead = null;
async function hashFd(fd, age) {
  const hash = createHash('sha256');
  const check = age ? storedAgeCheck((aead ??= loadChunkAead(require, ${JSON.stringify(AEAD_ADDON)})), age.key, age.prefix, age.total) : null;
  let bytes = 0;
  let next = readP(fd, buffers[0], 0);
  for (let i = 0; ; i ^= 1) {
    const n = await next;
    if (n === 0) break;
    next = readP(fd, buffers[i ^ 1], bytes + n);
    hash.update(buffers[i].subarray(0, n));
    check?.feed(buffers[i].subarray(0, n));
    bytes += n;
  }
  return { sha256: hash.digest('hex'), bytes, ...(check ? { sealed: check.problem() } : {}) };
}
async function hashFile(file, direct, age) {
  const useDirect = direct && constants.O_DIRECT;
  const fd = await openP(file, useDirect ? constants.O_RDONLY | constants.O_DIRECT : constants.O_RDONLY);
  try {
    return await hashFd(fd, age);
  } catch (err) {
    // A filesystem that takes direct writes but not these reads: read through the cache.
    if (!useDirect || err.code !== 'EINVAL') throw err;
    return await hashFile(file, false, age);
  } finally {
    await closeP(fd);
  }
}
const view = (u8) => Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);
parentPort.on('message', ({ id, file, direct, age }) => {
  const sealed = age && { key: view(age.key), prefix: view(age.prefix), total: age.total };
  hashFile(file, direct, sealed).then(
    (result) => parentPort.postMessage({ id, ...result }),
    (err) => parentPort.postMessage({ id, error: err.message, code: err.code }),
  ).finally(() => sealed?.key.fill(0));
});
`;

export interface Rehash {
  sha256: string;
  bytes: number;
  /**
   * With `age`: null when the file is the age file sealed with that key and prefix, else what
   * is wrong with it.
   */
  sealed?: string | null;
}

/** What the worker needs to check a stored age file against what was sealed into it. */
export interface SealedAge {
  /** The payload key; the worker gets a copy and wipes it. */
  key: Buffer;
  /** Header and payload nonce as written. */
  prefix: Buffer;
  /** Size of the age file as written. */
  total: number;
}

interface Pending {
  resolve(v: Rehash): void;
  reject(e: Error): void;
}

export class HashPool {
  private readonly workers: Worker[] = [];
  private readonly idle: Worker[] = [];
  private readonly waiting: Array<() => void> = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;

  /**
   * At most two workers: each re-hashes about 1.4 GB/s, far beyond what a dock's cameras deliver,
   * and each idle one holds 8–10 MB. One per core but one would have put an 8-core dock PC's idle
   * daemon 60 MB above the 2-core machine the benchmark measures.
   */
  constructor(size = Math.min(2, Math.max(1, (os.availableParallelism?.() ?? os.cpus().length) - 1))) {
    for (let i = 0; i < size; i++) {
      const w = new Worker(WORKER_SOURCE, { eval: true });
      w.unref();
      w.on(
        'message',
        (m: { id: number; sha256?: string; bytes?: number; sealed?: string | null; error?: string; code?: string }) => {
          const p = this.pending.get(m.id);
          this.pending.delete(m.id);
          this.release(w);
          if (!p) return;
          if (m.error !== undefined) p.reject(Object.assign(new Error(m.error), { code: m.code }));
          else
            p.resolve({ sha256: m.sha256!, bytes: m.bytes!, ...(m.sealed !== undefined ? { sealed: m.sealed } : {}) });
        },
      );
      this.workers.push(w);
      this.idle.push(w);
    }
  }

  private release(w: Worker): void {
    const next = this.waiting.shift();
    this.idle.push(w);
    next?.();
  }

  /**
   * With `direct`, the file is read with O_DIRECT: from the disk, not from the page cache. With
   * `age`, the file is also checked, chunk by chunk, to be the age file sealed with that key.
   */
  async hashFile(file: string, opts: { direct?: boolean; age?: SealedAge } = {}): Promise<Rehash> {
    while (this.idle.length === 0) await new Promise<void>((r) => this.waiting.push(r));
    const w = this.idle.pop()!;
    const id = this.nextId++;
    const age = opts.age && {
      key: new Uint8Array(opts.age.key),
      prefix: new Uint8Array(opts.age.prefix),
      total: opts.age.total,
    };
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      w.postMessage({ id, file, direct: opts.direct === true, age }, age ? [age.key.buffer, age.prefix.buffer] : []);
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
