/**
 * The retention sweep on a store that holds years of expired recordings, as the first sweep after
 * retention is turned on finds it: it lets the daemon go on between recordings, stops at a stop
 * with each recording either deleted (file gone, event appended) or untouched, and the next sweep
 * finishes the rest.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sweepRetention } from '../src/custody/retention.js';
import { checkChain } from '../src/store/chain.js';
import { getRecording } from '../src/store/recordings.js';
import { storeWithCamera, verification, type TestStore } from './support/store.js';

let store: TestStore;
beforeEach(() => {
  store = storeWithCamera();
});
afterEach(() => store.close());

const RULE = { days: 30, requireReplicated: false, sweepIntervalMs: 3_600_000 };
const N = 300;

/** N recordings verified a year ago, each with its archived file. */
function yearOfRecordings(): string[] {
  const { db, tx, dir } = store;
  const yearAgo = new Date(Date.now() - 365 * 86_400_000);
  const files: string[] = [];
  tx.batch(() => {
    for (let i = 0; i < N; i++) {
      const id = `old-${i}`;
      const f = { path: `DCIM/${i}.MP4`, id: `DCIM/${i}.MP4`, identity: `10:${i}`, bytes: 10 };
      tx.discover('CAM1', 1, { ...f, recordingId: id, modifiedAt: null, recordedAt: null }, yearAgo.toISOString());
      tx.markCopying(getRecording(db, id)!, 1, 0);
      const file = path.join(dir, 'archive', `${id}.MP4`);
      tx.markVerified(getRecording(db, id)!, { ...verification(10, false, file), at: yearAgo });
      files.push(file);
    }
  });
  mkdirSync(path.join(dir, 'archive'), { recursive: true });
  for (const f of files) writeFileSync(f, 'x'.repeat(10));
  return files;
}

describe('the retention sweep', () => {
  it('stops at an abort between recordings, leaving each deleted whole or untouched, and the next sweep finishes', async () => {
    const files = yearOfRecordings();
    const stop = new AbortController();
    let turns = 0;
    // Counts the turns of the event loop the sweep lets go, and stops it at the second.
    const ticker = setInterval(() => {
      if (++turns === 2) stop.abort();
    }, 0);
    const first = await sweepRetention(store.db, store.custody, RULE, Date.now(), stop.signal);
    clearInterval(ticker);
    expect(first.deleted.length).toBeGreaterThan(0);
    expect(first.deleted.length).toBeLessThan(N);
    const statusOf = (i: number) => getRecording(store.db, `old-${i}`)!.status;
    for (let i = 0; i < N; i++) {
      const deleted = statusOf(i) === 'deleted';
      expect(deleted, `old-${i}`).toBe(i < first.deleted.length);
      expect(existsSync(files[i]!), `old-${i}`).toBe(!deleted);
    }

    const rest = await sweepRetention(store.db, store.custody, RULE);
    expect(first.deleted.length + rest.deleted.length).toBe(N);
    expect(files.filter((f) => existsSync(f))).toEqual([]);
    expect([...store.custody.all()].filter((e) => e.type === 'retention.deleted')).toHaveLength(N);
    expect(checkChain(store.custody.all()).ok).toBe(true);
  });
});
