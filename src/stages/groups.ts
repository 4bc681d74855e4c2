/**
 * Splitting the episodes into groups (camera, unit, officer) without letting a small group
 * single anybody out: a group with fewer shifts than the minimum is merged into "other", and
 * "other" itself, when still that small, is withheld.
 */
import type { CameraEpisodes } from './episodes.js';
import { stageFigures, type StageFigures, type StageWindow } from './model.js';

export const OTHER = 'other';

/** The group of what happened on `camera` at `at`; null: nobody (an unassigned camera). */
export type GroupOf = (camera: string, at: number) => string | null;

export type GroupFigures =
  | ({ group: string; withheld?: undefined } & StageFigures)
  /** "other" with fewer shifts than the minimum: only its shift count is given. */
  | { group: string; withheld: true; shifts: number };

function split(all: readonly CameraEpisodes[], groupOf: GroupOf, unknown: string): Map<string, CameraEpisodes[]> {
  const groups = new Map<string, Map<string, CameraEpisodes>>();
  const slot = (group: string, camera: string): CameraEpisodes => {
    let g = groups.get(group);
    if (!g) groups.set(group, (g = new Map()));
    let ep = g.get(camera);
    if (!ep) g.set(camera, (ep = { camera, activations: [], recordings: [], shifts: [] }));
    return ep;
  };
  const key = (camera: string, at: number) => groupOf(camera, at) ?? unknown;
  for (const ep of all) {
    for (const a of ep.activations) slot(key(ep.camera, a.at), ep.camera).activations.push(a);
    for (const r of ep.recordings) slot(key(ep.camera, r.at), ep.camera).recordings.push(r);
    for (const s of ep.shifts) slot(key(ep.camera, s.from), ep.camera).shifts.push(s);
  }
  return new Map([...groups].map(([k, v]) => [k, [...v.values()]]));
}

export function groupFigures(
  all: readonly CameraEpisodes[],
  w: StageWindow,
  groupOf: GroupOf,
  opts: { minShifts: number; unknown?: string },
): GroupFigures[] {
  const out: GroupFigures[] = [];
  const other: CameraEpisodes[] = [];
  for (const [group, eps] of split(all, groupOf, opts.unknown ?? '(none)')) {
    const f = stageFigures(eps, w);
    if (f.shifts === 0 && f.displayActivations === 0 && f.recordings === 0) continue;
    if (f.shifts < opts.minShifts || group === OTHER) other.push(...eps);
    else out.push({ group, ...f });
  }
  out.sort((a, b) => a.group.localeCompare(b.group));
  if (other.length) {
    const f = stageFigures(other, w);
    out.push(f.shifts < opts.minShifts ? { group: OTHER, withheld: true, shifts: f.shifts } : { group: OTHER, ...f });
  }
  return out;
}
