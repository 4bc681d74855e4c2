/**
 * The de-escalation figures: the staged procedure (present → display → recording) counted over
 * the cameras' episodes (episodes.ts) in a window [from, to) of true time. Pure.
 *
 * What each figure is counted by:
 * - an activation, its escalation and its durations, by the time of its display-on;
 * - a recording, by the time it started;
 * - a shift, by the time it began; its hours only as far as they lie in the window.
 * Grouped figures (by week, camera, unit, officer) follow the same rule: an activation belongs to
 * the group of its display-on, a shift to the group of its start.
 */
import { cameraEpisodes, type CameraEpisodes, type CameraLog } from './episodes.js';

export { cameraEpisodes, type CameraEpisodes, type CameraLog } from './episodes.js';

export interface StageWindow {
  /** ms, inclusive; null: from the beginning. */
  from: number | null;
  /** ms, exclusive; null: to the end. */
  to: number | null;
}

export interface Spread {
  count: number;
  medianSeconds: number | null;
  p90Seconds: number | null;
}

export interface StageFigures {
  /** Cameras whose log has anything counted here. */
  cameras: number;
  displayActivations: number;
  escalated: number;
  /** escalated / displayActivations; null when there are no activations. */
  escalationRate: number | null;
  directRecordings: number;
  /** Every recording start: escalations, direct recordings and further recordings in one display-on. */
  recordings: number;
  shifts: number;
  shiftHours: number;
  activationsPer100ShiftHours: number | null;
  recordingsPer100ShiftHours: number | null;
  /** From display-on to the recording that escalated it. */
  displayToRecording: Spread;
  /** How long a display-on that never recorded lasted. */
  displayOnly: Spread;
}

const HOUR = 3_600_000;
const WEEK = 7 * 24 * HOUR;

const inside = (w: StageWindow, at: number) => (w.from === null || at >= w.from) && (w.to === null || at < w.to);

/** Linear interpolation between closest ranks (the spreadsheet PERCENTILE), over sorted values. */
export function percentile(sorted: readonly number[], p: number): number | null {
  if (!sorted.length) return null;
  const pos = (sorted.length - 1) * p;
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

function spread(ms: number[]): Spread {
  const s = ms.map((v) => v / 1000).sort((a, b) => a - b);
  return { count: s.length, medianSeconds: percentile(s, 0.5), p90Seconds: percentile(s, 0.9) };
}

const per100 = (n: number, hours: number) => (hours > 0 ? (n / hours) * 100 : null);

/** The figures of the episodes that fall in the window. */
export function stageFigures(all: readonly CameraEpisodes[], w: StageWindow = { from: null, to: null }): StageFigures {
  const cameras = new Set<string>();
  let activations = 0;
  let escalated = 0;
  let direct = 0;
  let recordings = 0;
  let shifts = 0;
  let shiftMs = 0;
  const toRecording: number[] = [];
  const displayOnly: number[] = [];
  for (const ep of all) {
    for (const a of ep.activations) {
      if (!inside(w, a.at)) continue;
      cameras.add(ep.camera);
      activations++;
      if (a.escalatedAfterMs !== null) {
        escalated++;
        toRecording.push(a.escalatedAfterMs);
      }
      if (a.displayOnlyMs !== null) displayOnly.push(a.displayOnlyMs);
    }
    for (const r of ep.recordings) {
      if (!inside(w, r.at)) continue;
      cameras.add(ep.camera);
      recordings++;
      if (r.direct) direct++;
    }
    for (const s of ep.shifts) {
      const from = Math.max(s.from, w.from ?? -Infinity);
      const to = Math.min(s.to, w.to ?? Infinity);
      if (inside(w, s.from)) {
        shifts++;
        cameras.add(ep.camera);
      }
      if (to > from) shiftMs += to - from;
    }
  }
  const shiftHours = shiftMs / HOUR;
  return {
    cameras: cameras.size,
    displayActivations: activations,
    escalated,
    escalationRate: activations ? escalated / activations : null,
    directRecordings: direct,
    recordings,
    shifts,
    shiftHours,
    activationsPer100ShiftHours: per100(activations, shiftHours),
    recordingsPer100ShiftHours: per100(recordings, shiftHours),
    displayToRecording: spread(toRecording),
    displayOnly: spread(displayOnly),
  };
}

/** ISO 8601 week of a true time, in UTC: "2026-W49". */
export function isoWeek(ms: number): string {
  const d = new Date(ms);
  const day = (d.getUTCDay() + 6) % 7;
  const thursday = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() - day + 3);
  const year = new Date(thursday).getUTCFullYear();
  const week = 1 + Math.floor((thursday - Date.UTC(year, 0, 1)) / (7 * 24 * HOUR));
  return `${year}-W${String(week).padStart(2, '0')}`;
}

/** 1970-01-05, the first Monday of the epoch. */
const FIRST_MONDAY = 4 * 24 * HOUR;

/** Monday 00:00 UTC of the week holding `ms`: arithmetic, as it runs once per event. */
export function weekStart(ms: number): number {
  const into = (((ms - FIRST_MONDAY) % WEEK) + WEEK) % WEEK;
  return ms - into;
}

export interface WeekFigures extends StageFigures {
  week: string;
  from: string;
  to: string;
}

/** The figures of each ISO week that has anything in the window, oldest first. */
export function weeklyFigures(
  all: readonly CameraEpisodes[],
  w: StageWindow = { from: null, to: null },
): WeekFigures[] {
  // One pass sorts everything into its weeks; a shift goes into every week it has hours in.
  const weeks = new Map<number, Map<string, CameraEpisodes>>();
  const slot = (start: number, camera: string): CameraEpisodes => {
    let g = weeks.get(start);
    if (!g) weeks.set(start, (g = new Map()));
    let ep = g.get(camera);
    if (!ep) g.set(camera, (ep = { camera, activations: [], recordings: [], shifts: [] }));
    return ep;
  };
  for (const ep of all) {
    for (const a of ep.activations) if (inside(w, a.at)) slot(weekStart(a.at), ep.camera).activations.push(a);
    for (const r of ep.recordings) if (inside(w, r.at)) slot(weekStart(r.at), ep.camera).recordings.push(r);
    for (const s of ep.shifts) {
      for (let start = weekStart(s.from); start < s.to; start += WEEK) slot(start, ep.camera).shifts.push(s);
    }
  }
  return [...weeks]
    .sort((a, b) => a[0] - b[0])
    .map(([start, eps]) => {
      const win = { from: Math.max(start, w.from ?? -Infinity), to: Math.min(start + WEEK, w.to ?? Infinity) };
      const f = stageFigures([...eps.values()], win);
      return {
        week: isoWeek(start),
        from: new Date(start).toISOString(),
        to: new Date(start + WEEK).toISOString(),
        ...f,
      };
    })
    .filter((f) => f.shifts > 0 || f.shiftHours > 0 || f.displayActivations > 0 || f.recordings > 0);
}

/** Every camera's episodes from its log. */
export function episodesOf(logs: readonly CameraLog[]): CameraEpisodes[] {
  return logs.map(cameraEpisodes);
}

/** Upper bounds (seconds) of the display-to-recording histogram; the last bucket is open. */
export const DELAY_BUCKETS_S = [15, 30, 60, 120, 300, 600];

export interface DelayBucket {
  label: string;
  /** Exclusive upper bound in seconds; null for the open last bucket. */
  belowSeconds: number | null;
  count: number;
}

/** How long escalated activations in the window took from display-on to recording. */
export function delayHistogram(
  all: readonly CameraEpisodes[],
  w: StageWindow = { from: null, to: null },
): DelayBucket[] {
  const label = (s: number) => (s < 60 ? `${s} s` : `${s / 60} min`);
  const buckets: DelayBucket[] = DELAY_BUCKETS_S.map((b, i) => ({
    label: `${i ? label(DELAY_BUCKETS_S[i - 1]!) : '0'}–${label(b)}`,
    belowSeconds: b,
    count: 0,
  }));
  buckets.push({ label: `≥ ${label(DELAY_BUCKETS_S.at(-1)!)}`, belowSeconds: null, count: 0 });
  for (const ep of all) {
    for (const a of ep.activations) {
      if (a.escalatedAfterMs === null || !inside(w, a.at)) continue;
      const i = DELAY_BUCKETS_S.findIndex((b) => a.escalatedAfterMs! < b * 1000);
      buckets[i === -1 ? buckets.length - 1 : i]!.count++;
    }
  }
  return buckets;
}
