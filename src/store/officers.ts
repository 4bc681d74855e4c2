/**
 * Which officer held a camera when: assignments with a start and an open or closed end. A
 * recording belongs to the officer holding the camera at its recording time (dock clock).
 */
import type { Db } from './db.js';
import type { CustodyLog } from './custody-log.js';

export interface Assignment {
  camera: string;
  officer: string;
  from: string;
  to: string | null;
}

const officerQueries = new WeakMap<
  Db,
  import('better-sqlite3').Statement<[string, string, string], { officer: string }>
>();

export function officerAt(db: Db, camera: string, atIso: string): string | null {
  let q = officerQueries.get(db);
  if (!q) {
    q = db.prepare<[string, string, string], { officer: string }>(
      'SELECT officer FROM assignments WHERE camera = ? AND from_at <= ? AND (to_at IS NULL OR to_at > ?) ORDER BY from_at DESC, id DESC LIMIT 1',
    );
    officerQueries.set(db, q);
  }
  return q.get(camera, atIso, atIso)?.officer ?? null;
}

/** SQL giving a recording row `r` its officer, for queries that list many recordings. */
export const OFFICER_SQL = `(SELECT a.officer FROM assignments a WHERE a.camera = r.camera
   AND a.from_at <= coalesce(r.recorded_at, r.discovered_at)
   AND (a.to_at IS NULL OR a.to_at > coalesce(r.recorded_at, r.discovered_at))
   ORDER BY a.from_at DESC, a.id DESC LIMIT 1)`;

/**
 * `unit`, when given, becomes the officer's unit from `from` on; what the officer did before
 * stays with the unit they were in then.
 */
export function assign(db: Db, custody: CustodyLog, camera: string, officer: string, from: Date, unit?: string): void {
  const at = from.toISOString();
  db.transaction(() => {
    // An open assignment ends where the new one starts; the camera has one holder at a time.
    db.prepare('UPDATE assignments SET to_at = ? WHERE camera = ? AND to_at IS NULL AND from_at <= ?').run(
      at,
      camera,
      at,
    );
    db.prepare('INSERT INTO assignments (camera, officer, from_at, to_at) VALUES (?, ?, ?, NULL)').run(
      camera,
      officer,
      at,
    );
    if (unit !== undefined) {
      // The same start given again corrects that membership rather than adding a second one.
      db.prepare('DELETE FROM unit_memberships WHERE officer = ? AND from_at = ?').run(officer, at);
      db.prepare('INSERT INTO unit_memberships (officer, unit, from_at) VALUES (?, ?, ?)').run(officer, unit, at);
    }
    custody.append({
      type: 'camera.assigned',
      camera,
      details: unit === undefined ? { officer, from: at } : { officer, from: at, unit },
    });
  }).immediate();
}

/** An officer's units, newest first: each from its start (ms) until the next one's. */
export type UnitHistory = Map<string, { unit: string; from: number }[]>;

export function unitHistory(db: Db): UnitHistory {
  const history: UnitHistory = new Map();
  const rows = db
    .prepare<[], { officer: string; unit: string; from_at: string }>(
      'SELECT officer, unit, from_at FROM unit_memberships ORDER BY from_at DESC, id DESC',
    )
    .all();
  for (const r of rows) {
    const list = history.get(r.officer) ?? [];
    list.push({ unit: r.unit, from: Date.parse(r.from_at) });
    history.set(r.officer, list);
  }
  return history;
}

/** The officer's unit at `at` (ms), or null before the first `--unit` given for them. */
export function unitAt(history: UnitHistory, officer: string, at: number): string | null {
  return history.get(officer)?.find((m) => m.from <= at)?.unit ?? null;
}

export function unassign(db: Db, custody: CustodyLog, camera: string, from: Date): number {
  const at = from.toISOString();
  return db
    .transaction(() => {
      const ended = db
        .prepare('UPDATE assignments SET to_at = ? WHERE camera = ? AND to_at IS NULL AND from_at <= ?')
        .run(at, camera, at).changes;
      if (ended) custody.append({ type: 'camera.unassigned', camera, details: { from: at } });
      return ended;
    })
    .immediate();
}

export function assignments(db: Db, camera?: string): Assignment[] {
  const rows = db
    .prepare<string[], { camera: string; officer: string; from_at: string; to_at: string | null }>(
      `SELECT camera, officer, from_at, to_at FROM assignments ${camera ? 'WHERE camera = ?' : ''} ORDER BY camera, from_at`,
    )
    .all(...(camera ? [camera] : []));
  return rows.map((r) => ({ camera: r.camera, officer: r.officer, from: r.from_at, to: r.to_at }));
}

/** Every assignment, newest first: who held which camera from when to when (null: still). */
export function assignmentsNewestFirst(
  db: Db,
): { camera: string; officer: string; from_at: string; to_at: string | null }[] {
  return db
    .prepare<[], { camera: string; officer: string; from_at: string; to_at: string | null }>(
      'SELECT camera, officer, from_at, to_at FROM assignments ORDER BY from_at DESC, id DESC',
    )
    .all();
}
