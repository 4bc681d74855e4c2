/**
 * The daemon's liveness in the store (the one-row `daemon` table): the daemon writes it, and the
 * CLI, the report, doctor and the fleet document read it instead of talking to the process.
 */
import type Database from 'better-sqlite3';
import type { Db } from './db.js';

export interface DaemonRow {
  pid: number;
  started_at: string;
  heartbeat_at: string;
  heartbeat_ms: number;
  stopped_at: string | null;
  version: string;
  progress_json: string | null;
}

interface Statements {
  start: Database.Statement;
  beat: Database.Statement;
  stop: Database.Statement;
  verified: Database.Statement<[string], { visit: number; verifiedBytes: number }>;
}

/** Prepared once per connection: a beat is written every interval for as long as the daemon runs. */
const prepared = new WeakMap<Db, Statements>();

function statements(db: Db): Statements {
  let s = prepared.get(db);
  if (!s) {
    s = {
      start: db.prepare(
        `INSERT INTO daemon (id, pid, started_at, heartbeat_at, heartbeat_ms, stopped_at, version, progress_json)
         VALUES (1, @pid, @now, @now, @ms, NULL, @version, NULL)
         ON CONFLICT(id) DO UPDATE SET pid = @pid, started_at = @now, heartbeat_at = @now, heartbeat_ms = @ms, stopped_at = NULL, version = @version, progress_json = NULL`,
      ),
      beat: db.prepare('UPDATE daemon SET heartbeat_at = ?, progress_json = ? WHERE id = 1'),
      stop: db.prepare('UPDATE daemon SET stopped_at = ?, heartbeat_at = ?, progress_json = NULL WHERE id = 1'),
      verified: db.prepare<[string], { visit: number; verifiedBytes: number }>(
        `SELECT c.visit, coalesce(sum(r.bytes), 0) verifiedBytes FROM cameras c
         LEFT JOIN recordings r ON r.camera = c.serial AND r.seen_visit = c.visit AND r.status = 'verified' WHERE c.serial = ?`,
      ),
    };
    prepared.set(db, s);
  }
  return s;
}

/** A daemon started: this process, beating every `intervalMs`, not stopped, no progress yet. */
export function recordStart(db: Db, d: { pid: number; intervalMs: number; version: string }): void {
  statements(db).start.run({ pid: d.pid, now: new Date().toISOString(), ms: d.intervalMs, version: d.version });
}

/** One beat: the daemon is alive now, and this is what it is doing (shown by `dockd status`). */
export function recordBeat(db: Db, progress: unknown): void {
  statements(db).beat.run(new Date().toISOString(), JSON.stringify(progress));
}

/** The daemon stopped on purpose: status shows it as not running at once, not after three intervals. */
export function recordStop(db: Db): void {
  const now = new Date().toISOString();
  statements(db).stop.run(now, now);
}

/** The camera's current visit and the bytes verified in it, for the progress a beat carries. */
export function verifiedThisVisit(db: Db, serial: string): { visit: number; verifiedBytes: number } | undefined {
  return statements(db).verified.get(serial);
}

export function readDaemon(db: Db): DaemonRow | undefined {
  return db.prepare<[], DaemonRow>('SELECT * FROM daemon WHERE id = 1').get();
}

/** Fresh means beaten within three intervals and not marked stopped. */
export function isRunning(row: DaemonRow | undefined, now = Date.now()): boolean {
  if (!row || row.stopped_at) return false;
  return now - Date.parse(row.heartbeat_at) < 3 * row.heartbeat_ms;
}
