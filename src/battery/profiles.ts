/**
 * Battery drain per settings profile: the samples cut at each change of the camera's profile and
 * each stretch judged on its own, so that "after profile winter the drain fell from 12 to 8 %/h"
 * is a figure, not an impression. An interval that straddles a change counts for neither side
 * (the camera sits on the dock when its settings change, so nothing is lost).
 */
import { assessBattery, type BatterySample } from './model.js';

export interface ProfileStart {
  /** Dock clock, ms. */
  from: number;
  profile: string;
}

export interface ProfileDrain {
  /** null: before the dock first gave the camera a profile. */
  profile: string | null;
  /** First and last sample counted under this profile (ms, dock clock). */
  from: number | null;
  to: number | null;
  countedHours: number;
  drainPercentPerHour: number | null;
  /** From a full charge; null when drain is unknown or zero. */
  projectedRuntimeHours: number | null;
}

function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f + 0;
}

/** One entry per profile the samples fall under, in the order the camera first ran them. */
export function drainByProfile(
  samples: readonly BatterySample[],
  starts: readonly ProfileStart[],
  shiftHours: number,
): ProfileDrain[] {
  const sorted = [...starts].sort((a, b) => a.from - b.from);
  const bounds = [{ from: -Infinity, profile: null as string | null }, ...sorted];
  const totals = new Map<string | null, { hours: number; used: number; from: number | null; to: number | null }>();
  bounds.forEach((b, i) => {
    const end = bounds[i + 1]?.from ?? Infinity;
    const stretch = samples.filter((s) => s.at >= b.from && s.at < end);
    if (stretch.length === 0) return;
    const h = assessBattery({ samples: stretch, healthPercent: null, shiftHours });
    const t = totals.get(b.profile) ?? { hours: 0, used: 0, from: null, to: null };
    t.hours += h.countedHours;
    t.used += (h.drainPercentPerHour ?? 0) * h.countedHours;
    // reduce, not Math.min(...): a year of minute samples overflows the call stack when spread.
    const first = stretch.reduce((m, s) => Math.min(m, s.at), Infinity);
    const last = stretch.reduce((m, s) => Math.max(m, s.at), -Infinity);
    t.from = t.from === null ? first : Math.min(t.from, first);
    t.to = t.to === null ? last : Math.max(t.to, last);
    totals.set(b.profile, t);
  });
  return [...totals].map(([profile, t]) => {
    const drain = t.hours > 0 ? t.used / t.hours : null;
    return {
      profile,
      from: t.from,
      to: t.to,
      countedHours: round(t.hours, 1),
      drainPercentPerHour: drain === null ? null : round(drain, 2),
      projectedRuntimeHours: drain !== null && drain > 0 ? round(100 / drain, 1) : null,
    };
  });
}

/** "after profile winter the drain fell from 12 to 8 %/h": the latest change an admin asks about. */
export function profileChangeLine(by: readonly ProfileDrain[]): string | null {
  const known = by.filter((p) => p.drainPercentPerHour !== null);
  const last = known.at(-1);
  const prev = known.at(-2);
  if (!last || !prev || last.profile === null) return null;
  const a = prev.drainPercentPerHour!;
  const b = last.drainPercentPerHour!;
  const verb = b < a ? 'fell' : b > a ? 'rose' : 'stayed';
  return verb === 'stayed'
    ? `after profile ${last.profile} the drain stayed at ${b} %/h`
    : `after profile ${last.profile} the drain ${verb} from ${a} to ${b} %/h`;
}
