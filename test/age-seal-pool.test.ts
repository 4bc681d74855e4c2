import { afterAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { AgeSealPool } from '../src/crypto/age-seal-pool.js';
import { BufferPool } from '../src/archive/buffer-pool.js';
import { createDecryptStream, encryptedSize, generateIdentity, startAgeFile } from '../src/crypto/age.js';
import { chunkAead } from '../src/crypto/aead.js';
import { storedAgeCheck } from '../src/crypto/age-stream.js';

const KiB = 1024;
const CHUNK = 64 * KiB;
const dir = mkdtempSync(path.join(os.tmpdir(), 'dockd-seal-'));
const pool = new AgeSealPool(2);
const alice = generateIdentity();
const bob = generateIdentity();

afterAll(async () => {
  await pool.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A new age file into `fd`, as the encrypted copy starts one; the key is the caller's. */
function start(on: AgeSealPool, fd: number, recipients: string[]) {
  const { prefix, key } = startAgeFile(recipients);
  return { job: on.open(fd, prefix, key), prefix, key };
}

/** Seals `plaintext` into a new file, handed over in pieces the way a camera's reads arrive. */
async function seal(name: string, plaintext: Buffer, pieceSizes: number[], recipients = [alice.recipient]) {
  const file = path.join(dir, name);
  const fh = await open(file, 'w');
  try {
    const { job, prefix, key } = start(pool, fh.fd, recipients);
    let at = 0;
    for (let i = 0; at < plaintext.length; i++) {
      const size = pieceSizes[i % pieceSizes.length]!;
      // Fresh buffers, as a driver hands them over; the pool may take their memory.
      await job.write(Buffer.from(plaintext.subarray(at, at + size)));
      at += size;
    }
    const sealed = await job.end();
    return { file, sealed, prefix, key };
  } finally {
    await fh.close();
  }
}

async function decrypt(file: string, identities: string[]): Promise<Buffer> {
  return buffer(Readable.from([readFileSync(file)]).pipe(createDecryptStream(identities)));
}

describe('sealing age files on worker threads', () => {
  it('writes age files that decrypt to the original bytes, whatever the sizes, and that the re-read check passes', async () => {
    const cases: Array<[number, number[]]> = [
      [0, [1]],
      [1, [1]],
      [CHUNK - 1, [1000]],
      [CHUNK, [CHUNK]],
      [CHUNK + 1, [CHUNK]],
      [4 * CHUNK, [256 * KiB]],
      [3 * 1024 * KiB + 17, [256 * KiB, 1, CHUNK, 100_000, 3]],
    ];
    for (const [size, pieces] of cases) {
      const plaintext = randomBytes(size);
      const { file, sealed, prefix, key } = await seal(`f-${size}`, plaintext, pieces);
      const onDisk = readFileSync(file);
      expect(sealed.bytes, `size of the age file for ${size} bytes`).toBe(encryptedSize(size, 1));
      expect(onDisk.length).toBe(sealed.bytes);
      const check = storedAgeCheck(chunkAead, key, prefix, sealed.bytes);
      check.feed(onDisk);
      expect(check.problem(), `the stored file of ${size} bytes checked against its key`).toBeNull();
      expect((await decrypt(file, [alice.identity])).equals(plaintext), `round trip of ${size} bytes`).toBe(true);
    }
  });

  it('seals several files at once on shared workers without mixing them up', async () => {
    const inputs = Array.from({ length: 5 }, (_, i) => randomBytes(700 * KiB + i * 4099));
    const results = await Promise.all(
      inputs.map((p, i) => seal(`par-${i}`, p, [256 * KiB, 12_345], [alice.recipient, bob.recipient])),
    );
    for (const [i, { file }] of results.entries()) {
      expect((await decrypt(file, [bob.identity])).equals(inputs[i]!), `file ${i}`).toBe(true);
    }
  });

  it('leaves the rest of a buffer alone when it is handed a view into it', async () => {
    const big = randomBytes(1024 * KiB);
    const before = Buffer.from(big);
    const fh = await open(path.join(dir, 'views'), 'w');
    try {
      const { job } = start(pool, fh.fd, [alice.recipient]);
      await job.write(big.subarray(0, 300 * KiB));
      await job.write(big.subarray(300 * KiB, 301 * KiB));
      await job.end();
    } finally {
      await fh.close();
    }
    expect(big.equals(before)).toBe(true);
    expect((await decrypt(path.join(dir, 'views'), [alice.identity])).equals(before.subarray(0, 301 * KiB))).toBe(true);
  });

  it('fails with the file system error code when the disk is full, so the copy pauses as for a plain one', async () => {
    const fh = await open('/dev/full', 'w');
    try {
      const { job } = start(pool, fh.fd, [alice.recipient]);
      const wrote = (async () => {
        for (let i = 0; i < 16; i++) await job.write(randomBytes(256 * KiB));
        await job.end();
      })();
      await expect(wrote).rejects.toMatchObject({ code: 'ENOSPC' });
      await job.abort();
    } finally {
      await fh.close();
    }
  });

  it('lets go of the file on abort, and seals the next file normally', async () => {
    const file = path.join(dir, 'aborted');
    const fh = await open(file, 'w');
    const { job } = start(pool, fh.fd, [alice.recipient]);
    await job.write(randomBytes(3 * CHUNK));
    await job.abort();
    const sizeAtAbort = (await fh.stat()).size;
    await fh.close();
    // Anything the worker wrote after abort() resolved would land in whatever file gets the
    // descriptor next; one sealed here would show it.
    const plaintext = randomBytes(5 * CHUNK);
    const { file: next } = await seal('after-abort', plaintext, [CHUNK]);
    expect((await decrypt(next, [alice.identity])).equals(plaintext)).toBe(true);
    expect(readFileSync(file).length).toBe(sizeAtAbort);
  });

  it('seals each file whole when a worker reuses the buffers of files that ended or were dropped', async () => {
    const own = new AgeSealPool(1);
    const sealOn = async (name: string, plaintext: Buffer, abort = false) => {
      const file = path.join(dir, name);
      const fh = await open(file, 'w');
      try {
        const { job } = start(own, fh.fd, [alice.recipient]);
        await job.write(Buffer.from(plaintext));
        if (abort) await job.abort();
        else await job.end();
      } finally {
        await fh.close();
      }
      return file;
    };
    try {
      // Each file's chunks and batch are left full of the one before's bytes.
      const long = randomBytes(40 * CHUNK + 3);
      expect((await decrypt(await sealOn('reuse-long', long), [alice.identity])).equals(long)).toBe(true);
      await sealOn('reuse-dropped', randomBytes(5 * CHUNK + 7), true);
      for (const size of [0, 1, CHUNK, 2 * CHUNK + 1]) {
        const plaintext = randomBytes(size);
        const file = await sealOn(`reuse-${size}`, plaintext);
        expect(readFileSync(file).length, `size of the age file for ${size} bytes`).toBe(encryptedSize(size, 1));
        expect((await decrypt(file, [alice.identity])).equals(plaintext), `round trip of ${size} bytes`).toBe(true);
      }
    } finally {
      await own.close();
    }
  });

  it('fails a file in progress, instead of hanging, when its worker dies', async () => {
    const own = new AgeSealPool(1);
    const fh = await open(path.join(dir, 'orphan'), 'w');
    try {
      const { job } = start(own, fh.fd, [alice.recipient]);
      await job.write(randomBytes(CHUNK));
      await own.close();
      await expect(job.end()).rejects.toThrow(/sealing worker exited/);
      await job.abort();
    } finally {
      await fh.close();
    }
  });

  it('moves chunks read into borrowed buffers whole, and their memory comes back for the next reads', async () => {
    const buffers = new BufferPool(4 * 1024 * KiB);
    const own = new AgeSealPool(1, buffers);
    const plaintext = randomBytes(3 * 1024 * KiB + 5);
    const file = path.join(dir, 'lent');
    const fh = await open(file, 'w');
    let fresh = 0;
    try {
      const { job } = start(own, fh.fd, [alice.recipient]);
      for (let at = 0; at < plaintext.length; at += 256 * KiB) {
        const n = Math.min(256 * KiB, plaintext.length - at);
        const keptBefore = buffers.kept;
        const chunk = buffers.take(n);
        // A take that did not come from the kept buffers made a new one.
        if (buffers.kept === keptBefore) fresh++;
        plaintext.copy(chunk, 0, at, at + n);
        // A driver's read: a view of the bytes it got, into the buffer it borrowed.
        await job.write(chunk.subarray(0, n));
      }
      await job.end();
    } finally {
      await fh.close();
      await own.close();
    }
    expect((await decrypt(file, [alice.identity])).equals(plaintext)).toBe(true);
    // 13 reads: memory came back while the file was sealed, so fewer buffers were ever made.
    expect(fresh).toBeLessThan(13);
    expect(buffers.kept).toBeGreaterThan(0);
  });
});
