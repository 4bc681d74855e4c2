/**
 * The offload engine's scheduling, driven through a scripted camera session: which work may
 * overlap on a camera's link and how many cameras are read at once.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { defaultConfig } from '../src/config.js';
import { CustodyLog } from '../src/store/custody-log.js';
import { PlainArchive } from '../src/archive/plain.js';
import { Transitions } from '../src/store/transitions.js';
import { IngestEngine } from '../src/ingest/engine.js';
import { Planner } from '../src/ingest/planner.js';
import { openStore, type Db } from '../src/store/db.js';
import { contentOf, ScriptedCamera } from './support/scripted-camera.js';

const log = pino({ level: 'silent' });
/** Waits for `event`, or gives up after 3 s and says so: a scheduling bug must fail, not hang. */
async function cameOrGaveUp(event: Promise<void>): Promise<boolean> {
  let gaveUp = false;
  await Promise.race([event, new Promise<void>((r) => setTimeout(r, 3000)).then(() => (gaveUp = true))]);
  return gaveUp;
}

let dirs: string[] = [];
let db: Db | null = null;
let engine: IngestEngine | null = null;
let archive: PlainArchive | null = null;
afterEach(async () => {
  await engine?.stop();
  await archive?.close();
  db?.close();
  engine = null;
  archive = null;
  db = null;
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs = [];
});

async function run(
  cameras: ScriptedCamera[],
  ingest: Partial<ReturnType<typeof defaultConfig>['ingest']>,
  archiveFor = (dataDir: string) => new PlainArchive({ dataDir }),
) {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'dockd-engine-'));
  dirs.push(dataDir);
  db = openStore(dataDir);
  const custody = new CustodyLog(db);
  const cfg = { ...defaultConfig().ingest, minFreeBytes: 0, ...ingest };
  const cleared = new Set<string>();
  let onCleared = () => {};
  archive = archiveFor(dataDir);
  engine = new IngestEngine({
    transitions: new Transitions(db, custody),
    archive: archive,
    cfg: cfg,
    log: log,
    events: {
      deviceGone: () => {},
      relist: () => {},
      cleared: (serial) => {
        cleared.add(serial);
        onCleared();
      },
    },
  });
  const planner = new Planner(db, custody, log);
  const now = new Date().toISOString();
  for (const cam of cameras) {
    db.prepare('INSERT INTO cameras (serial, first_seen, last_seen, docked, visit) VALUES (?, ?, ?, 1, 1)').run(
      cam.serial,
      now,
      now,
    );
    await planner.plan(cam.serial, 1, cam);
  }
  const allCleared = new Promise<void>((resolve) => {
    onCleared = () => {
      if (cleared.size === cameras.length) resolve();
    };
  });
  for (const cam of cameras) engine.attach(cam.serial, 1, cam);
  await allCleared;
  return db
    .prepare<[], { camera: string; source_path: string; status: string; sha256: string; deleted_from_camera: number }>(
      'SELECT camera, source_path, status, sha256, deleted_from_camera FROM recordings ORDER BY camera, source_path',
    )
    .all();
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('offload engine scheduling', () => {
  it('deletes a verified recording from the camera while the next one transfers, not between them', async () => {
    // The deletion of A finishes only once C's transfer has begun. B's transfer holds the link
    // while A is verified; an engine that gave the camera's single link to
    // the deletion of A next, before C, would wait here for ever.
    let heldUp = false;
    const cam = new ScriptedCamera('E-1', ['A.MP4', 'B.MP4', 'C.MP4'], {
      beforeData: (id) => new Promise((r) => setTimeout(r, id === 'B.MP4' ? 300 : 0)),
      beforeDelete: async (id, c) => {
        if (id === 'A.MP4') heldUp = await cameOrGaveUp(c.readStarted('C.MP4'));
      },
    });
    const rows = await run([cam], { perCamera: 1, concurrency: 4 });
    expect(heldUp, 'the deletion of A held the link that C needed').toBe(false);
    expect(rows.map((r) => [r.source_path, r.status, r.deleted_from_camera])).toEqual([
      ['A.MP4', 'verified', 1],
      ['B.MP4', 'verified', 1],
      ['C.MP4', 'verified', 1],
    ]);
    for (const r of rows) expect(r.sha256).toBe(sha(contentOf('E-1', r.source_path)));
    expect(cam.deleted.sort()).toEqual(['A.MP4', 'B.MP4', 'C.MP4']);
  });

  it('reads from at most ingest.concurrency cameras at once, and from all of them in turn', async () => {
    let peak = 0;
    const all: ScriptedCamera[] = [];
    const beforeData = async () => {
      peak = Math.max(
        peak,
        all.reduce((n, c) => n + c.active, 0),
      );
      await new Promise((r) => setTimeout(r, 30));
    };
    for (let i = 1; i <= 4; i++) all.push(new ScriptedCamera(`C-${i}`, ['1.MP4', '2.MP4', '3.MP4'], { beforeData }));
    const rows = await run(all, { perCamera: 1, concurrency: 2 });
    expect(rows).toHaveLength(12);
    expect(rows.every((r) => r.status === 'verified' && r.deleted_from_camera === 1)).toBe(true);
    expect(peak).toBe(2);
  });

  it('reads one camera over ingest.perCamera links at most', async () => {
    let peak = 0;
    const cam: ScriptedCamera = new ScriptedCamera('P-1', ['1.MP4', '2.MP4', '3.MP4', '4.MP4', '5.MP4'], {
      beforeData: async (_id, c) => {
        peak = Math.max(peak, c.active);
        await new Promise((r) => setTimeout(r, 30));
      },
    });
    const rows = await run([cam], { perCamera: 2, concurrency: 8 });
    expect(rows.every((r) => r.status === 'verified')).toBe(true);
    expect(peak).toBe(2);
  });

  it('frees a concurrency slot once a copy has read its camera, before that copy is verified and committed', async () => {
    // One slot, two cameras: A's copy is committed only once B's read has begun. An engine that
    // held the slot until A was committed would keep B waiting here for ever.
    const a = new ScriptedCamera('S-A', ['A.MP4']);
    const b = new ScriptedCamera('S-B', ['B.MP4']);
    let heldUp = false;
    class SlowToCommit extends PlainArchive {
      override async commit(rec: Parameters<PlainArchive['commit']>[0]): Promise<string> {
        if (rec.camera === 'S-A') heldUp = await cameOrGaveUp(b.readStarted('B.MP4'));
        return super.commit(rec);
      }
    }
    const rows = await run([a, b], { perCamera: 1, concurrency: 1 }, (dataDir) => new SlowToCommit({ dataDir }));
    expect(heldUp, "A's verification held the only slot that B needed").toBe(false);
    expect(rows.map((r) => [r.camera, r.status, r.deleted_from_camera])).toEqual([
      ['S-A', 'verified', 1],
      ['S-B', 'verified', 1],
    ]);
  });
});
