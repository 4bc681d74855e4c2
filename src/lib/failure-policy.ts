/**
 * The one failure policy of dockd's queues: a copy from a camera, a deletion from it, an upload
 * to the object store. Each attempt that fails is sorted by its caller into "paused" (the cause
 * is not the item's: the camera left, our disk is full or read-only, the object store refuses
 * everyone), "permanent", or neither; this decides what follows.
 */

/** `ingest.retry`, `replication.retry`: how many attempts, and the back-off between them. */
export interface RetryConfig {
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export type NextStep =
  /** Try again after `delayMs`; the attempt counts. */
  | { action: 'retry'; delayMs: number }
  /** Not the item's fault: try again after `delayMs`, as often as it takes. */
  | { action: 'pause'; delayMs: number }
  /** Stop: a person retries it (`dockd retry`, `dockd replicate`). */
  | { action: 'fail' };

export interface FailedAttempt {
  /** The attempt that failed, counted from 1. */
  attempt: number;
  paused: boolean;
  permanent: boolean;
}

export function nextStep(f: FailedAttempt, retry: RetryConfig, pauseMs = 0): NextStep {
  if (f.paused) return { action: 'pause', delayMs: pauseMs };
  if (f.permanent || f.attempt >= retry.attempts) return { action: 'fail' };
  return { action: 'retry', delayMs: backoffMs(f.attempt, retry) };
}

/**
 * Exponential backoff with "equal jitter": half the delay is fixed, half random, so retries of
 * many recordings spread out without any of them retrying almost at once.
 */
export function backoffMs(attempt: number, cfg: RetryConfig, random: () => number = Math.random): number {
  const exp = cfg.baseDelayMs * 2 ** Math.max(0, attempt - 1);
  const capped = Math.min(cfg.maxDelayMs, exp);
  return Math.round(capped / 2 + random() * (capped / 2));
}
