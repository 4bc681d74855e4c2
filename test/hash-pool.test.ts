import { afterAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { HashPool, hashWorkers } from '../src/ingest/hash-pool.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'dockd-hashpool-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, bytes: number): { file: string; sha256: string } {
  const data = randomBytes(bytes);
  const f = path.join(dir, name);
  writeFileSync(f, data);
  return { file: f, sha256: createHash('sha256').update(data).digest('hex') };
}

describe('HashPool', () => {
  it('starts its second worker only when a file would wait for the first', async () => {
    const pool = new HashPool(2);
    try {
      const a = file('a', 3 * 1024 * 1024);
      const b = file('b', 3 * 1024 * 1024);
      await expect(pool.hashFile(a.file)).resolves.toEqual({ sha256: a.sha256, bytes: 3 * 1024 * 1024 });
      await expect(pool.hashFile(b.file)).resolves.toMatchObject({ sha256: b.sha256 });
      expect(pool.started).toBe(1);
      const both = await Promise.all([pool.hashFile(a.file), pool.hashFile(b.file), pool.hashFile(a.file)]);
      expect(both.map((r) => r.sha256)).toEqual([a.sha256, b.sha256, a.sha256]);
      expect(pool.started).toBe(2);
    } finally {
      await pool.close();
    }
  });

  it('keeps files too small to be worth it waiting for the one worker', async () => {
    const pool = new HashPool(2);
    try {
      const files = [0, 1, 2, 3].map((i) => file(`s${i}`, 64 * 1024 + i));
      const got = await Promise.all(files.map((f) => pool.hashFile(f.file, { bytes: 64 * 1024 })));
      expect(got.map((r) => r.sha256)).toEqual(files.map((f) => f.sha256));
      expect(pool.started).toBe(1);
      const big = file('big', 5 * 1024 * 1024);
      await Promise.all([pool.hashFile(big.file, { bytes: 5 * 1024 * 1024 }), pool.hashFile(big.file, { bytes: 5 * 1024 * 1024 })]);
      expect(pool.started).toBe(2);
    } finally {
      await pool.close();
    }
  });

  it('never runs more workers than it was given, however many files wait', async () => {
    const pool = new HashPool(1);
    try {
      const files = [0, 1, 2, 3].map((i) => file(`c${i}`, 256 * 1024 + i));
      const got = await Promise.all(files.map((f) => pool.hashFile(f.file)));
      expect(got.map((r) => r.sha256)).toEqual(files.map((f) => f.sha256));
      expect(pool.started).toBe(1);
    } finally {
      await pool.close();
    }
  });
});

describe('hashWorkers', () => {
  it('gives a plain dock two re-hashing workers from two cores, an encrypting one leaves a core to sealing', () => {
    expect(hashWorkers({}, 2)).toBe(2);
    expect(hashWorkers({ sealing: true }, 2)).toBe(1);
    expect(hashWorkers({}, 1)).toBe(1);
    expect(hashWorkers({ sealing: true }, 1)).toBe(1);
    expect(hashWorkers({}, 16)).toBe(2);
    expect(hashWorkers({ sealing: true }, 16)).toBe(2);
  });
});
