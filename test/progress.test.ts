import { afterEach, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { BIN, ROOT, TestDock, waitFor } from './support/harness.js';

let dock: TestDock;
afterEach(async () => {
  await dock?.cleanup();
});

describe('progress', () => {
  it('status shows recordings and bytes done of total, rate and ETA per docked camera, and --watch draws bars', async () => {
    dock = new TestDock();
    dock.dock('bay-1', { serial: 'P-1', files: [{ rel: 'a.mp4', size: 500_000 }, { rel: 'b.mp4', size: 9_000_000 }], spec: { throughputBytesPerSec: 1_500_000 } });
    dock.start();
    const mid = await waitFor('a camera mid-transfer', async () => {
      const s = await dock.status();
      const p = s.cameras[0]?.progress;
      return p && (p.bytesDone as number) > 200_000 && (p.bytesDone as number) < 5_000_000 && (p.rateBytesPerSec ?? 0) > 0 ? s.cameras[0]! : null;
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

    const watch = spawn(process.execPath, [BIN, '--config', dock.configPath, 'status', '--watch'], { cwd: ROOT });
    let screen = '';
    watch.stdout.on('data', (b: Buffer) => (screen += b.toString()));
    await waitFor('a redraw', async () => screen.split('\u001b[2J').length >= 3, 5000);
    watch.kill('SIGINT');
    expect(screen).toMatch(/P-1/);
    expect(screen).toMatch(/[█░]{24}/);
  });
});
