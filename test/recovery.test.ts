/**
 * Start-up recovery after an unclean stop, on a store and archive left as a crash leaves them:
 * what it puts right, and that the counts it reports (the `daemon.recovered` line IT reads) are
 * what it found, not what it looked at.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PlainArchive } from '../src/archive/plain.js';
import { recover } from '../src/ingest/recovery.js';
import { getRecording } from '../src/store/recordings.js';
import { storeWithCamera, verification, type TestStore } from './support/store.js';

let store: TestStore;
let archive: PlainArchive;

beforeEach(() => {
  store = storeWithCamera();
  archive = new PlainArchive({ dataDir: store.dir });
});

afterEach(async () => {
  await archive.close();
  store.close();
});

describe('start-up recovery', () => {
  it('removes only archive files a crash left uncommitted, resets their copies and drops orphan staging, and counts each', async () => {
    const { db, custody, tx } = store;
    const now = new Date().toISOString();
    for (const [i, id] of ['renamed', 'midway', 'done'].entries()) {
      const f = { path: `DCIM/${i}.MP4`, id: `DCIM/${i}.MP4`, identity: `10:${i}`, bytes: 10 };
      tx.discover('CAM1', 1, { ...f, recordingId: id, modifiedAt: null, recordedAt: null }, now);
      tx.markCopying(getRecording(db, id)!, 1, 0);
    }
    // 'renamed' reached its final name before the crash, 'midway' was still in staging.
    const renamed = getRecording(db, 'renamed')!;
    const finalPath = archive.pathFor({
      id: 'renamed',
      camera: 'CAM1',
      sourcePath: renamed.source_path,
      discoveredAt: renamed.discovered_at,
    });
    mkdirSync(path.dirname(finalPath), { recursive: true });
    writeFileSync(finalPath, 'x'.repeat(10));
    writeFileSync(archive.stagingPathFor('midway'), 'x'.repeat(4));
    // 'done' was verified; its staging file is a leftover.
    tx.markVerified(getRecording(db, 'done')!, verification(10, true, '/elsewhere'));
    writeFileSync(archive.stagingPathFor('done'), 'x');
    writeFileSync(archive.stagingPathFor('nobody'), 'x');

    const report = await recover(db, custody, archive, pino({ level: 'silent' }));

    expect(report).toEqual({ interrupted: 2, uncommittedArchiveFiles: 1, orphanStaging: 2, camerasMarkedUndocked: 1 });
    expect(existsSync(finalPath)).toBe(false);
    expect(existsSync(archive.stagingPathFor('midway'))).toBe(true);
    expect((await archive.stagingIds()).sort()).toEqual(['midway']);
    expect(['renamed', 'midway'].map((id) => getRecording(db, id)!.status)).toEqual(['pending', 'pending']);
    expect(custody.forRecording('midway').at(-1)).toMatchObject({
      type: 'offload.interrupted',
      details: { reason: 'daemon restarted' },
    });
  });
});
