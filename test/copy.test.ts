import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes, createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { SimCameraSession } from '../drivers/simulated/index.js';
import { copyRecording } from '../src/ingest/copy.js';
import { BatchedWriter, Checkpointer, syncStaging } from '../src/archive/staging.js';
import { hashWhole } from '../src/archive/hash.js';
import { ArchiveError } from '../src/archive/errors.js';
import { Readable } from 'node:stream';
import type { CameraSession } from '../drivers/types.js';
import type { FileHandle } from 'node:fs/promises';
import { HashPool } from '../src/archive/hash-pool.js';
import { BufferPool } from '../src/archive/buffer-pool.js';
import { DriverError } from '../drivers/types.js';
import { createDecryptStream, generateIdentity } from '../src/crypto/age.js';
import type { Archive } from '../src/archive/archive.js';
import type { LocalArchiveOptions } from '../src/archive/local.js';
import { PlainArchive } from '../src/archive/plain.js';
import { EncryptedArchive } from '../src/archive/encrypted.js';
import { buffer } from 'node:stream/consumers';

const log = pino({ level: 'silent' });
/** The recording every test copies; its staging file is the archive's stagingPathFor(ID). */
const ID = 'rec-1';

// One re-hash worker for every plain archive here; the pool is closed once, at the end.
const hashes = new HashPool(1);
const made: string[] = [];
afterAll(async () => {
  await hashes.close();
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

function tempDir(prefix: string): string {
  const d = mkdtempSync(path.join(os.tmpdir(), prefix));
  made.push(d);
  return d;
}

function plainArchive(o: Partial<LocalArchiveOptions> = {}): PlainArchive {
  return new PlainArchive({ dataDir: tempDir('dockd-copy-data-'), hashPool: hashes, ...o });
}

async function camera(
  files: Record<string, Buffer>,
  spec: Record<string, unknown> = {},
  archive: Archive = plainArchive(),
) {
  const dir = tempDir('dockd-copy-');
  for (const [rel, data] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    writeFileSync(path.join(dir, rel), data);
  }
  writeFileSync(path.join(dir, 'camera.json'), JSON.stringify({ serial: 'T-1', ...spec }));
  const session = await SimCameraSession.open(dir, log);
  return { dir, session, archive, staging: archive.stagingPathFor(ID) };
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const ctx = (cam: { session: CameraSession; archive: Archive }, extra = {}) => ({
  archive: cam.archive,
  session: cam.session,
  readTimeoutMs: 500,
  verifySource: false,
  signal: new AbortController().signal,
  ...extra,
});

describe('copy-and-hash', () => {
  it('hashes in the copy pass and leaves a staging file equal to the source', async () => {
    const data = randomBytes(3 * 1024 * 1024 + 17);
    const cam = await camera({ 'a.mp4': data });
    const seen: number[] = [];
    const r = await copyRecording(
      { sourceId: 'a.mp4', expectedBytes: data.length, id: ID, resumeFrom: 0 },
      ctx(cam, { onProgress: (n: number) => seen.push(n) }),
    );
    expect(r.sha256).toBe(sha(data));
    expect(readFileSync(cam.staging).equals(data)).toBe(true);
    expect(seen.at(-1)).toBe(data.length);
    expect(Math.max(...seen.map((n, i) => n - (seen[i - 1] ?? 0)))).toBeLessThanOrEqual(256 * 1024);
  });

  it('reads into borrowed buffers and gives each back only once it is in the file', async () => {
    const data = randomBytes(5 * 1024 * 1024 + 3);
    const buffers = new BufferPool(4 * 1024 * 1024);
    const taken = new Set<ArrayBufferLike>();
    const take = buffers.take.bind(buffers);
    buffers.take = (n: number) => {
      const b = take(n);
      taken.add(b.buffer);
      return b;
    };
    const cam = await camera({ 'a.mp4': data }, {}, plainArchive({ buffers }));
    const r = await copyRecording({ sourceId: 'a.mp4', expectedBytes: data.length, id: ID, resumeFrom: 0 }, ctx(cam));
    // A buffer read into again before its bytes were written would have changed the file.
    expect(r.sha256).toBe(sha(data));
    expect(readFileSync(cam.staging).equals(data)).toBe(true);
    // 21 reads of 256 KiB, from a handful of buffers in turn.
    expect(taken.size).toBeLessThanOrEqual(8);
    expect(buffers.kept).toBeGreaterThan(0);
  });

  it('resumes from a durable prefix, re-hashing it, and reads only the rest from the camera', async () => {
    const data = randomBytes(1_000_000);
    const cam = await camera({ 'a.mp4': data });
    writeFileSync(
      cam.staging,
      Buffer.concat([data.subarray(0, 600_000), Buffer.from('garbage past the durable point')]),
    );
    let fromCamera = 0;
    const r = await copyRecording(
      { sourceId: 'a.mp4', expectedBytes: data.length, id: ID, resumeFrom: 600_000 },
      ctx(cam, { onProgress: (n: number) => (fromCamera = n - 600_000) }),
    );
    // Without encryption what is stored is the plaintext itself, so both hashes agree.
    expect(r).toEqual({
      sha256: sha(data),
      bytes: data.length,
      resumedFrom: 600_000,
      storedSha256: sha(data),
      storedBytes: data.length,
    });
    expect(fromCamera).toBe(400_000);
    expect(readFileSync(cam.staging).equals(data)).toBe(true);
  });

  it('fails an io-error as transient at the fault byte', async () => {
    const data = randomBytes(200_000);
    const cam = await camera(
      { 'a.mp4': data },
      { faults: [{ path: 'a.mp4', kind: 'io-error', atByte: 100_000, times: 1 }] },
    );
    let got = 0;
    let durable = 0;
    const p = copyRecording(
      { sourceId: 'a.mp4', expectedBytes: data.length, id: ID, resumeFrom: 0 },
      ctx(cam, { onProgress: (n: number) => (got = n), onDurable: (n: number) => (durable = n) }),
    );
    await expect(p).rejects.toMatchObject({ kind: 'transient', code: 'io-error' });
    expect(got).toBe(100_000);
    // What arrived before the fault is on disk and durable: the next attempt may resume after it.
    expect(durable).toBe(100_000);
    expect(readFileSync(cam.staging).equals(data.subarray(0, 100_000))).toBe(true);
    const again = await copyRecording(
      { sourceId: 'a.mp4', expectedBytes: data.length, id: ID, resumeFrom: 0 },
      ctx(cam),
    );
    expect(again.sha256).toBe(sha(data));
  });

  it('stops a copy whose camera was undocked while the copy was still being set up', async () => {
    const data = randomBytes(4 * 1024 * 1024);
    const cam = await camera({ 'a.mp4': data }, { throughputBytesPerSec: 1_000_000 });
    const undock = new AbortController();
    let received = 0;
    const copy = copyRecording(
      { sourceId: 'a.mp4', expectedBytes: data.length, id: ID, resumeFrom: 0 },
      ctx(cam, { signal: undock.signal, onProgress: (n: number) => (received = n) }),
    );
    // Before the staging file is open and the camera's file is asked for: no abort event reaches
    // the read, which must still see it (it ran whole, past the link's rate, before).
    undock.abort();
    await expect(copy).rejects.toMatchObject({ kind: 'transient', code: 'aborted' });
    expect(received).toBe(0);
  });

  it('times out a stalled read as transient "stall"', async () => {
    const data = randomBytes(100_000);
    const cam = await camera(
      { 'a.mp4': data },
      { faults: [{ path: 'a.mp4', kind: 'stall', atByte: 50_000, times: 1 }] },
    );
    const t0 = Date.now();
    await expect(
      copyRecording(
        { sourceId: 'a.mp4', expectedBytes: data.length, id: ID, resumeFrom: 0 },
        ctx(cam, { readTimeoutMs: 300 }),
      ),
    ).rejects.toMatchObject({ kind: 'transient', code: 'stall' });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
  });

  it('with verifySource, a corrupted transfer is caught by the second read', async () => {
    const data = randomBytes(100_000);
    const cam = await camera(
      { 'a.mp4': data },
      { faults: [{ path: 'a.mp4', kind: 'corrupt', atByte: 4096, times: 1 }] },
    );
    const err = await copyRecording(
      { sourceId: 'a.mp4', expectedBytes: data.length, id: ID, resumeFrom: 0 },
      ctx(cam, { verifySource: true }),
    ).catch((e: unknown) => e);
    // The camera's fault, not the disk's: its two reads disagreed.
    expect(err).toBeInstanceOf(DriverError);
    expect(err).toMatchObject({ kind: 'transient', code: 'source-mismatch' });
    const ok = await copyRecording(
      { sourceId: 'a.mp4', expectedBytes: data.length, id: ID, resumeFrom: 0 },
      ctx(cam, { verifySource: true }),
    );
    expect(ok.sha256).toBe(sha(data));
  });

  it('refuses a camera that sends more or fewer bytes than it listed', async () => {
    const data = randomBytes(10_000);
    const cam = await camera({ 'a.mp4': data });
    await expect(
      copyRecording({ sourceId: 'a.mp4', expectedBytes: 5000, id: ID, resumeFrom: 0 }, ctx(cam)),
    ).rejects.toMatchObject({ code: 'size-mismatch' });
    await expect(
      copyRecording({ sourceId: 'a.mp4', expectedBytes: 20_000, id: ID, resumeFrom: 0 }, ctx(cam)),
    ).rejects.toMatchObject({ code: 'short-read' });
  });

  it('catches a staging file that changed between the copy and the re-read', async () => {
    const data = randomBytes(300_000);
    const cam = await camera({ 'a.mp4': data });
    // The stored bytes change after the fsync and before the re-read, as on a failing disk.
    let reread = false;
    const failingDisk = {
      hashFile: async (file: string) => {
        expect(readFileSync(file).equals(data), 'the copy was complete and right before the disk failed').toBe(true);
        writeFileSync(file, Buffer.alloc(data.length));
        reread = true;
        return hashWhole(file);
      },
    } as unknown as HashPool;
    cam.archive = plainArchive({ hashPool: failingDisk });
    cam.staging = cam.archive.stagingPathFor(ID);
    const err = await copyRecording(
      { sourceId: 'a.mp4', expectedBytes: data.length, id: ID, resumeFrom: 0 },
      ctx(cam),
    ).catch((e: unknown) => e);
    expect(reread).toBe(true);
    expect(err).toBeInstanceOf(ArchiveError);
    expect(err).toMatchObject({ code: 'verify-mismatch' });
  });

  it('writes every byte in order, at its position, when the file takes only part of each write', async () => {
    const file = Buffer.alloc(3_000_000);
    // A file that takes at most 300 bytes per call, as a short write would.
    const shortWrites = {
      writev: async (buffers: Buffer[], position: number) => {
        const all = Buffer.concat(buffers).subarray(0, 300);
        all.copy(file, position);
        return { bytesWritten: all.length, buffers };
      },
    } as unknown as FileHandle;
    const data = randomBytes(2_500_000);
    const out = new BatchedWriter(shortWrites, 1000);
    for (let i = 0; i < data.length; i += 70_001) await out.write(data.subarray(i, i + 70_001));
    await out.flush();
    expect(out.written).toBe(1000 + data.length);
    expect(file.subarray(1000, 1000 + data.length).equals(data)).toBe(true);
  });

  it('fails a write the file takes nothing of, instead of waiting for ever', async () => {
    const full = { writev: async (buffers: Buffer[]) => ({ bytesWritten: 0, buffers }) } as unknown as FileHandle;
    const out = new BatchedWriter(full, 0);
    await out.write(Buffer.alloc(10));
    const err = await out.flush().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ArchiveError);
    expect(err).toMatchObject({ code: 'write-stalled' });
  });

  it('reports a long copy durable in 64 MiB steps, each only once its fsync is done', async () => {
    const MiB = 1024 * 1024;
    const piece = randomBytes(MiB);
    const pieces = 130;
    const h = createHash('sha256');
    for (let i = 0; i < pieces; i++) h.update(piece);
    const durable: number[] = [];
    // A checkpoint that is still running when the next 64 MiB are in is not doubled but skipped,
    // so on a busy disk the camera holds its 128th MiB back until the first fsync has reported.
    const firstReported = async () => {
      while (durable.length === 0) await new Promise((r) => setTimeout(r, 5));
    };
    const session = {
      capabilities: { resume: true, delete: true },
      read: async () =>
        Readable.from(
          (async function* () {
            for (let i = 0; i < pieces; i++) {
              if (i === 127) await firstReported();
              yield piece;
            }
          })(),
        ),
    } as unknown as CameraSession;
    const r = await copyRecording(
      { sourceId: 'long', expectedBytes: pieces * MiB, id: ID, resumeFrom: 0 },
      ctx({ session, archive: plainArchive() }, { readTimeoutMs: 60_000, onDurable: (n: number) => durable.push(n) }),
    );
    expect(r.sha256).toBe(h.digest('hex'));
    expect(durable).toEqual([64 * MiB, 128 * MiB]);
  });

  it('lets a checkpoint fsync run on while the copy goes on, and reports only the bytes written before it', async () => {
    let finish!: () => void;
    const slowDisk = { sync: () => new Promise<void>((r) => (finish = r)) } as unknown as FileHandle;
    const durable: number[] = [];
    const cp = new Checkpointer(slowDisk, (n) => durable.push(n));
    cp.start(4096);
    expect(cp.busy).toBe(true);
    cp.throwIfFailed();
    expect(durable).toEqual([]);
    finish();
    await cp.settled();
    expect(durable).toEqual([4096]);
    expect(cp.busy).toBe(false);
  });

  it('fails the copy at the next chunk when a checkpoint fsync fails, and reports nothing durable', async () => {
    const badDisk = {
      sync: () => Promise.reject(Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' })),
    } as unknown as FileHandle;
    const durable: number[] = [];
    const cp = new Checkpointer(badDisk, (n) => durable.push(n));
    cp.start(4096);
    await expect(cp.settled()).rejects.toMatchObject({ code: 'EIO' });
    expect(() => cp.throwIfFailed()).toThrow(/EIO/);
    expect(durable).toEqual([]);
  });

  it('runs at most two staging fsyncs at once and starts the next as one ends', async () => {
    const finish: Array<() => void> = [];
    const disk = () => ({ sync: () => new Promise<void>((r) => finish.push(r)) }) as unknown as FileHandle;
    const done: number[] = [];
    const syncs = [0, 1, 2].map((i) => syncStaging(disk()).then(() => done.push(i)));
    await new Promise((r) => setTimeout(r, 20));
    expect(finish).toHaveLength(2);
    finish[0]!();
    await new Promise((r) => setTimeout(r, 20));
    expect(done).toEqual([0]);
    expect(finish).toHaveLength(3);
    finish[1]!();
    finish[2]!();
    await Promise.all(syncs);
    expect(done).toEqual([0, 1, 2]);
  });
});

describe('copy-and-hash with direct I/O (O_DIRECT staging, verified from the disk)', () => {
  const directArchive = (o: Partial<LocalArchiveOptions> = {}) => {
    const archive = plainArchive({ buffers: new BufferPool(4 * 1024 * 1024), ...o });
    expect(archive.useDirectIo(), `O_DIRECT in ${os.tmpdir()}`).toEqual({ ok: true });
    return archive;
  };
  const directCamera = (files: Record<string, Buffer>, spec: Record<string, unknown> = {}) =>
    camera(files, spec, directArchive());

  it('leaves a staging file equal to the source, cut to its exact size', async () => {
    const data = randomBytes(3 * 1024 * 1024 + 17);
    const cam = await directCamera({ 'a.mp4': data });
    const r = await copyRecording({ sourceId: 'a.mp4', expectedBytes: data.length, id: ID, resumeFrom: 0 }, ctx(cam));
    expect(r).toMatchObject({ sha256: sha(data), bytes: data.length, storedBytes: data.length });
    expect(readFileSync(cam.staging).equals(data)).toBe(true);
  });

  it('keeps only whole blocks of an interrupted copy durable, and resumes from the last one', async () => {
    const data = randomBytes(1_500_000);
    const cam = await directCamera(
      { 'a.mp4': data },
      { faults: [{ path: 'a.mp4', kind: 'io-error', atByte: 1_000_000, times: 1 }] },
    );
    let durable = 0;
    const p = copyRecording(
      { sourceId: 'a.mp4', expectedBytes: data.length, id: ID, resumeFrom: 0 },
      ctx(cam, { onDurable: (n: number) => (durable = n) }),
    );
    await expect(p).rejects.toMatchObject({ kind: 'transient', code: 'io-error' });
    // 1,000,000 bytes arrived; the durable point is the last block boundary before it.
    expect(durable).toBe(1_000_000 - (1_000_000 % 4096));
    expect(readFileSync(cam.staging).equals(data.subarray(0, durable))).toBe(true);
    let fromCamera = 0;
    const again = await copyRecording(
      { sourceId: 'a.mp4', expectedBytes: data.length, id: ID, resumeFrom: durable },
      ctx(cam, { onProgress: (n: number) => (fromCamera = n - durable) }),
    );
    expect(again).toMatchObject({ sha256: sha(data), resumedFrom: durable });
    expect(fromCamera).toBe(data.length - durable);
    expect(readFileSync(cam.staging).equals(data)).toBe(true);
  });

  it('resumes a prefix that does not end on a block from the block boundary before it', async () => {
    const data = randomBytes(1_000_000);
    const cam = await directCamera({ 'a.mp4': data });
    // A staging file left by a buffered copy: durable to a byte that is not a block boundary.
    writeFileSync(cam.staging, data.subarray(0, 600_000));
    const r = await copyRecording(
      { sourceId: 'a.mp4', expectedBytes: data.length, id: ID, resumeFrom: 600_000 },
      ctx(cam),
    );
    expect(r).toMatchObject({ sha256: sha(data), resumedFrom: 598_016 });
    expect(readFileSync(cam.staging).equals(data)).toBe(true);
  });

  it('catches a stored copy that differs on the disk', async () => {
    const data = randomBytes(300_000);
    const cam = await directCamera({ 'a.mp4': data });
    // The disk gives back other bytes than were written: the re-read must come from the disk.
    const failingDisk = {
      hashFile: async (file: string, opts: { direct?: boolean }) => {
        expect(opts).toEqual({ direct: true });
        writeFileSync(file, Buffer.alloc(data.length));
        return hashes.hashFile(file, opts);
      },
    } as unknown as HashPool;
    cam.archive = directArchive({ hashPool: failingDisk });
    const err = await copyRecording(
      { sourceId: 'a.mp4', expectedBytes: data.length, id: ID, resumeFrom: 0 },
      ctx(cam),
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ArchiveError);
    expect(err).toMatchObject({ code: 'verify-mismatch' });
  });
});

describe('encrypted copy', () => {
  const custodian = generateIdentity();
  const archives: EncryptedArchive[] = [];
  // Each has a seal pool of its own; the re-hash pool they share is closed with the file's.
  const encryptedArchive = (o: Partial<LocalArchiveOptions> = {}) => {
    const unclosed = { hashFile: hashes.hashFile.bind(hashes), close: async () => {} } as unknown as HashPool;
    const archive = new EncryptedArchive({
      dataDir: tempDir('dockd-copy-data-'),
      recipients: [custodian.recipient],
      hashPool: unclosed,
      ...o,
    });
    archives.push(archive);
    return archive;
  };
  afterAll(async () => {
    for (const a of archives) await a.close();
  });
  const decrypt = (file: string) =>
    buffer(Readable.from([readFileSync(file)]).pipe(createDecryptStream([custodian.identity])));

  it('stores ciphertext only, and records the SHA-256 of the file on the disk beside the plaintext one', async () => {
    const data = randomBytes(2 * 1024 * 1024 + 333);
    const cam = await camera({ 'a.mp4': data }, {}, encryptedArchive());
    const r = await copyRecording({ sourceId: 'a.mp4', expectedBytes: data.length, id: ID, resumeFrom: 0 }, ctx(cam));
    const stored = readFileSync(cam.staging);
    expect(r).toMatchObject({
      sha256: sha(data),
      bytes: data.length,
      storedSha256: sha(stored),
      storedBytes: stored.length,
      encryptedTo: [custodian.recipient],
    });
    expect(stored.includes(data.subarray(1000, 1064)), 'no plaintext on the disk').toBe(false);
    expect((await decrypt(cam.staging)).equals(data)).toBe(true);
  });

  it('fails verification when the stored ciphertext changed after it was sealed, though the file still hashes', async () => {
    const data = randomBytes(700_000);
    // One bit of the stored file flips after the fsync and before the re-read, as on a failing disk.
    const failingDisk = {
      hashFile: async (file: string, opts: Parameters<HashPool['hashFile']>[1]) => {
        const stored = readFileSync(file);
        expect((await decrypt(file)).equals(data), 'the sealed file was right before the disk failed').toBe(true);
        stored[stored.length - 5000]! ^= 0x04;
        writeFileSync(file, stored);
        return hashes.hashFile(file, opts);
      },
      close: async () => {},
    } as unknown as HashPool;
    const cam = await camera({ 'a.mp4': data }, {}, encryptedArchive({ hashPool: failingDisk }));
    const err = await copyRecording(
      { sourceId: 'a.mp4', expectedBytes: data.length, id: ID, resumeFrom: 0 },
      ctx(cam),
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ArchiveError);
    expect(err).toMatchObject({
      code: 'verify-mismatch',
      message: expect.stringMatching(/not what was sealed: its payload chunk 10 does not authenticate/),
    });
  });
});
