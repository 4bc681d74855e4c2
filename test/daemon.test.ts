import { afterEach, describe, expect, it } from 'vitest';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { allVerified, cli, TestDock, waitFor, type CustodyJson } from './support/harness.js';

let dock: TestDock;
afterEach(async () => {
  await dock?.cleanup();
});

describe('daemon against a simulated dock', () => {
  // Direct I/O where the filesystem takes it (the tests' temporary directory does), and the page
  // cache where it does not or the config says so: both must archive the same bytes.
  for (const directIo of [true, false]) {
    it(`offloads every recording with the right SHA-256, archives an equal copy, and frees the camera only after verification (ingest.directIo ${directIo})`, async () => {
      dock = new TestDock({ ingest: { directIo } });
      dock.dock('dock1-01', {
        serial: 'DU-0042',
        files: [
          { rel: 'DCIM/100/REC0001.MP4', size: 3_000_000 },
          { rel: 'DCIM/100/REC0002.MP4', size: 70_000 },
          { rel: 'DCIM/101/REC0003.MP4', size: 0 },
        ],
      });
      dock.dock('dock1-02', { serial: 'DU-0077', files: [{ rel: 'REC0001.MP4', size: 1_234_567 }] });
      const d = dock.start();
      const recs = await allVerified(dock, 4);

      for (const r of recs) {
        const src = dock.sources.get(`${r.camera}\n${r.sourcePath}`)!;
        expect(r.sha256, r.sourcePath).toBe(src.sha256);
        expect(r.bytes).toBe(src.bytes);
        expect(r.attempts).toBe(1);
        expect(readFileSync(r.archivePath!).equals(src.data)).toBe(true);
        expect(path.resolve(r.archivePath!).startsWith(path.join(dock.dataDir, 'archive') + path.sep)).toBe(true);
      }
      expect(dock.cameraFileExists('dock1-01', 'DCIM/100/REC0001.MP4')).toBe(false);
      expect(dock.cameraFileExists('dock1-02', 'REC0001.MP4')).toBe(false);

      // Deletion from the camera comes after the verification, in the custody log of each recording.
      for (const r of recs) {
        const events = await dock.json<CustodyJson[]>(['custody', '--recording', r.id]);
        const types = events.map((e) => e.type);
        expect(types).toEqual(['recording.discovered', 'offload.started', 'offload.verified', 'camera.file_deleted']);
        expect(events[2]!.sha256).toBe(r.sha256);
        expect(events.every((e) => e.actor === 'dockd' && /^[0-9a-f]{64}$/.test(e.hash))).toBe(true);
      }
      const logs = d.events('offload.verified');
      expect(logs).toHaveLength(4);
      expect(logs[0]).toMatchObject({ level: 30, camera: expect.any(String), recording: expect.any(String) });
      expect(d.events('ingest.direct_io')).toEqual(
        directIo ? [expect.objectContaining({ level: 30, enabled: true })] : [],
      );
    });
  }

  it('shows cameras docked and undocked in status, and status works with the daemon down', async () => {
    dock = new TestDock();
    dock.dock('dock1-03', {
      serial: 'DU-0108',
      files: [{ rel: 'a.mp4', size: 10_000 }],
      spec: { battery: { percent: 37, charging: true } },
    });
    const d = dock.start();
    await allVerified(dock, 1);
    const s = await waitFor('docked in status', async () => {
      const s = await dock.status();
      return s.daemon.running && s.cameras.some((c) => c.docked) ? s : null;
    });
    expect(s.daemon.pid).toBe(d.child.pid);
    expect(s.cameras).toEqual([
      expect.objectContaining({
        serial: 'DU-0108',
        slot: 'dock1-03',
        docked: true,
        battery: { percent: 37, charging: true },
        pending: 0,
        failed: 0,
      }),
    ]);
    expect(s.queue).toMatchObject({ pending: 0, active: 0, failed: 0, verified: 1 });
    expect(s.archive.freeBytes).toBeGreaterThan(0);

    dock.undock('dock1-03');
    await waitFor('undocked in status', async () => !(await dock.status()).cameras[0]!.docked);
    const cams = await dock.json<Array<{ serial: string; docked: boolean }>>(['cameras']);
    expect(cams).toEqual([expect.objectContaining({ serial: 'DU-0108', docked: false })]);

    const t0 = Date.now();
    d.kill('SIGTERM');
    const exit = await d.exited;
    expect(exit.code).toBe(0);
    expect(Date.now() - t0).toBeLessThan(10_000);
    const after = await dock.status();
    expect(after.daemon.running).toBe(false);
    expect(after.queue.verified).toBe(1);
    expect((await dock.cli(['status', '--require-running'])).code).toBe(1);
  });

  it('stops gracefully on SIGTERM in the middle of a copy and resumes that copy at the next start', async () => {
    dock = new TestDock();
    dock.dock('s1', {
      serial: 'SLOW-1',
      files: [{ rel: 'big.mp4', size: 4_000_000 }],
      spec: { throughputBytesPerSec: 1_000_000 },
    });
    const d = dock.start();
    await d.waitForEvent('offload.started');
    await new Promise((r) => setTimeout(r, 800));
    d.kill('SIGTERM');
    expect((await d.exited).code).toBe(0);
    const mid = await dock.recordings();
    expect(mid[0]).toMatchObject({ status: 'pending', deletedFromCamera: false });
    expect(dock.cameraFileExists('s1', 'big.mp4')).toBe(true);
    dock.start();
    const [r] = await allVerified(dock, 1);
    expect(r!.sha256).toBe(dock.sources.get('SLOW-1\nbig.mp4')!.sha256);
  });

  it('refuses a second daemon on the same data dir, and a daemon killed with -9 does not block the next', async () => {
    dock = new TestDock();
    const first = dock.start();
    await first.waitForEvent('daemon.started');
    const second = dock.start();
    const exit = await second.exited;
    expect(exit.code).toBe(1);
    expect(second.stderr).toMatch(/another dockd daemon is running/);
    first.kill('SIGKILL');
    await first.exited;
    const third = dock.start();
    await third.waitForEvent('daemon.started');
    expect((await dock.status()).daemon.pid).toBe(third.child.pid);
  });

  it('logs one clear error for a malformed camera.json, docks nothing, and docks once the file is fixed', async () => {
    dock = new TestDock();
    const d = dock.start();
    await d.waitForEvent('bus.started');
    dock.writeCameraJson('bad', '{"serial": 42}');
    const err = await d.waitForEvent('camera.rejected');
    expect(err.level).toBe(50);
    expect(String(err.file)).toContain(path.join('bad', 'camera.json'));
    expect(err.msg).toMatch(/serial/);
    expect(d.child.exitCode).toBeNull();
    expect(await dock.json(['cameras'])).toEqual([]);
    dock.writeCameraJson('bad', { serial: 'FIXED-1' });
    await waitFor('camera docked', async () =>
      (await dock.json<Array<{ serial: string }>>(['cameras'])).some((c) => c.serial === 'FIXED-1'),
    );
    expect(d.events('camera.rejected')).toHaveLength(1);
  });

  it('finds cameras already docked when it starts', async () => {
    dock = new TestDock();
    dock.dock('early', { serial: 'EARLY-1', files: [{ rel: 'x.mp4', size: 5000 }] });
    dock.start();
    await allVerified(dock, 1);
  });
});

describe('command line', () => {
  it('exits 2 naming the key for a bad config', async () => {
    dock = new TestDock();
    writeFileSync(dock.configPath, JSON.stringify({ ingest: { concurrency: -1 } }));
    const r = await dock.cli(['start']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/ingest\.concurrency/);
    writeFileSync(dock.configPath, JSON.stringify({ ingest: { bogus: 1 } }));
    const r2 = await dock.cli(['status']);
    expect(r2.code).toBe(2);
    expect(r2.stderr).toMatch(/ingest\.bogus: unknown key/);
  });

  it.each([
    [
      '{"ingest": {"readTimeoutMs": 1e300}}',
      /^dockd: config: ingest\.readTimeoutMs: must be at most 2147483647 milliseconds/,
    ],
    [
      '{"daemon": {"heartbeatIntervalMs": 4294967296}}',
      /^dockd: config: daemon\.heartbeatIntervalMs: must be at most 2147483647 /,
    ],
    ['{"__proto__": {"dataDir": "/tmp/elsewhere"}}', /^dockd: config: __proto__: "__proto__" is not allowed/],
    ['{"dataDir": ""}', /^dockd: config: dataDir: must not be empty/],
  ])('exits 2 on the config %s, in one line naming the key, and makes no data dir', async (text, re) => {
    dock = new TestDock();
    writeFileSync(dock.configPath, text);
    const r = await dock.cli(['status']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr.trim()).toMatch(re);
    expect(existsSync(path.join(dock.root, 'var'))).toBe(false);
  });

  it('exits 2 on bad usage and prints help for every command', async () => {
    expect((await cli(['custody'])).code).toBe(2);
    expect((await cli(['no-such-command'])).code).toBe(2);
    const commands = [
      'start',
      'status',
      'cameras',
      'recordings',
      'custody',
      'verify',
      'key',
      'replicate',
      'retry',
      'export',
      'keygen',
      'report',
      'verify-export',
      'hold',
      'release',
      'retention',
      'assign',
      'unassign',
      'assignments',
      'usb',
      'doctor',
      'backup',
      'battery',
      'demo',
      'settings',
      'events',
      'stages',
      'fleet',
    ];
    // Four at a time: one after another, 28 start-ups of Node took most of a minute on a busy machine.
    for (let i = 0; i < commands.length; i += 4) {
      const batch = commands.slice(i, i + 4);
      const results = await Promise.all(batch.map((c) => cli([c, '--help'])));
      results.forEach((r, k) => {
        expect(r.code, batch[k]).toBe(0);
        expect(r.stdout, batch[k]).toMatch(/Usage: dockd/);
      });
    }
  }, 120_000);

  it('runs the demo end to end', async () => {
    const r = await cli(['demo']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/8\/8 recordings verified/);
    expect(r.stdout).toMatch(/8\/8 SHA-256 values equal/);
    expect(r.stdout).toMatch(/custody chain intact/);
  });
});
