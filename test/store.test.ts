import { describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { migrate } from '../src/store/db.js';
import { MIGRATIONS } from '../src/store/schema.js';
import { queueCounts, type QueueCounts } from '../src/store/recordings.js';
import { unitAt, unitHistory } from '../src/store/officers.js';

type Db = InstanceType<typeof Database>;

/** What `dockd status` would say if it counted every row, as it did before the counts table. */
function counted(db: Db): QueueCounts {
  const c: QueueCounts = { pending: 0, active: 0, failed: 0, verified: 0 };
  for (const r of db
    .prepare<[], { status: string; n: number }>('SELECT status, count(*) n FROM recordings GROUP BY status')
    .all()) {
    if (r.status === 'copying') c.active = r.n;
    else if (r.status !== 'deleted') c[r.status as keyof QueueCounts] = r.n;
  }
  return c;
}

let next = 0;
function insert(db: Db, status: string, camera = 'C-1'): string {
  const id = `r${++next}`;
  db.prepare(
    `INSERT INTO recordings (id, camera, source_path, source_id, bytes, status, discovered_at) VALUES (?, ?, ?, ?, 1000, ?, '2026-12-01T00:00:00Z')`,
  ).run(id, camera, `DCIM/${id}.MP4`, `DCIM/${id}.MP4`, status);
  return id;
}

function withCamera(db: Db): Db {
  db.prepare(
    `INSERT INTO cameras (serial, first_seen, last_seen) VALUES ('C-1', '2026-12-01T00:00:00Z', '2026-12-01T00:00:00Z')`,
  ).run();
  return db;
}

describe('queue counts', () => {
  it('counts what a store held before the counts table existed, once it is migrated', () => {
    const db = new Database(':memory:');
    // A store as the release before this one left it.
    for (const [v, sql] of MIGRATIONS.slice(0, 2).entries()) {
      db.exec(sql);
      db.pragma(`user_version = ${v + 1}`);
    }
    withCamera(db);
    for (const s of ['pending', 'pending', 'copying', 'verified', 'verified', 'verified', 'failed', 'deleted'])
      insert(db, s);
    migrate(db);
    expect(queueCounts(db)).toEqual({ pending: 2, active: 1, failed: 1, verified: 3 });
  });

  it('follows every change of a recording the engine, retry and retention make', () => {
    const db = new Database(':memory:');
    migrate(db);
    withCamera(db);
    expect(queueCounts(db)).toEqual({ pending: 0, active: 0, failed: 0, verified: 0 });
    const ids = Array.from({ length: 6 }, () => insert(db, 'pending'));
    const set = (id: string, status: string) =>
      db.prepare('UPDATE recordings SET status = ? WHERE id = ?').run(status, id);
    const steps: Array<() => unknown> = [
      () => set(ids[0]!, 'copying'),
      () => set(ids[0]!, 'verified'),
      () => set(ids[1]!, 'copying'),
      () => set(ids[1]!, 'pending'), // a transient error puts it back
      () => set(ids[2]!, 'failed'),
      () => set(ids[2]!, 'failed'), // the same status again changes nothing
      () => db.prepare('UPDATE recordings SET bytes_done = 500 WHERE id = ?').run(ids[3]), // not a status change
      () => db.prepare("UPDATE recordings SET status = 'pending' WHERE status = 'failed'").run(), // dockd retry --all
      () => db.prepare("UPDATE recordings SET status = 'verified' WHERE status = 'pending'").run(), // many rows at once
      () => set(ids[4]!, 'deleted'), // retention
      () => db.prepare('DELETE FROM recordings WHERE id = ?').run(ids[5]),
    ];
    for (const step of steps) {
      step();
      expect(queueCounts(db)).toEqual(counted(db));
    }
    expect(queueCounts(db)).toEqual({ pending: 0, active: 0, failed: 0, verified: 4 });
  });

  it('rolls the counts back with the change that failed', () => {
    const db = new Database(':memory:');
    migrate(db);
    withCamera(db);
    const id = insert(db, 'pending');
    const attempt = db.transaction(() => {
      db.prepare("UPDATE recordings SET status = 'verified' WHERE id = ?").run(id);
      throw new Error('the copy did not verify');
    });
    expect(attempt).toThrow(/did not verify/);
    expect(queueCounts(db)).toEqual({ pending: 1, active: 0, failed: 0, verified: 0 });
  });
});

describe('unit memberships', () => {
  it('keeps the unit each officer had before the history was kept, from the time it was given', () => {
    const db = new Database(':memory:');
    // A store as the release that knew one unit per officer left it.
    const before = MIGRATIONS.findIndex((sql) => sql.includes('CREATE TABLE unit_memberships'));
    for (const [v, sql] of MIGRATIONS.slice(0, before).entries()) {
      db.exec(sql);
      db.pragma(`user_version = ${v + 1}`);
    }
    db.prepare(
      "INSERT INTO officer_units (officer, unit, since) VALUES ('o-1', 'north', '2026-11-01T00:00:00.000Z')",
    ).run();
    migrate(db);
    const history = unitHistory(db);
    expect(unitAt(history, 'o-1', Date.parse('2026-11-02T00:00:00Z'))).toBe('north');
    expect(unitAt(history, 'o-1', Date.parse('2026-10-31T00:00:00Z'))).toBeNull();
    expect(unitAt(history, 'o-2', Date.parse('2026-11-02T00:00:00Z'))).toBeNull();
  });
});
