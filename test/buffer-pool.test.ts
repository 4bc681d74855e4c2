/**
 * The read buffers drivers borrow (src/archive/buffer-pool.ts): a chunk given back is read into again,
 * and never lent to two readers at once.
 */
import { describe, expect, it } from 'vitest';
import { BufferPool } from '../src/archive/buffer-pool.js';

const MiB = 1024 * 1024;

describe('BufferPool', () => {
  it('lends the same memory again once it is given back, views included', () => {
    const pool = new BufferPool(MiB);
    const a = pool.take(256 * 1024);
    pool.give(a.subarray(0, 1000));
    const b = pool.take(256 * 1024);
    expect(b.buffer).toBe(a.buffer);
    expect(b.length).toBeGreaterThanOrEqual(256 * 1024);
  });

  it('never lends one buffer twice at once, whatever is given back', () => {
    const pool = new BufferPool(MiB);
    const a = pool.take(100_000);
    pool.give(a);
    pool.give(a);
    pool.give(Buffer.alloc(128 * 1024));
    const b = pool.take(100_000);
    const c = pool.take(100_000);
    expect(b.buffer).toBe(a.buffer);
    expect(c.buffer).not.toBe(a.buffer);
  });

  it('keeps no more than it was told to', () => {
    const pool = new BufferPool(512 * 1024);
    const lent = Array.from({ length: 4 }, () => pool.take(256 * 1024));
    for (const b of lent) pool.give(b);
    expect(pool.kept).toBe(512 * 1024);
  });

  it('gives requests beyond its largest size a buffer of their own', () => {
    const pool = new BufferPool(8 * MiB);
    const big = pool.take(2 * MiB);
    pool.give(big);
    expect(pool.kept).toBe(0);
  });

  it('lets its buffers go after a while without a take', async () => {
    const pool = new BufferPool(MiB, 50);
    pool.give(pool.take(256 * 1024));
    expect(pool.kept).toBe(256 * 1024);
    await new Promise((r) => setTimeout(r, 200));
    expect(pool.kept).toBe(0);
  });

  it('hands a lent chunk over to another thread once, and keeps memory that comes back from it', () => {
    const pool = new BufferPool(MiB);
    const a = pool.take(256 * 1024);
    expect(pool.handOver(a.subarray(0, 10))).toBe(true);
    expect(pool.handOver(a)).toBe(false);
    expect(pool.handOver(Buffer.alloc(256 * 1024))).toBe(false);
    // What a worker transfers back: the same size, a new ArrayBuffer over memory nobody else holds.
    const back = new ArrayBuffer(256 * 1024);
    pool.adopt(back);
    expect(pool.kept).toBe(256 * 1024);
    expect(pool.take(200_000).buffer).toBe(back);
    pool.adopt(new ArrayBuffer(0));
    expect(pool.kept).toBe(0);
  });
});
