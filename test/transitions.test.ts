import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Db } from '../src/store/db.js';
import type { CustodyLog } from '../src/store/custody-log.js';
import { checkChain } from '../src/store/chain.js';
import { getRecording } from '../src/store/recordings.js';
import { markExpired } from '../src/store/retention.js';
import type { Transitions } from '../src/store/transitions.js';
import { storeWithCamera, verification, type TestStore } from './support/store.js';

let store: TestStore;
let db: Db;
let custody: CustodyLog;
let tx: Transitions;

beforeEach(() => {
  store = storeWithCamera();
  ({ db, custody, tx } = store);
});

afterEach(() => store.close());

const file = { path: 'DCIM/0001.MP4', id: 'DCIM/0001.MP4', identity: '4096:1:2', bytes: 4096 };

function discover(recordingId: string): void {
  tx.discover('CAM1', 1, { ...file, recordingId, modifiedAt: null, recordedAt: null }, new Date().toISOString());
}

function verify(id: string, release: boolean): void {
  tx.markVerified(getRecording(db, id)!, verification(4096, release));
}

const types = () => [...custody.all()].map((e) => e.type);

describe('the store transitions of a recording', () => {
  it('append one custody event per change, in order, on an intact chain', () => {
    discover('r1');
    const rec = () => getRecording(db, 'r1')!;
    tx.markCopying(rec(), 1, 0);
    tx.copyFailed(rec(), {
      attempt: 1,
      error: 'EIO',
      class: 'transient',
      interrupted: false,
      exhausted: false,
      retryInMs: 0,
      keptBytes: 0,
    });
    expect(rec()).toMatchObject({ status: 'pending', attempts: 1 });
    tx.markCopying(rec(), 2, 0);
    verify('r1', true);
    expect(tx.dueReleases('CAM1', Date.now())).toHaveLength(1);
    tx.markDeletedFromCamera(rec(), false);
    expect(rec()).toMatchObject({ status: 'verified', deleted_from_camera: 1 });
    expect(types()).toEqual([
      'camera.docked',
      'recording.discovered',
      'offload.started',
      'offload.failed',
      'offload.started',
      'offload.verified',
      'camera.file_deleted',
    ]);
    expect(checkChain(custody.all()).ok).toBe(true);
  });

  it('leave nothing due for a camera whose queued deletion belongs to a recording retention removed', () => {
    discover('r2');
    tx.markCopying(getRecording(db, 'r2')!, 1, 0);
    verify('r2', true);
    expect(tx.nextDue('CAM1')).not.toBeNull();
    // The camera left before the deletion ran; the recording expired before it came back.
    expect(markExpired(db, custody, { id: 'r2', camera: 'CAM1', sha256: 'a'.repeat(64) }, {})).toBe(true);
    expect(tx.dueReleases('CAM1', Date.now())).toHaveLength(0);
    expect(tx.nextDue('CAM1')).toBeNull();
  });

  it('spend no attempt of a deletion when the camera leaves in the middle of it, and one per real failure', () => {
    discover('r3');
    const rec = () => getRecording(db, 'r3')!;
    tx.markCopying(rec(), 1, 0);
    verify('r3', true);
    const fail = (paused: boolean) =>
      tx.deleteFailed(rec(), {
        attempt: tx.releaseAttempts('r3') + 1,
        error: paused ? 'device-gone' : 'EIO',
        paused,
        exhausted: false,
        notBefore: 0,
      });
    for (let i = 0; i < 5; i++) fail(true);
    expect(tx.releaseAttempts('r3')).toBe(0);
    fail(false);
    expect(tx.releaseAttempts('r3')).toBe(1);
    expect(tx.dueReleases('CAM1', Date.now()).map((r) => r.id)).toEqual(['r3']);
  });

  it('close, once, the copy of a recording a listing let go of while it was copied', () => {
    discover('r4');
    tx.markCopying(getRecording(db, 'r4')!, 1, 0);
    const copying = getRecording(db, 'r4')!;
    // A relisting during the copy finds other content under the name.
    const known = tx.known('CAM1', file.path)!;
    tx.replacedOnCamera(
      'CAM1',
      2,
      known,
      { ...file, identity: '9999:1:2', bytes: 9999, recordingId: 'r5', modifiedAt: null, recordedAt: null },
      'listing',
      new Date().toISOString(),
    );
    // The copy then notices the change itself: the listing already said so.
    expect(tx.lostTrack(copying, { noticedBy: 'copy', now: { bytes: 9999, identity: '9999:1:2' } })).toBeNull();
    expect(custody.forRecording('r4').filter((e) => e.type === 'recording.replaced_on_camera')).toHaveLength(1);
    // Or the copy fails: it is closed as one that will not be retried, and the row stays let go.
    tx.copyFailed(copying, {
      attempt: 1,
      error: 'EIO',
      class: 'transient',
      interrupted: false,
      exhausted: false,
      retryInMs: 50,
      keptBytes: 0,
    });
    const [closed] = custody.forRecording('r4').filter((e) => e.type === 'offload.failed');
    expect(closed!.details).toMatchObject({ willRetry: false, retryInMs: null, leftCamera: true });
    expect(getRecording(db, 'r4')).toMatchObject({ status: 'failed', deleted_from_camera: 2 });
    expect(tx.dueOffloads('CAM1', Date.now() + 1000, 10).map((r) => r.id)).toEqual(['r5']);
    expect(checkChain(custody.all()).ok).toBe(true);
  });
});
