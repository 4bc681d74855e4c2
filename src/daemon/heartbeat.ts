import type { Db } from '../store/db.js';

export interface DaemonRow {
  pid: number;
  started_at: string;
  heartbeat_at: string;
  heartbeat_ms: number;
  stopped_at: string | null;
  version: string;
  progress_json: string | null;
}

/** The daemon's liveness in the store: the CLI reads it instead of talking to the process. */
export class Heartbeat {
  private readonly upsert;
  private readonly beatStmt;
  private readonly stopStmt;

  constructor(
    private readonly db: Db,
    private readonly intervalMs: number,
    private readonly version: string,
  ) {
    this.upsert = db.prepare(
      `INSERT INTO daemon (id, pid, started_at, heartbeat_at, heartbeat_ms, stopped_at, version, progress_json)
       VALUES (1, @pid, @now, @now, @ms, NULL, @version, NULL)
       ON CONFLICT(id) DO UPDATE SET pid = @pid, started_at = @now, heartbeat_at = @now, heartbeat_ms = @ms, stopped_at = NULL, version = @version, progress_json = NULL`,
    );
    this.beatStmt = db.prepare('UPDATE daemon SET heartbeat_at = ?, progress_json = ? WHERE id = 1');
    this.stopStmt = db.prepare('UPDATE daemon SET stopped_at = ?, heartbeat_at = ?, progress_json = NULL WHERE id = 1');
  }

  start(): void {
    this.upsert.run({ pid: process.pid, now: new Date().toISOString(), ms: this.intervalMs, version: this.version });
  }

  beat(progress: unknown): void {
    this.beatStmt.run(new Date().toISOString(), JSON.stringify(progress));
  }

  stopped(): void {
    const now = new Date().toISOString();
    this.stopStmt.run(now, now);
  }
}

export function readDaemon(db: Db): DaemonRow | undefined {
  return db.prepare<[], DaemonRow>('SELECT * FROM daemon WHERE id = 1').get();
}

/** Fresh means beaten within three intervals and not marked stopped. */
export function isRunning(row: DaemonRow | undefined, now = Date.now()): boolean {
  if (!row || row.stopped_at) return false;
  return now - Date.parse(row.heartbeat_at) < 3 * row.heartbeat_ms;
}
