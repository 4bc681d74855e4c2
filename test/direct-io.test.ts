/**
 * Staging files written with O_DIRECT (src/archive/direct-io.ts) and read back from the disk by
 * the hash pool.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { constants, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AlignedBuffers, DIRECT_ALIGN, DirectWriter, alignedBuffer, probeDirectIo } from '../src/archive/direct-io.js';
import { HashPool } from '../src/archive/hash-pool.js';

const MiB = 1024 * 1024;
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'dockd-direct-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const openDirect = (file: string, flags = constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC) =>
  open(file, flags | constants.O_DIRECT);

/** Writes `data` through a DirectWriter in chunks of `chunk` bytes, as a copy does. */
async function writeDirect(
  file: string,
  data: Buffer,
  chunk: number,
  buffers = new AlignedBuffers(MiB),
): Promise<number> {
  const fh = await openDirect(file);
  const out = new DirectWriter(fh, 0, buffers);
  try {
    for (let i = 0; i < data.length; i += chunk) await out.write(data.subarray(i, i + chunk));
    await out.finish();
    return out.written;
  } finally {
    await out.close();
    await fh.close();
  }
}

describe('probeDirectIo', () => {
  it('finds O_DIRECT on the test machine’s temporary directory and leaves nothing behind', () => {
    expect(probeDirectIo(dir)).toEqual({ ok: true });
    expect(readdirSync(dir).filter((n) => n.startsWith('.direct-io-probe'))).toEqual([]);
  });

  it('says why when it cannot write there', () => {
    expect(probeDirectIo(path.join(dir, 'no-such-dir'))).toEqual({ ok: false, reason: 'ENOENT' });
  });
});

describe('alignedBuffer', () => {
  it('is accepted by an O_DIRECT write, at every 4096-byte offset into it', async () => {
    const buf = alignedBuffer(MiB);
    buf.fill(7);
    const fh = await openDirect(path.join(dir, 'aligned'));
    try {
      for (const at of [0, DIRECT_ALIGN, 5 * DIRECT_ALIGN])
        await expect(fh.write(buf, at, DIRECT_ALIGN, at)).resolves.toMatchObject({ bytesWritten: DIRECT_ALIGN });
      // The contrast that shows the test can fail: an unaligned view is refused.
      await expect(fh.write(buf, 16, DIRECT_ALIGN, 0)).rejects.toMatchObject({ code: 'EINVAL' });
    } finally {
      await fh.close();
    }
  });
});

describe('DirectWriter', () => {
  // Sizes around the block and the 1 MiB buffer, fed in chunks that do not divide either.
  const cases: Array<[number, number]> = [
    [0, 4096],
    [1, 1],
    [4095, 1000],
    [4096, 4096],
    [4097, 3000],
    [MiB - 1, 256 * 1024],
    [MiB, 256 * 1024],
    [MiB + 1, 100_001],
    [3.5 * MiB + 123, 256 * 1024],
  ];
  for (const [size, chunk] of cases) {
    it(`stores ${size} bytes written in ${chunk}-byte chunks exactly, cut to their size`, async () => {
      const data = randomBytes(size);
      const file = path.join(dir, `w-${size}-${chunk}`);
      expect(await writeDirect(file, data, chunk)).toBe(size);
      expect(statSync(file).size).toBe(size);
      expect(sha(readFileSync(file))).toBe(sha(data));
    });
  }

  it('lets the caller reuse a chunk as soon as write() resolves', async () => {
    const file = path.join(dir, 'reuse');
    const chunk = Buffer.alloc(300_000);
    const expected: Buffer[] = [];
    const fh = await openDirect(file);
    const out = new DirectWriter(fh, 0, new AlignedBuffers(MiB));
    for (let i = 0; i < 10; i++) {
      chunk.fill(i + 1);
      expected.push(Buffer.from(chunk));
      await out.write(chunk);
    }
    await out.finish();
    await out.close();
    await fh.close();
    expect(sha(readFileSync(file))).toBe(sha(Buffer.concat(expected)));
  });

  it('flush() puts whole blocks in the file and keeps the partial one for the bytes that follow', async () => {
    const file = path.join(dir, 'flush');
    const data = randomBytes(3 * DIRECT_ALIGN + 500);
    const fh = await openDirect(file);
    const out = new DirectWriter(fh, 0, new AlignedBuffers(MiB));
    await out.write(data.subarray(0, 2 * DIRECT_ALIGN + 100));
    await out.flush();
    // What a checkpoint would report durable: block-aligned, and all of it in the file.
    expect(out.written).toBe(2 * DIRECT_ALIGN);
    expect(statSync(file).size).toBe(2 * DIRECT_ALIGN);
    await out.write(data.subarray(2 * DIRECT_ALIGN + 100));
    await out.finish();
    await out.close();
    await fh.close();
    expect(out.written).toBe(data.length);
    expect(sha(readFileSync(file))).toBe(sha(data));
  });

  it('goes on from a block boundary of a file already there, as a resumed copy does', async () => {
    const file = path.join(dir, 'resume');
    const data = randomBytes(5 * DIRECT_ALIGN + 7);
    writeFileSync(file, data.subarray(0, 2 * DIRECT_ALIGN));
    const fh = await openDirect(file, constants.O_RDWR);
    const out = new DirectWriter(fh, 2 * DIRECT_ALIGN, new AlignedBuffers(MiB));
    await out.write(data.subarray(2 * DIRECT_ALIGN));
    await out.finish();
    await out.close();
    await fh.close();
    expect(sha(readFileSync(file))).toBe(sha(data));
  });

  it('refuses to start between blocks', async () => {
    const fh = await openDirect(path.join(dir, 'misaligned'));
    try {
      expect(() => new DirectWriter(fh, 1000, new AlignedBuffers(MiB))).toThrow(RangeError);
    } finally {
      await fh.close();
    }
  });

  it('reuses its buffers from one file to the next', async () => {
    const buffers = new AlignedBuffers(MiB);
    const taken: Buffer[] = [];
    const take = buffers.take.bind(buffers);
    buffers.take = () => {
      const b = take();
      taken.push(b);
      return b;
    };
    for (let i = 0; i < 3; i++)
      await writeDirect(path.join(dir, `many-${i}`), randomBytes(3 * MiB), 256 * 1024, buffers);
    // Two per file at most (one filling, one on its way to the disk), and the same two each time.
    expect(new Set(taken.map((b) => b.buffer)).size).toBe(2);
  });

  it('hands its buffers back once, however often it is closed', async () => {
    const buffers = new AlignedBuffers(MiB);
    const fh = await openDirect(path.join(dir, 'closed-twice'));
    const out = new DirectWriter(fh, 0, buffers);
    await out.write(randomBytes(2 * MiB + 1));
    await out.finish();
    await out.close();
    await out.close();
    await fh.close();
    const [a, b, c] = [buffers.take(), buffers.take(), buffers.take()];
    expect(new Set([a.buffer, b.buffer, c.buffer]).size).toBe(3);
  });

  describe('on a full disk', () => {
    const mnt = path.join(os.tmpdir(), `dockd-direct-full-${process.pid}`);
    beforeAll(() => {
      mkdirSync(mnt, { recursive: true });
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mnt]);
    });
    afterAll(() => {
      execFileSync('umount', ['-l', mnt]);
      rmSync(mnt, { recursive: true, force: true });
    });

    it('fails with ENOSPC, counts only what reached the file, and writes nothing after the gap', async () => {
      const file = path.join(mnt, 'full');
      const fh = await openDirect(file);
      const out = new DirectWriter(fh, 0, new AlignedBuffers(MiB));
      let failure: unknown = null;
      try {
        for (let i = 0; i < 8; i++) await out.write(randomBytes(MiB));
        await out.flush();
      } catch (err) {
        failure = err;
      }
      await expect(out.flush()).rejects.toMatchObject({ code: 'ENOSPC' });
      await out.close();
      await fh.close();
      expect(failure).toMatchObject({ code: 'ENOSPC' });
      expect(out.written % DIRECT_ALIGN).toBe(0);
      expect(out.written).toBeLessThanOrEqual(2 * MiB);
      // Whatever the file holds beyond `written` came from the write that failed, never a later one.
      expect(statSync(file).size).toBeLessThanOrEqual(out.written + MiB);
    });
  });
});

describe('HashPool with direct reads', () => {
  const pool = new HashPool(1);
  afterAll(() => pool.close());

  for (const size of [0, 1, 4097, 2 * MiB, 2 * MiB + 1]) {
    it(`hashes a ${size}-byte file read from the disk`, async () => {
      const data = randomBytes(size);
      const file = path.join(dir, `h-${size}`);
      expect(await writeDirect(file, data, 64 * 1024)).toBe(size);
      await expect(pool.hashFile(file, { direct: true })).resolves.toEqual({ sha256: sha(data), bytes: size });
    });
  }

  it('reports a file it cannot open', async () => {
    await expect(pool.hashFile(path.join(dir, 'missing'), { direct: true })).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
