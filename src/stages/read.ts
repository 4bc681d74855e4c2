/**
 * The cameras' stored event logs and dockings, read for the stage model, and the figures
 * `dockd stages` prints. Reads only.
 */
import type { Db } from '../store/db.js';
import { cameraSerials } from '../store/cameras.js';
import { assignmentsNewestFirst, unitAt, unitHistory } from '../store/officers.js';
import { dockingEvents } from '../store/custody-log.js';
import { cameraEpisodes, type CameraEpisodes } from './episodes.js';
import { groupFigures, type GroupFigures, type GroupOf } from './groups.js';
import {
  delayHistogram,
  stageFigures,
  weeklyFigures,
  type DelayBucket,
  type StageFigures,
  type StageWindow,
  type WeekFigures,
} from './model.js';

/**
 * How far outside the window the logs are read: an activation or shift that began before `from`
 * needs its display-on or power-on to be understood, and no shift lasts two days.
 */
const CONTEXT_MS = 2 * 24 * 3_600_000;

/** The entry types the stage model reads; any other type is read as one it ignores. */
const TYPES = ['power.on', 'power.off', 'display.on', 'display.off', 'recording.start', 'recording.stop'];
const TYPE_CODE = `CASE type ${TYPES.map((t, i) => `WHEN '${t}' THEN ${i}`).join(' ')} ELSE ${TYPES.length} END`;

export type StagesBy = 'week' | 'camera' | 'unit' | 'officer';

export interface StagesJson extends StageFigures {
  from: string | null;
  to: string | null;
  /** Cameras that handed no event log at all: no data, which is not zero activations. */
  camerasWithoutData: number;
  noData: string[];
  weeks: WeekFigures[];
  by?: StagesBy;
  groups?: Array<GroupFigures | WeekFigures>;
  /** Only with `delays`: how long escalations took, bucketed (the report's histogram). */
  delays?: DelayBucket[];
}

/**
 * Every camera's episodes, one camera at a time: its log is read, read as episodes and let go,
 * so that only the episodes of 100,000 events stay in memory, not the events.
 */
export function readEpisodes(db: Db, w: StageWindow): { episodes: CameraEpisodes[]; noData: string[] } {
  const lo = w.from === null ? -Number.MAX_SAFE_INTEGER : w.from - CONTEXT_MS;
  const hi = w.to === null ? Number.MAX_SAFE_INTEGER : w.to + CONTEXT_MS;
  const dockings = new Map<string, { dockedAt: number[]; undockedAt: number[] }>();
  for (const [camera, iso, type] of dockingEvents(db)) {
    const at = Date.parse(iso);
    if (!(at >= lo && at < hi)) continue;
    let d = dockings.get(camera);
    if (!d) dockings.set(camera, (d = { dockedAt: [], undockedAt: [] }));
    (type === 'camera.docked' ? d.dockedAt : d.undockedAt).push(at);
  }
  const withLog = db
    .prepare<[], string>('SELECT DISTINCT camera FROM camera_events')
    .pluck()
    .all() as unknown as string[];
  // Along the (camera, at) index, the type as a number: a string per row costs more than the query.
  const rows = db
    .prepare<[string, number, number], [number, number]>(
      `SELECT at, ${TYPE_CODE} FROM camera_events WHERE camera = ? AND at >= ? AND at < ? ORDER BY at`,
    )
    .raw();
  const episodes: CameraEpisodes[] = [];
  for (const camera of withLog) {
    const got = rows.all(camera, lo, hi);
    if (!got.length) continue;
    const entries = got.map(([at, code]) => ({ at, type: TYPES[code] ?? 'unknown' }));
    episodes.push(cameraEpisodes({ camera, entries, ...dockings.get(camera) }));
  }
  const has = new Set(withLog);
  const noData = cameraSerials(db).filter((c) => !has.has(c));
  return { episodes, noData };
}

interface Holding {
  camera: string;
  officer: string;
  from: number;
  to: number;
}

/** Who held a camera when, from `dockd assign`; the unit they were in then, from `dockd assign --unit`. */
function holderOf(db: Db, by: 'officer' | 'unit'): GroupOf {
  const rows = assignmentsNewestFirst(db);
  const byCamera = new Map<string, Holding[]>();
  for (const r of rows) {
    const list = byCamera.get(r.camera) ?? [];
    list.push({
      camera: r.camera,
      officer: r.officer,
      from: Date.parse(r.from_at),
      to: r.to_at === null ? Infinity : Date.parse(r.to_at),
    });
    byCamera.set(r.camera, list);
  }
  const units = by === 'unit' ? unitHistory(db) : null;
  return (camera, at) => {
    const officer = byCamera.get(camera)?.find((h) => h.from <= at && at < h.to)?.officer;
    if (officer === undefined) return null;
    return units ? unitAt(units, officer, at) : officer;
  };
}

export interface StagesQuery extends StageWindow {
  by?: StagesBy;
  minGroupSize: number;
  delays?: boolean;
}

export function stagesOf(db: Db, q: StagesQuery): StagesJson {
  const w = { from: q.from, to: q.to };
  const { episodes, noData } = readEpisodes(db, w);
  const total = stageFigures(episodes, w);
  const weeks = weeklyFigures(episodes, w);
  const out: StagesJson = {
    ...extent(episodes, w),
    ...total,
    camerasWithoutData: noData.length,
    noData,
    weeks,
  };
  if (q.delays) out.delays = delayHistogram(episodes, w);
  if (q.by === 'week') return { ...out, by: 'week', groups: weeks };
  if (q.by) {
    const groupOf: GroupOf = q.by === 'camera' ? (camera) => camera : holderOf(db, q.by);
    out.by = q.by;
    out.groups = groupFigures(episodes, w, groupOf, {
      minShifts: q.minGroupSize,
      unknown: q.by === 'camera' ? undefined : `(no ${q.by})`,
    });
  }
  return out;
}

/** The window asked for; where it is open, what the logs cover. */
function extent(episodes: readonly CameraEpisodes[], w: StageWindow): { from: string | null; to: string | null } {
  let first = Infinity;
  let last = -Infinity;
  const see = (t: number) => {
    if ((w.from === null || t >= w.from) && (w.to === null || t < w.to)) {
      if (t < first) first = t;
      if (t > last) last = t;
    }
  };
  for (const ep of episodes) {
    for (const a of ep.activations) see(a.at);
    for (const r of ep.recordings) see(r.at);
    for (const s of ep.shifts) {
      see(s.from);
      see(s.to);
    }
  }
  const iso = (ms: number | null, fallback: number) =>
    ms !== null ? new Date(ms).toISOString() : Number.isFinite(fallback) ? new Date(fallback).toISOString() : null;
  return { from: iso(w.from, first), to: iso(w.to, last + 1) };
}
