import { describe, expect, it } from 'vitest';
import { backoffMs, nextStep } from '../src/lib/failure-policy.js';

const retry = { attempts: 3, baseDelayMs: 1000, maxDelayMs: 5000 };

describe('the failure policy shared by copies, deletions and uploads', () => {
  it('retries a transient failure with a growing, capped, jittered delay until the attempts are spent', () => {
    for (const [attempt, capped] of [
      [1, 1000],
      [2, 2000],
    ] as const) {
      const step = nextStep({ attempt, paused: false, permanent: false }, retry);
      expect(step.action).toBe('retry');
      const delay = (step as { delayMs: number }).delayMs;
      expect(delay).toBeGreaterThanOrEqual(capped / 2);
      expect(delay).toBeLessThanOrEqual(capped);
    }
    expect(nextStep({ attempt: 3, paused: false, permanent: false }, retry)).toEqual({ action: 'fail' });
    expect(backoffMs(10, retry, () => 1)).toBe(5000);
    expect(backoffMs(10, retry, () => 0)).toBe(2500);
  });

  it('gives up at once on a permanent failure, even at the first attempt', () => {
    expect(nextStep({ attempt: 1, paused: false, permanent: true }, retry)).toEqual({ action: 'fail' });
  });

  it('never gives up on a failure that is not the item’s, however many attempts were made', () => {
    expect(nextStep({ attempt: 1000, paused: true, permanent: false }, retry)).toEqual({ action: 'pause', delayMs: 0 });
    expect(nextStep({ attempt: 1000, paused: true, permanent: true }, retry, 60_000)).toEqual({
      action: 'pause',
      delayMs: 60_000,
    });
  });
});
