import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import Database from 'better-sqlite3';
import { canonicalJson, checkChain, eventHash, GENESIS_HASH } from '../src/store/chain.js';
import { CustodyLog } from '../src/store/custody-log.js';
import { migrate } from '../src/store/db.js';

function store() {
  const db = new Database(':memory:');
  migrate(db);
  return db;
}

describe('custody chain', () => {
  it('canonical JSON sorts keys at every depth and has no whitespace', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: 'x' } })).toBe(
      '{"a":{"c":"x","d":[3,{"y":2,"z":1}]},"b":1}',
    );
    expect(canonicalJson({ a: undefined, b: null })).toBe('{"b":null}');
  });

  it('hashes prevHash, a newline and the canonical event, starting from 64 zeros', () => {
    const db = store();
    const log = new CustodyLog(db);
    const e = log.record({
      type: 'camera.docked',
      camera: 'DU-1',
      details: { slot: 's1' },
      at: new Date('2026-01-01T00:00:00Z'),
    });
    expect(e.prevHash).toBe(GENESIS_HASH);
    const body = {
      seq: 1,
      at: '2026-01-01T00:00:00.000Z',
      type: 'camera.docked',
      camera: 'DU-1',
      recording: null,
      sha256: null,
      actor: 'dockd',
      details: { slot: 's1' },
      prevHash: GENESIS_HASH,
    };
    const expected = createHash('sha256')
      .update(GENESIS_HASH + '\n' + canonicalJson(body))
      .digest('hex');
    expect(e.hash).toBe(expected);
    const e2 = log.record({ type: 'camera.undocked', camera: 'DU-1' });
    expect(e2.prevHash).toBe(e.hash);
    expect(e2.seq).toBe(2);
    expect(checkChain(log.all())).toMatchObject({ ok: true, events: 2, firstBadSeq: null });
  });

  it('refuses UPDATE and DELETE through triggers', () => {
    const db = store();
    new CustodyLog(db).record({ type: 'x' });
    expect(() => db.prepare("UPDATE custody_events SET type = 'y'").run()).toThrow(/append-only/);
    expect(() => db.prepare('DELETE FROM custody_events').run()).toThrow(/append-only/);
  });

  it('refuses an append outside a transaction', () => {
    expect(() => new CustodyLog(store()).append({ type: 'x' })).toThrow(/inside a transaction/);
  });

  it('finds an edited row, a deleted row and a re-hashed forgery after the triggers are dropped', () => {
    const make = () => {
      const db = store();
      const log = new CustodyLog(db);
      for (let i = 0; i < 5; i++) log.record({ type: 'offload.verified', recording: `r${i}`, sha256: 'a'.repeat(64) });
      db.exec('DROP TRIGGER custody_events_no_update; DROP TRIGGER custody_events_no_delete;');
      return { db, log };
    };
    let { db, log } = make();
    db.prepare('UPDATE custody_events SET sha256 = ? WHERE seq = 3').run('b'.repeat(64));
    expect(checkChain(log.all())).toMatchObject({ ok: false, firstBadSeq: 3 });

    ({ db, log } = make());
    db.prepare('DELETE FROM custody_events WHERE seq = 2').run();
    expect(checkChain(log.all())).toMatchObject({ ok: false, firstBadSeq: 3 });

    // A forger who recomputes the edited row's own hash still breaks the next link.
    ({ db, log } = make());
    const row = [...log.all()][2]!;
    const forged = { ...row, details: { forged: true } };
    db.prepare('UPDATE custody_events SET details = ?, hash = ? WHERE seq = 3').run(
      JSON.stringify(forged.details),
      eventHash(forged),
    );
    expect(checkChain(log.all())).toMatchObject({ ok: false, firstBadSeq: 4 });
  });
});
