import { afterEach, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { BIN, ROOT, TestDock, waitFor } from './support/harness.js';
import { cameraProgress, type LiveCamera, type VisitTotals } from '../src/cli/progress.js';
import { RateMeter } from '../src/daemon/rate.js';

let dock: TestDock;
afterEach(async () => {
  await dock?.cleanup();
});

describe('progress', () => {
  it('status shows recordings and bytes done of total, rate and ETA per docked camera, and --watch draws bars', async () => {
    dock = new TestDock();
    dock.dock('bay-1', {
      serial: 'P-1',
      files: [
        { rel: 'a.mp4', size: 500_000 },
        { rel: 'b.mp4', size: 9_000_000 },
      ],
      spec: { throughputBytesPerSec: 1_500_000 },
    });
    dock.start();
    const mid = await waitFor('a camera mid-transfer', async () => {
      const s = await dock.status();
      const p = s.cameras[0]?.progress;
      return p &&
        (p.bytesDone as number) > 200_000 &&
        (p.bytesDone as number) < 5_000_000 &&
        (p.rateBytesPerSec ?? 0) > 0
        ? s.cameras[0]!
        : null;
    });
    const p = mid.progress!;
    expect(p.recordingsTotal).toBe(2);
    expect(p.bytesTotal).toBe(9_500_000);
    // The link runs at 1.5 MB/s: the measured rate and ETA must be in that neighbourhood.
    expect(p.rateBytesPerSec as number).toBeGreaterThan(500_000);
    expect(p.rateBytesPerSec as number).toBeLessThan(3_000_000);
    expect(p.etaSeconds as number).toBeGreaterThan(0);
    expect(p.etaSeconds as number).toBeLessThan(15);

    const human = await dock.cli(['status']);
    expect(human.stdout).toMatch(/bay-1\s+P-1\s+-\s+[01]\/2\s+/);

    // Into a pipe, frames follow each other (the screen is redrawn only on a terminal).
    const watch = spawn(process.execPath, [BIN, '--config', dock.configPath, 'status', '--watch'], { cwd: ROOT });
    let screen = '';
    watch.stdout.on('data', (b: Buffer) => (screen += b.toString()));
    await waitFor('a second frame', async () => screen.split(/^daemon /m).length >= 3, 5000);
    watch.kill('SIGINT');
    expect(screen).toMatch(/P-1/);
    expect(screen).toMatch(/[█░]{24}/);

    // To the end of the visit, the bytes done only grow; once all is verified, no rate is left.
    const seen: number[] = [];
    const end = await waitFor(
      'both files verified',
      async () => {
        const s = await dock.status();
        const q = s.cameras[0]?.progress;
        if (q) seen.push(q.bytesDone as number);
        return q && q.recordingsDone === 2 ? q : null;
      },
      30_000,
      50,
    );
    expect(seen).toEqual([...seen].sort((x, y) => x - y));
    expect(end).toMatchObject({ bytesDone: 9_500_000, rateBytesPerSec: null, etaSeconds: 0 });
  });
});

describe('the progress model (store now + the last heartbeat)', () => {
  // Two files of one visit, 10 MB and 5 MB; the heartbeat comes every second, status reads
  // the store whenever it is run.
  const A = 10_000_000;
  const B = 5_000_000;
  const totals = (verified: number[], failed = 0): VisitTotals => {
    const done = verified.reduce((a, b) => a + b, 0);
    const sizes = [A, B];
    const toDo = sizes.length - verified.length - failed;
    return {
      visit: 3,
      total: 2,
      done: verified.length,
      bytesTotal: A + B,
      bytesDone: done,
      toDo,
      bytesToDo: sizes.slice(verified.length, verified.length + toDo).reduce((a, b) => a + b, 0),
    };
  };

  it('never counts a file twice when it finished after the heartbeat, so bytes done never go back', () => {
    const beatMidA: LiveCamera = {
      serial: 'P-1',
      visit: 3,
      verifiedBytes: 0,
      inflightBytes: 9_900_000,
      rateBytesPerSec: 1_000_000,
    };
    const before = cameraProgress(totals([]), beatMidA);
    // A is verified in the store; the heartbeat still has it in flight.
    const between = cameraProgress(totals([A]), beatMidA);
    const beatMidB: LiveCamera = {
      serial: 'P-1',
      visit: 3,
      verifiedBytes: A,
      inflightBytes: 300_000,
      rateBytesPerSec: 1_000_000,
    };
    const after = cameraProgress(totals([A]), beatMidB);
    expect(before.bytesDone).toBe(9_900_000);
    expect(between.bytesDone).toBe(A);
    expect(after.bytesDone).toBe(A + 300_000);
    expect(between.bytesDone).toBeLessThanOrEqual(after.bytesDone);
    expect(between.bytesDone).toBeLessThanOrEqual(A + B);
  });

  it('gives an honest ETA: never 0 s while a file is still to go, none without a rate', () => {
    const beatMidA: LiveCamera = {
      serial: 'P-1',
      visit: 3,
      verifiedBytes: 0,
      inflightBytes: 9_900_000,
      rateBytesPerSec: 1_000_000,
    };
    // B, 5 MB, is still to copy at 1 MB/s.
    expect(cameraProgress(totals([A]), beatMidA).etaSeconds).toBe(5);
    // All of B received, being hashed and committed: close, but not done.
    const allReceived: LiveCamera = {
      serial: 'P-1',
      visit: 3,
      verifiedBytes: A,
      inflightBytes: B,
      rateBytesPerSec: 1_000_000,
    };
    expect(cameraProgress(totals([A]), allReceived).etaSeconds).toBeGreaterThanOrEqual(1);
    expect(cameraProgress(totals([A]), { ...allReceived, rateBytesPerSec: null }).etaSeconds).toBeNull();
  });

  it('shows no rate for a finished camera, whatever the last heartbeat measured', () => {
    const stale: LiveCamera = {
      serial: 'P-1',
      visit: 3,
      verifiedBytes: A + B,
      inflightBytes: 0,
      rateBytesPerSec: 420_000,
    };
    const done = cameraProgress(totals([A, B]), stale);
    expect(done).toMatchObject({ recordingsDone: 2, bytesDone: A + B, rateBytesPerSec: null, etaSeconds: 0 });
    // A failed file waits for `dockd retry`: nothing is being copied either.
    expect(cameraProgress(totals([A], 1), stale).rateBytesPerSec).toBeNull();
  });

  it('ignores a heartbeat of an earlier visit of the same camera', () => {
    const old: LiveCamera = {
      serial: 'P-1',
      visit: 2,
      verifiedBytes: 0,
      inflightBytes: 4_000_000,
      rateBytesPerSec: 1_000_000,
    };
    expect(cameraProgress(totals([]), old)).toMatchObject({ bytesDone: 0, rateBytesPerSec: null, etaSeconds: null });
  });

  it('the daemon reports no rate once a camera has nothing in flight and receives nothing', () => {
    const meter = new RateMeter();
    expect(meter.update('P-1', 0, true, 0)).toBeNull();
    expect(meter.update('P-1', 1_000_000, true, 1000)).toBe(1_000_000);
    // The last file ended within this second: its bytes still count.
    expect(meter.update('P-1', 1_800_000, false, 2000)).toBeGreaterThan(0);
    // Finished: no figure slowly falling towards zero.
    expect(meter.update('P-1', 1_800_000, false, 3000)).toBeNull();
    expect(meter.update('P-1', 1_800_000, false, 4000)).toBeNull();
    // The next visit measures afresh.
    expect(meter.update('P-1', 2_300_000, true, 5000)).toBe(500_000);
  });
});
