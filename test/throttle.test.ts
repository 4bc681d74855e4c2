import { describe, expect, it } from 'vitest';
import { BURST_MS, Throttle } from '../drivers/simulated/throttle.js';

/** A clock that only moves when someone sleeps or the test says so. */
function fakeClock() {
  let t = 1000;
  return {
    now: () => t,
    sleep: async (ms: number) => {
      t += ms;
    },
    advance: (ms: number) => {
      t += ms;
    },
    get t() {
      return t;
    },
  };
}

const CHUNK = 256 * 1024;
const RATE = 40_000_000;
const chunkMs = (CHUNK / RATE) * 1000;

describe('simulated link throttle', () => {
  it('holds a reader that always asks at once to the nominal rate', async () => {
    const clock = fakeClock();
    const link = new Throttle(RATE, clock);
    const start = clock.t;
    for (let i = 0; i < 200; i++) await link.take(CHUNK);
    // The first BURST_MS of the link's time was banked before the first read; no more.
    expect(clock.t - start).toBeCloseTo(200 * chunkMs - BURST_MS, 6);
  });

  it('loses nothing to a reader that is a little late each time, as dockd is while it writes', async () => {
    const clock = fakeClock();
    const link = new Throttle(RATE, clock);
    const start = clock.t;
    for (let i = 0; i < 200; i++) {
      await link.take(CHUNK);
      clock.advance(chunkMs * 0.9); // the reader's own work, just under one chunk's link time
    }
    const seconds = (clock.t - start) / 1000;
    // 200 chunks in the link's time for 200 chunks (less the initial burst), plus the last bit of work.
    expect((200 * CHUNK) / seconds).toBeGreaterThan(0.99 * RATE);
  });

  it('banks at most BURST_MS of an idle link: a pause is not made up for later', async () => {
    const clock = fakeClock();
    const link = new Throttle(RATE, clock);
    await link.take(CHUNK);
    clock.advance(1000); // the host did something else for a second
    const before = clock.t;
    const n = Math.ceil(BURST_MS / chunkMs) + 20;
    for (let i = 0; i < n; i++) await link.take(CHUNK);
    expect(clock.t - before).toBeCloseTo(n * chunkMs - BURST_MS, 6);
  });

  it('does not limit a link without a rate', async () => {
    const clock = fakeClock();
    const link = new Throttle(0, clock);
    for (let i = 0; i < 10; i++) await link.take(CHUNK);
    expect(clock.t).toBe(1000);
  });
});
