/**
 * The battery-health model: pure functions over a camera's battery samples. No storage, no clock,
 * no I/O, so the store, the CLI and the tests all see the same answer for the same samples.
 *
 * Times are epoch milliseconds on the dock's clock; device samples must already be corrected for
 * the camera's clock skew (see device-log.ts).
 *
 * Decisions the contract leaves open:
 * - `short` needs at least one hour of counted non-charging data, like `ok`. A projection from a
 *   few minutes of data swings wildly (a camera that ran its screen and Wi-Fi for ten minutes at
 *   setup looks like a four-hour battery), and flagging a new camera `short` on that would teach
 *   people to ignore the flag. `degraded` needs only the health figure the battery reports, so the
 *   order is short (with ≥ 1 h) → degraded → unknown → ok.
 * - Zero drain over at least an hour (the percent never moved) gives a null runtime, meaning "too
 *   long to project"; it can never be `short`, so the status is `ok` unless `degraded`.
 * - Status compares unrounded figures; rounding is display only (format.ts).
 */

export type SampleSource = 'dock' | 'device';

export interface BatterySample {
  /** Epoch ms on the dock's clock. */
  at: number;
  percent: number;
  charging: boolean;
  source: SampleSource;
  /**
   * The docking a dock sample was taken in. Optional; when two consecutive dock samples carry the
   * same visit the camera sat on dock power between them, so the interval says nothing about
   * drain even if the camera reported "not charging" (many batteries do once full).
   */
  visit?: number;
}

export type BatteryStatus = 'ok' | 'short' | 'degraded' | 'unknown';
export type TrendLabel = 'rising' | 'stable' | 'falling' | 'unknown';

export interface BatteryModelInput {
  /** Any order; exact duplicates count once; invalid samples are ignored. */
  samples: readonly BatterySample[];
  /** The latest health figure the battery reported, or null when it reports none. */
  healthPercent: number | null;
  /** `battery.shiftHours` from the config. */
  shiftHours: number;
  /** Reference time for `windowHours`; defaults to the latest sample. */
  now?: number;
  /**
   * Only samples in the last `windowHours` before `now` count. Absent = the whole history passed
   * in. A long history averages an ageing battery's recent decline away, so a caller that keeps
   * months of samples may want e.g. 14 days here.
   */
  windowHours?: number;
}

/** A run of non-charging samples, ended by a charging sample, a dock visit or a gap over 4 h. */
export interface Shift {
  start: number;
  end: number;
  /** Wall-clock span from the first to the last sample. */
  hours: number;
  /** Hours of the intervals that count toward drain (rises without charging are left out). */
  countedHours: number;
  startPercent: number;
  endPercent: number;
  /** Sum of the drops over the counted intervals. */
  percentUsed: number;
  drainPercentPerHour: number;
}

export interface BatteryTrend {
  label: TrendLabel;
  /** Least-squares slope of per-shift drain, in %/h per shift; null with too few shifts. */
  slopePercentPerHourPerShift: number | null;
  /** How many shifts the slope was fitted to. */
  shifts: number;
}

export interface BatteryHealth {
  status: BatteryStatus;
  healthPercent: number | null;
  drainPercentPerHour: number | null;
  /** Hours of non-charging data behind `drainPercentPerHour`. */
  countedHours: number;
  /** From a full charge; null when drain is unknown or zero. */
  projectedRuntimeHours: number | null;
  chargeRatePercentPerHour: number | null;
  /** Linear estimate from the latest sample; null unless that sample is charging and the rate is known. */
  minutesToFull: number | null;
  latest: BatterySample | null;
  shifts: Shift[];
  trend: BatteryTrend;
}

const HOUR_MS = 3_600_000;

/** Longer gaps between two non-charging samples are a camera switched off in a drawer, not use. */
export const MAX_DRAIN_INTERVAL_HOURS = 24;
/** A gap this long between non-charging samples ends a shift. */
export const SHIFT_GAP_HOURS = 4;
/** Counted non-charging data needed before `short` or `ok` can be claimed. */
export const MIN_DATA_HOURS = 1;
/** `healthPercent` below this is `degraded`. */
export const DEGRADED_BELOW_PERCENT = 80;
/**
 * Dock samples come every minute or so; a longer gap between two charging ones means dockd was
 * down, and the battery may have reached full and sat there, which would understate the rate.
 */
export const MAX_CHARGE_INTERVAL_HOURS = 1;
/** Less charging data than this (15 min) gives a rate dominated by whole-percent rounding. */
export const MIN_CHARGE_HOURS = 0.25;
/** The trend is fitted to at most this many of the latest shifts… */
export const TREND_SHIFTS = 5;
/** …and needs at least this many, each with at least `TREND_MIN_SHIFT_HOURS` of counted data. */
export const TREND_MIN_SHIFTS = 3;
export const TREND_MIN_SHIFT_HOURS = 1;
/** A slope beyond ± this many %/h per shift is `rising` / `falling`. */
export const TREND_THRESHOLD = 0.5;

function isValidSample(s: BatterySample): boolean {
  return (
    typeof s === 'object' &&
    s !== null &&
    Number.isFinite(s.at) &&
    Number.isFinite(s.percent) &&
    s.percent >= 0 &&
    s.percent <= 100 &&
    typeof s.charging === 'boolean' &&
    (s.source === 'dock' || s.source === 'device')
  );
}

/**
 * Valid samples, exact duplicates removed, sorted by time. Ties are broken on the values so the
 * result never depends on the input order: at one instant a non-charging sample comes before a
 * charging one and a higher percent before a lower, which is the order they happen in.
 */
export function normalizeSamples(samples: readonly BatterySample[]): BatterySample[] {
  const seen = new Set<string>();
  const out: BatterySample[] = [];
  for (const s of samples) {
    if (!isValidSample(s)) continue;
    const key = `${s.at}|${s.percent}|${s.charging ? 1 : 0}|${s.source}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(s);
  }
  return out.sort(
    (a, b) =>
      a.at - b.at ||
      Number(a.charging) - Number(b.charging) ||
      b.percent - a.percent ||
      (a.source === b.source ? 0 : a.source === 'dock' ? -1 : 1),
  );
}

type Pair =
  /** Counts toward drain; `inShift` is false for gaps over SHIFT_GAP_HOURS. */
  | { kind: 'drain'; hours: number; drop: number; inShift: boolean }
  /** Charging at either end, or on dock power: never drain, and ends a shift. */
  | { kind: 'break' }
  /** Not counted (zero length, a rise without charging, too long) but the shift goes on if short. */
  | { kind: 'skip'; inShift: boolean };

function onDockPower(a: BatterySample, b: BatterySample): boolean {
  return a.source === 'dock' && b.source === 'dock' && a.visit !== undefined && a.visit === b.visit;
}

function classify(a: BatterySample, b: BatterySample): Pair {
  if (a.charging || b.charging || onDockPower(a, b)) return { kind: 'break' };
  const ms = b.at - a.at;
  const inShift = ms <= SHIFT_GAP_HOURS * HOUR_MS;
  const drop = a.percent - b.percent;
  if (ms <= 0 || ms > MAX_DRAIN_INTERVAL_HOURS * HOUR_MS || drop < 0) return { kind: 'skip', inShift };
  return { kind: 'drain', hours: ms / HOUR_MS, drop, inShift };
}

function splitShifts(sorted: readonly BatterySample[], pairs: readonly Pair[]): Shift[] {
  const shifts: Shift[] = [];
  let first: BatterySample | undefined;
  let last: BatterySample | undefined;
  let counted = 0;
  let used = 0;
  const close = (): void => {
    if (first && last && counted > 0) {
      shifts.push({
        start: first.at,
        end: last.at,
        hours: (last.at - first.at) / HOUR_MS,
        countedHours: counted,
        startPercent: first.percent,
        endPercent: last.percent,
        percentUsed: used,
        drainPercentPerHour: used / counted,
      });
    }
    first = last = undefined;
    counted = used = 0;
  };
  for (let i = 0; i < pairs.length; i++) {
    const p = pairs[i]!;
    const a = sorted[i]!;
    const b = sorted[i + 1]!;
    if (p.kind === 'break' || !p.inShift) {
      close();
      continue;
    }
    first ??= a;
    last = b;
    if (p.kind === 'drain') {
      counted += p.hours;
      used += p.drop;
    }
  }
  close();
  return shifts;
}

/** Least-squares slope of `ys` against 0, 1, 2, … */
function slope(ys: readonly number[]): number {
  const n = ys.length;
  const meanX = (n - 1) / 2;
  const meanY = ys.reduce((s, y) => s + y, 0) / n;
  let num = 0;
  let den = 0;
  ys.forEach((y, x) => {
    num += (x - meanX) * (y - meanY);
    den += (x - meanX) ** 2;
  });
  return den === 0 ? 0 : num / den;
}

export function drainTrend(shifts: readonly Shift[]): BatteryTrend {
  const usable = shifts.filter((s) => s.countedHours >= TREND_MIN_SHIFT_HOURS).slice(-TREND_SHIFTS);
  if (usable.length < TREND_MIN_SHIFTS)
    return { label: 'unknown', slopePercentPerHourPerShift: null, shifts: usable.length };
  const k = slope(usable.map((s) => s.drainPercentPerHour));
  const label: TrendLabel = k > TREND_THRESHOLD ? 'rising' : k < -TREND_THRESHOLD ? 'falling' : 'stable';
  return { label, slopePercentPerHourPerShift: k, shifts: usable.length };
}

function chargeRate(sorted: readonly BatterySample[]): number | null {
  const dock = sorted.filter((s) => s.source === 'dock');
  let hours = 0;
  let gained = 0;
  for (let i = 1; i < dock.length; i++) {
    const a = dock[i - 1]!;
    const b = dock[i]!;
    if (!a.charging || !b.charging) continue;
    if (a.visit !== undefined && b.visit !== undefined && a.visit !== b.visit) continue;
    const ms = b.at - a.at;
    // Full-to-full says nothing about the rate; a fall while charging is a camera recording on the dock.
    if (ms <= 0 || ms > MAX_CHARGE_INTERVAL_HOURS * HOUR_MS || a.percent >= 100 || b.percent < a.percent) continue;
    hours += ms / HOUR_MS;
    gained += b.percent - a.percent;
  }
  return hours >= MIN_CHARGE_HOURS ? gained / hours : null;
}

export function assessBattery(input: BatteryModelInput): BatteryHealth {
  const { shiftHours, windowHours } = input;
  if (!(Number.isFinite(shiftHours) && shiftHours > 0))
    throw new RangeError(`shiftHours must be a positive number, got ${shiftHours}`);
  if (windowHours !== undefined && !(windowHours > 0))
    throw new RangeError(`windowHours must be a positive number, got ${windowHours}`);
  const healthPercent =
    input.healthPercent !== null && Number.isFinite(input.healthPercent) ? input.healthPercent : null;

  let sorted = normalizeSamples(input.samples);
  if (windowHours !== undefined && sorted.length > 0) {
    const ref = input.now ?? sorted[sorted.length - 1]!.at;
    const from = ref - windowHours * HOUR_MS;
    sorted = sorted.filter((s) => s.at >= from && s.at <= ref);
  }

  const pairs: Pair[] = [];
  for (let i = 1; i < sorted.length; i++) pairs.push(classify(sorted[i - 1]!, sorted[i]!));

  let countedHours = 0;
  let dropped = 0;
  for (const p of pairs) {
    if (p.kind !== 'drain') continue;
    countedHours += p.hours;
    dropped += p.drop;
  }
  const drain = countedHours > 0 ? dropped / countedHours : null;
  const runtime = drain !== null && drain > 0 ? 100 / drain : null;
  const enoughData = countedHours >= MIN_DATA_HOURS;

  let status: BatteryStatus;
  if (enoughData && runtime !== null && runtime < shiftHours) status = 'short';
  else if (healthPercent !== null && healthPercent < DEGRADED_BELOW_PERCENT) status = 'degraded';
  else if (!enoughData) status = 'unknown';
  else status = 'ok';

  const rate = chargeRate(sorted);
  const latest = sorted[sorted.length - 1] ?? null;
  let minutesToFull: number | null = null;
  if (latest?.charging) {
    if (latest.percent >= 100) minutesToFull = 0;
    else if (rate !== null && rate > 0) minutesToFull = ((100 - latest.percent) / rate) * 60;
  }

  const shifts = splitShifts(sorted, pairs);
  return {
    status,
    healthPercent,
    drainPercentPerHour: drain,
    countedHours,
    projectedRuntimeHours: runtime,
    chargeRatePercentPerHour: rate,
    minutesToFull,
    latest,
    shifts,
    trend: drainTrend(shifts),
  };
}
