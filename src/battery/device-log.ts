/**
 * Turns a camera's own battery log into samples worth storing.
 *
 * A camera that does not clear its log reports the same entries again at every docking, each time
 * corrected by a freshly measured clock skew. Two measurements of one camera's skew differ by the
 * rounding of its whole-second clock and by its RTC drift between the visits (20–50 ppm is 2–4 s a
 * day), so a re-reported entry lands a few seconds away from its stored twin. An entry within
 * `DEDUP_TOLERANCE_MS` of a stored device sample with the same percent and charging flag is taken to
 * be that sample. Merging two genuinely distinct entries that close and that alike would not change
 * any figure of the model, while missing a twin stores the whole log again at every visit.
 *
 * The log is untrusted input: anything that is not a plausible reading is dropped, not thrown on.
 */
import type { BatterySample } from './model.js';

export const DEDUP_TOLERANCE_MS = 10_000;
/** The most entries taken from one visit; camera logs every 15–30 min fill this in about three years. */
export const MAX_LOG_ENTRIES_PER_VISIT = 100_000;
/** Entries before this are a camera whose clock reset to its epoch, not history. */
export const EARLIEST_PLAUSIBLE_MS = Date.UTC(2000, 0, 1);
/** Entries further ahead of the dock's clock than this cannot have happened yet. */
export const MAX_FUTURE_MS = 24 * 3_600_000;

export interface DeviceLogInput {
  at: Date;
  percent?: number;
  charging?: boolean;
}

export type StoredDeviceSample = Pick<BatterySample, 'at' | 'percent' | 'charging'>;

/**
 * What is already stored for this camera, in one of three forms:
 * - the stored device samples: a twin must match time within the tolerance and the values exactly;
 * - just their times: a twin must match time within the tolerance;
 * - a callback (e.g. a range query on the store), given the candidate and the tolerance.
 */
export type StoredDeviceSamples =
  readonly StoredDeviceSample[] | ReadonlySet<number> | ((candidate: BatterySample, toleranceMs: number) => boolean);

export interface NewDeviceSamplesOptions {
  /** The dock's clock, for rejecting entries from the future; defaults to Date.now(). */
  now?: number;
  toleranceMs?: number;
  /** Defaults to MAX_LOG_ENTRIES_PER_VISIT; when exceeded the newest entries are kept. */
  maxEntries?: number;
  /**
   * Entries from before this time (dock clock) are not stored: samples that old have been pruned,
   * so a camera that still carries them would otherwise bring them back on every docking.
   */
  earliest?: number;
}

/** Index of the first element of `sorted` whose `at` is ≥ `at`. */
function lowerBound<T>(sorted: readonly T[], at: number, key: (t: T) => number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (key(sorted[mid]!) < at) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function storedMatcher(stored: StoredDeviceSamples, tol: number): (c: BatterySample) => boolean {
  if (typeof stored === 'function') return (c) => stored(c, tol);
  if (Array.isArray(stored)) {
    const rows = [...(stored as readonly StoredDeviceSample[])].sort((a, b) => a.at - b.at);
    return (c) => {
      for (let i = lowerBound(rows, c.at - tol, (r) => r.at); i < rows.length && rows[i]!.at <= c.at + tol; i++) {
        const r = rows[i]!;
        if (r.percent === c.percent && r.charging === c.charging) return true;
      }
      return false;
    };
  }
  const times = [...(stored as ReadonlySet<number>)].sort((a, b) => a - b);
  return (c) => {
    const i = lowerBound(times, c.at - tol, (t) => t);
    return i < times.length && times[i]! <= c.at + tol;
  };
}

/**
 * The entries of `log` not yet stored, as device samples on the dock's clock, sorted by time.
 * `clockOffsetSeconds` is the camera's clock minus the dock's, as measured at this docking, so an
 * entry's true time is its `at` minus the offset.
 */
export function newDeviceSamples(
  stored: StoredDeviceSamples,
  log: readonly DeviceLogInput[],
  clockOffsetSeconds: number,
  options: NewDeviceSamplesOptions = {},
): BatterySample[] {
  // Without a usable offset every time would be wrong; storing nothing beats storing that.
  if (!Number.isFinite(clockOffsetSeconds) || !Array.isArray(log)) return [];
  const tol = options.toleranceMs ?? DEDUP_TOLERANCE_MS;
  const max = Math.max(0, Math.floor(options.maxEntries ?? MAX_LOG_ENTRIES_PER_VISIT));
  const latestPlausible = (options.now ?? Date.now()) + MAX_FUTURE_MS;
  const earliest = Math.max(EARLIEST_PLAUSIBLE_MS, options.earliest ?? 0);
  const isStored = storedMatcher(stored, tol);

  const seen = new Set<string>();
  const out: BatterySample[] = [];
  for (const e of log) {
    if (typeof e !== 'object' || e === null || !(e.at instanceof Date)) continue;
    const { percent, charging } = e;
    if (typeof percent !== 'number' || !Number.isFinite(percent) || percent < 0 || percent > 100) continue;
    if (charging !== undefined && typeof charging !== 'boolean') continue;
    const at = Math.round(e.at.getTime() - clockOffsetSeconds * 1000);
    if (!Number.isFinite(at) || at < earliest || at > latestPlausible) continue;
    // A log entry without the flag is read as not charging, as the simulated camera's file format does.
    const sample: BatterySample = { at, percent, charging: charging ?? false, source: 'device' };
    const key = `${at}|${percent}|${sample.charging ? 1 : 0}`;
    if (seen.has(key) || isStored(sample)) continue;
    seen.add(key);
    out.push(sample);
  }
  out.sort((a, b) => a.at - b.at);
  return out.length > max ? out.slice(out.length - max) : out;
}
