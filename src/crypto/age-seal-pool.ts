/**
 * Sealing age payloads on worker threads. An encrypted copy costs ChaCha20-Poly1305 on top of a
 * plain one; on the main thread it ran beside the camera reads and the plaintext hash and held
 * that one core at its limit. Here the main thread only reads, hashes the plaintext and hands
 * each chunk over (moved, not copied); a worker seals it and writes it to the staging file
 * through the descriptor it is given. The ciphertext is hashed once, when the stored file is
 * re-read (src/archive/encrypted.ts).
 *
 * The file is the one age-stream.ts writes (age-encryption.org/v1, STREAM with 64 KiB chunks):
 * the header comes from startAgeFile, each chunk is sealed by age-stream.ts's own function, and
 * the test of this pool decrypts the output with that module and the daemon's tests with `age`.
 */
import { Worker } from 'node:worker_threads';
import { AEAD_ADDON, TAG_SIZE, loadChunkAead } from './aead.js';
import { CHUNK, MAX_COUNTER, sealStreamChunk, streamNonce, streamStep } from './age-stream.js';

/**
 * Plaintext bytes handed to a worker and not yet sealed, per file, before write() waits. 1 MiB
 * sealed as fast as 2 MiB on the bench and kept the encrypting daemon's peak 2 MB lower.
 */
const IN_FLIGHT = 1024 * 1024;
/** The worker reports progress in steps of this many bytes; less than IN_FLIGHT, or write() would wait for ever. */
const ACK_EVERY = 512 * 1024;

// Plain CommonJS evaluated in the worker, so the same code runs from dist/ and under vitest.
// Writes are blocking: nothing else runs on this thread, and one write per MiB keeps the
// per-call cost out of sight.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { writeSync } = require('node:fs');
const CHUNK = ${CHUNK};
const MAX_COUNTER = ${MAX_COUNTER};
// Sealed chunks are gathered into one buffer per file and written with one call per MiB.
const BATCH = 16 * (CHUNK + ${TAG_SIZE});
// The chunking and sealing of age-stream.ts and the AEAD of aead.ts, their own source, so both write the same format.
const loadChunkAead = ${loadChunkAead.toString()};
const aead = loadChunkAead(require, ${JSON.stringify(AEAD_ADDON)});
const streamNonce = ${streamNonce.toString()};
const sealStreamChunk = ${sealStreamChunk.toString()};
const streamStep = ${streamStep.toString()};
const ACK_EVERY = ${ACK_EVERY};
const jobs = new Map();
// A job's held chunk and write batch (1.1 MiB) go to the next job once it is over. Made afresh
// for every file, they outlived the few scavenges this thread's small heap sees and waited for a
// full collection that never came: the benchmark's 32 files left 36 MB of them in the daemon's
// peak RSS. Kept, they number at most the files ever sealed at once.
const spare = [];

function fail(message, code) {
  return Object.assign(new Error(message), { code });
}

class Job {
  constructor(fd, key, prefix) {
    this.fd = fd;
    this.key = key;
    this.buffers = spare.pop() ?? { held: Buffer.allocUnsafe(CHUNK), batch: Buffer.allocUnsafe(BATCH) };
    this.held = this.buffers.held;
    this.filled = 0;
    this.counter = 0;
    this.batch = this.buffers.batch;
    this.used = 0;
    this.position = 0;
    this.unacked = 0;
    // Plaintext buffers lent by the main thread's pool, sent back with the next acknowledgement.
    this.back = [];
    this.write(prefix);
  }

  write(buf) {
    for (let off = 0; off < buf.length; ) {
      const n = writeSync(this.fd, buf, off, buf.length - off, this.position);
      if (n === 0) throw fail('the staging file accepted no bytes', 'write-stalled');
      this.position += n;
      off += n;
    }
  }

  seal(plaintext, final) {
    if (this.counter > MAX_COUNTER) throw fail('age payload too long', 'age-too-long');
    if (this.used + plaintext.length + ${TAG_SIZE} > BATCH) this.flush();
    this.used += sealStreamChunk(aead, this.key, this.counter++, final, plaintext, this.batch.subarray(this.used));
  }

  flush() {
    this.write(this.batch.subarray(0, this.used));
    this.used = 0;
  }

  data(buf) {
    while (buf.length > 0) {
      const s = streamStep(this.held, this.filled, buf);
      if (s.seal) this.seal(s.seal, false);
      this.filled = s.filled;
      buf = buf.subarray(s.took);
    }
  }

  end() {
    this.seal(this.held.subarray(0, this.filled), true);
    this.flush();
    return { bytes: this.position };
  }

  /** Wipes the key and lends the buffers to the next job; nothing of this job is used again. */
  over() {
    this.key.fill(0);
    // The held chunk is camera plaintext: it does not wait in the spare list for the next file.
    if (this.buffers) spare.push({ held: this.buffers.held.fill(0), batch: this.buffers.batch });
    this.buffers = this.held = this.batch = null;
  }
}

const view = (u8) => Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);

parentPort.on('message', (m) => {
  const job = jobs.get(m.id);
  try {
    if (m.op === 'open') {
      jobs.set(m.id, new Job(m.fd, view(m.key), view(m.prefix)));
    } else if (m.op === 'data') {
      if (!job) return;
      job.data(view(m.chunk));
      // Sealed (or copied into the held chunk): nothing here refers to its memory any more.
      if (m.lent) job.back.push(m.chunk.buffer);
      // An acknowledgement per chunk cost this thread more than the writes' system calls.
      job.unacked += m.chunk.byteLength;
      if (job.unacked >= ACK_EVERY) {
        parentPort.postMessage({ id: m.id, ack: job.unacked, back: job.back }, job.back);
        job.back = [];
        job.unacked = 0;
      }
    } else if (m.op === 'end') {
      if (!job) return;
      jobs.delete(m.id);
      const done = job.end();
      job.over();
      parentPort.postMessage({ id: m.id, done });
    } else if (m.op === 'drop') {
      job?.over();
      jobs.delete(m.id);
      parentPort.postMessage({ id: m.id, dropped: true });
    }
  } catch (err) {
    job?.over();
    jobs.delete(m.id);
    parentPort.postMessage({ id: m.id, error: String((err && err.message) || err), code: err && err.code });
  }
});
`;

/**
 * Where the chunks handed over may come from (src/archive/buffer-pool.ts): a chunk of its memory
 * moves to the worker whole, and the memory comes back once sealed.
 */
export interface LentBuffers {
  /** Takes a lent chunk's buffer off the books, as it moves to the worker; true when it was lent. */
  handOver(chunk: Buffer): boolean;
  /** Keeps memory the worker moved back, for the next chunk to be read into. */
  adopt(memory: ArrayBuffer): void;
}

export interface SealedFile {
  /** Size of the whole age file as written. */
  bytes: number;
}

interface WorkerReply {
  id: number;
  ack?: number;
  /** Lent plaintext buffers, moved back once sealed. */
  back?: ArrayBuffer[];
  done?: SealedFile;
  dropped?: true;
  error?: string;
  code?: string;
}

class SealWorker {
  readonly worker = new Worker(WORKER_SOURCE, { eval: true });
  readonly jobs = new Map<number, SealJob>();
  dead = false;

  constructor(onDeath: (w: SealWorker) => void) {
    this.worker.unref();
    this.worker.on('message', (m: WorkerReply) => this.jobs.get(m.id)?.reply(m));
    const die = (err: Error) => {
      if (this.dead) return;
      this.dead = true;
      onDeath(this);
      for (const job of this.jobs.values()) job.workerDied(err);
      this.jobs.clear();
    };
    this.worker.on('error', die);
    this.worker.on('exit', (code) => die(new Error(`the sealing worker exited (code ${code})`)));
  }
}

/**
 * One age file being sealed by a worker. The worker writes through the descriptor it was given,
 * so the caller must not close that file before end() or abort() has settled.
 */
export class SealJob {
  private inFlight = 0;
  private failure: Error | null = null;
  private wake: (() => void) | null = null;
  private finish: { resolve(f: SealedFile): void; reject(e: Error): void } | null = null;
  private dropped: (() => void) | null = null;
  private over = false;

  constructor(
    private readonly owner: SealWorker,
    private readonly id: number,
    private readonly buffers?: LentBuffers,
  ) {}

  /** Hands a chunk over; the caller must not use it again. Waits while the worker is behind. */
  async write(chunk: Buffer): Promise<void> {
    if (this.failure) throw this.failure;
    if (chunk.length === 0) return;
    this.inFlight += chunk.length;
    this.post(chunk);
    while (this.inFlight > IN_FLIGHT && !this.failure) await new Promise<void>((resolve) => (this.wake = resolve));
    if (this.failure) throw this.failure;
  }

  /** Seals the last chunk and flushes; resolves with the hash and size of the file written. */
  end(): Promise<SealedFile> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.finish = { resolve, reject };
      this.owner.worker.postMessage({ op: 'end', id: this.id });
    });
  }

  /** Stops the job; resolves once the worker will not touch the file again. */
  abort(): Promise<void> {
    if (this.over) return Promise.resolve();
    return new Promise((resolve) => {
      this.dropped = resolve;
      this.owner.worker.postMessage({ op: 'drop', id: this.id });
    });
  }

  private post(chunk: Buffer): void {
    // A chunk read into the pool's memory moves whole, and comes back with an acknowledgement.
    if (this.buffers?.handOver(chunk)) {
      this.owner.worker.postMessage({ op: 'data', id: this.id, chunk, lent: true }, [chunk.buffer as ArrayBuffer]);
      return;
    }
    // A buffer that is all of its memory moves to the worker at no cost. A view into a larger
    // one (a pool slice, part of a USB transfer) is copied first: moving it would take the rest
    // of that memory from whoever else holds it, and cloning the view would copy all of it.
    const whole =
      chunk.byteOffset === 0 && chunk.byteLength === chunk.buffer.byteLength && chunk.buffer instanceof ArrayBuffer;
    if (whole) {
      try {
        this.owner.worker.postMessage({ op: 'data', id: this.id, chunk }, [chunk.buffer as ArrayBuffer]);
        return;
      } catch {
        // Memory that cannot be detached (an external buffer from a native module) is copied.
      }
    }
    const copy = new Uint8Array(chunk);
    this.owner.worker.postMessage({ op: 'data', id: this.id, chunk: copy }, [copy.buffer]);
  }

  reply(m: WorkerReply): void {
    if (m.ack !== undefined) {
      for (const memory of m.back ?? []) this.buffers?.adopt(memory);
      this.inFlight -= m.ack;
      if (this.inFlight <= IN_FLIGHT) this.release();
    } else if (m.done) {
      this.close();
      this.finish?.resolve(m.done);
    } else if (m.dropped) {
      this.close();
      this.dropped?.();
    } else if (m.error !== undefined) {
      this.close();
      this.fail(Object.assign(new Error(m.error), { code: m.code }));
    }
  }

  workerDied(err: Error): void {
    this.over = true;
    this.fail(err);
    this.dropped?.();
  }

  private fail(err: Error): void {
    this.failure ??= err;
    this.release();
    this.finish?.reject(this.failure);
  }

  private release(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  private close(): void {
    this.over = true;
    this.owner.jobs.delete(this.id);
  }
}

export class AgeSealPool {
  private readonly workers: SealWorker[] = [];
  private nextId = 1;

  /**
   * One worker seals about 1.8–2 GB/s (into /dev/null, with the native binding) on the 2-core VM
   * the benchmark runs on, far more than the USB links of a dock deliver; a second one there did
   * not make the benchmark faster, and each costs 35–40 MB of memory. Workers start with the first file, so a dock that does not
   * encrypt never has them.
   */
  constructor(
    private readonly size = 1,
    /** Where the chunks handed over come from, and where their memory goes back once sealed. */
    private readonly buffers?: LentBuffers,
  ) {}

  /**
   * Starts sealing a new age file into the open file `fd`, from position 0: `prefix` and `key`
   * as startAgeFile made them. The worker gets copies; the caller's key stays the caller's to wipe.
   */
  open(fd: number, prefix: Buffer, key: Buffer): SealJob {
    const owner = this.pick();
    const id = this.nextId++;
    const job = new SealJob(owner, id, this.buffers);
    owner.jobs.set(id, job);
    // Fresh copies that are all of their memory: the header may sit in Node's shared pool.
    const keyCopy = new Uint8Array(key);
    const prefixCopy = new Uint8Array(prefix);
    owner.worker.postMessage({ op: 'open', id, fd, key: keyCopy, prefix: prefixCopy }, [
      keyCopy.buffer,
      prefixCopy.buffer,
    ]);
    return job;
  }

  private pick(): SealWorker {
    if (this.workers.length < this.size) {
      const w = new SealWorker((dead) => {
        const i = this.workers.indexOf(dead);
        if (i >= 0) this.workers.splice(i, 1);
      });
      this.workers.push(w);
      return w;
    }
    return this.workers.reduce((a, b) => (b.jobs.size < a.jobs.size ? b : a));
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.worker.terminate()));
  }
}
