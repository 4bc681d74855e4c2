/**
 * Re-hashing stored copies off the main thread. The copy pass hashes on the main thread as bytes
 * arrive; the verification pass re-reads a whole file, and doing that in a worker lets it run on
 * another core while the next copy streams in.
 */
import { Worker } from 'node:worker_threads';
import os from 'node:os';

// Plain CommonJS evaluated in the worker, so the same code runs from dist/ and under vitest.
// One buffer, reused, and blocking reads: a worker hashes one file at a time and nothing else
// runs on its thread, while a read stream would leave a fresh 1 MiB buffer per read for the
// collector (30 MB of the daemon's peak RSS in the offload benchmark).
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const { closeSync, openSync, readSync } = require('node:fs');
let buf = Buffer.allocUnsafe(64 * 1024);
parentPort.on('message', ({ id, file, sizeHint }) => {
  const want = Math.max(64 * 1024, Math.min(1 << 20, sizeHint || 1 << 20));
  if (buf.length < want) buf = Buffer.allocUnsafe(want);
  const hash = createHash('sha256');
  let bytes = 0;
  let fd = -1;
  try {
    fd = openSync(file, 'r');
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, bytes);
      if (n === 0) break;
      hash.update(buf.subarray(0, n));
      bytes += n;
    }
    parentPort.postMessage({ id, sha256: hash.digest('hex'), bytes });
  } catch (err) {
    parentPort.postMessage({ id, error: err.message, code: err.code });
  } finally {
    if (fd >= 0) closeSync(fd);
  }
});
`;

interface Pending {
  resolve(v: { sha256: string; bytes: number }): void;
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
      w.on('message', (m: { id: number; sha256?: string; bytes?: number; error?: string; code?: string }) => {
        const p = this.pending.get(m.id);
        this.pending.delete(m.id);
        this.release(w);
        if (!p) return;
        if (m.error !== undefined) p.reject(Object.assign(new Error(m.error), { code: m.code }));
        else p.resolve({ sha256: m.sha256!, bytes: m.bytes! });
      });
      this.workers.push(w);
      this.idle.push(w);
    }
  }

  private release(w: Worker): void {
    const next = this.waiting.shift();
    this.idle.push(w);
    next?.();
  }

  async hashFile(file: string, sizeHint?: number): Promise<{ sha256: string; bytes: number }> {
    while (this.idle.length === 0) await new Promise<void>((r) => this.waiting.push(r));
    const w = this.idle.pop()!;
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      w.postMessage({ id, file, sizeHint });
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
