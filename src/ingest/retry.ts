import type { RetryConfig } from '../config.js';

/**
 * Exponential backoff with "equal jitter": half the delay is fixed, half random, so retries of
 * many recordings spread out without any of them retrying almost at once.
 */
export function backoffMs(attempt: number, cfg: RetryConfig, random: () => number = Math.random): number {
  const exp = cfg.baseDelayMs * 2 ** Math.max(0, attempt - 1);
  const capped = Math.min(cfg.maxDelayMs, exp);
  return Math.round(capped / 2 + random() * (capped / 2));
}

export function retriesExhausted(attempts: number, cfg: RetryConfig): boolean {
  return attempts >= cfg.attempts;
}
