/**
 * Rounding and terminal rendering of the battery model. The model keeps full precision so the
 * status never depends on how a figure is displayed; everything shown to people or emitted as
 * JSON goes through here.
 */
import type { BatteryHealth, BatteryStatus, TrendLabel } from './model.js';

function round(v: number | null, digits: number): number | null {
  if (v === null || !Number.isFinite(v)) return null;
  const f = 10 ** digits;
  // `+ 0` turns -0 into 0 so JSON never shows "-0".
  return Math.round(v * f) / f + 0;
}

/** The model's figures as `battery --json` shows them; the caller adds serial, percent and charging. */
export interface BatteryHealthView {
  status: BatteryStatus;
  healthPercent: number | null;
  drainPercentPerHour: number | null;
  projectedRuntimeHours: number | null;
  countedHours: number;
  chargeRatePercentPerHour: number | null;
  minutesToFull: number | null;
  trend: TrendLabel;
  trendPercentPerHourPerShift: number | null;
  /** Drain of each shift, oldest first, at most the last 20. */
  shiftDrains: number[];
}

export const VIEW_SHIFTS = 20;

export function formatBatteryHealth(h: BatteryHealth): BatteryHealthView {
  return {
    status: h.status,
    healthPercent: round(h.healthPercent, 1),
    drainPercentPerHour: round(h.drainPercentPerHour, 2),
    projectedRuntimeHours: round(h.projectedRuntimeHours, 1),
    countedHours: round(h.countedHours, 1) ?? 0,
    chargeRatePercentPerHour: round(h.chargeRatePercentPerHour, 1),
    // Rounded up: "0 minutes" while the battery is still short of full would be wrong.
    minutesToFull: h.minutesToFull === null ? null : Math.ceil(h.minutesToFull - 1e-6),
    trend: h.trend.label,
    trendPercentPerHourPerShift: round(h.trend.slopePercentPerHourPerShift, 2),
    shiftDrains: h.shifts.slice(-VIEW_SHIFTS).map((s) => round(s.drainPercentPerHour, 2) ?? 0),
  };
}

const BARS = '▁▂▃▄▅▆▇█';

/**
 * One bar per value, scaled between the smallest and largest finite value. Non-finite values show
 * as a space so a gap in the series stays visible; when all finite values are equal every bar is
 * the middle one, since there is no spread to show.
 */
export function sparkline(values: readonly number[]): string {
  const finite = values.filter((v) => Number.isFinite(v));
  if (finite.length === 0) return ' '.repeat(values.length);
  // reduce, not Math.min(...): spreading a long series overflows the call stack.
  const lo = finite.reduce((m, v) => (v < m ? v : m), Infinity);
  const hi = finite.reduce((m, v) => (v > m ? v : m), -Infinity);
  const top = BARS.length - 1;
  return values
    .map((v) => {
      if (!Number.isFinite(v)) return ' ';
      if (hi === lo) return BARS[top >> 1];
      return BARS[Math.round(((v - lo) / (hi - lo)) * top)];
    })
    .join('');
}
