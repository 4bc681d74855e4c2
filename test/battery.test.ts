import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, TestDock, allVerified, waitFor } from './support/harness.js';
import { openStore } from '../src/store/db.js';
import { fleetVerdicts, storeVerdict } from '../src/battery/fleet.js';
import { BatteryRecorder } from '../src/battery/recorder.js';

interface Fixture {
  serial: string;
  clockOffsetSeconds: number;
  battery: Record<string, unknown>;
  batteryLog: Array<{ at: string; percent: number; charging: boolean }>;
  expected: { status: string; shiftHours: number; drainPercentPerHour?: { min: number; max: number } };
}
/**
 * A fixture with its log moved so that it ends an hour ago: the logs are recorded history, and the
 * tests must mean the same thing whichever day they run.
 */
function fixture(name: string): Fixture {
  const f = JSON.parse(readFileSync(path.join(ROOT, 'fixtures', 'battery', `${name}.json`), 'utf8')) as Fixture;
  const last = Math.max(...f.batteryLog.map((e) => Date.parse(e.at)));
  const shift = Date.now() + f.clockOffsetSeconds * 1000 - 3600_000 - last;
  f.batteryLog = f.batteryLog.map((e) => ({ ...e, at: new Date(Date.parse(e.at) + shift).toISOString() }));
  return f;
}
const NAMES = ['healthy', 'night-ir', 'aging', 'new-camera', 'charging-only'];

interface BatteryJson {
  serial: string;
  percent: number | null;
  charging: boolean | null;
  healthPercent: number | null;
  drainPercentPerHour: number | null;
  projectedRuntimeHours: number | null;
  status: string;
  samples?: Array<{ at: number; percent: number; charging: boolean; source: string }>;
}

let dock: TestDock;
afterEach(async () => {
  await dock?.cleanup();
});

describe('battery health', () => {
  it('finds the cameras that will not last a shift, from their own logs, on the fleet fixtures', async () => {
    dock = new TestDock({ battery: { shiftHours: 10, sampleIntervalMs: 200 } });
    for (const name of NAMES) {
      const f = fixture(name);
      dock.dock(name, {
        serial: f.serial,
        spec: { battery: f.battery, clockOffsetSeconds: f.clockOffsetSeconds, batteryLog: f.batteryLog },
      });
    }
    const d = dock.start();
    await waitFor(
      'all docked',
      async () =>
        (await dock.json<Array<{ docked: boolean }>>(['cameras'])).filter((c) => c.docked).length === NAMES.length,
    );
    const fleet = await dock.json<BatteryJson[]>(['battery']);
    for (const name of NAMES) {
      const f = fixture(name);
      const b = fleet.find((x) => x.serial === f.serial)!;
      expect(b.status, name).toBe(f.expected.status);
      if (f.expected.drainPercentPerHour) {
        expect(b.drainPercentPerHour!, name).toBeGreaterThanOrEqual(f.expected.drainPercentPerHour.min);
        expect(b.drainPercentPerHour!, name).toBeLessThanOrEqual(f.expected.drainPercentPerHour.max);
      }
      if (b.status === 'short') expect(b.projectedRuntimeHours!).toBeLessThan(10);
    }
    expect(fleet.find((b) => b.serial === fixture('charging-only').serial)!.drainPercentPerHour).toBeNull();

    // One warning per visit for each camera that is not ok, naming it.
    const short = d.events('battery.short_runtime');
    expect(short.map((l) => l.camera)).toEqual([fixture('night-ir').serial]);
    expect(short[0]!.level).toBe(40);
    expect(d.events('battery.degraded').map((l) => l.camera)).toEqual([fixture('aging').serial]);

    // Each docking left its verdict in the store, which is what status reads.
    const store = openStore(dock.dataDir);
    try {
      const verdicts = new Map(
        store
          .prepare<[], { serial: string; v: string | null }>('SELECT serial, battery_verdict_json v FROM cameras')
          .all()
          .map((r) => [
            r.serial,
            r.v === null ? null : (JSON.parse(r.v) as { shiftHours: number; view: { status: string } }),
          ]),
      );
      for (const name of NAMES)
        expect(verdicts.get(fixture(name).serial), name).toMatchObject({
          shiftHours: 10,
          view: { status: fixture(name).expected.status },
        });
    } finally {
      store.close();
    }
    const status = await dock.json<{ fleet: { short: string[]; degraded: string[] } }>(['status']);
    expect(status.fleet.short).toEqual([fixture('night-ir').serial]);
    const human = await dock.cli(['status']);
    expect(human.stdout).toMatch(/1 camera will not last a 10 h shift: DU-0207/);
  });

  it('offloads and frees a camera whose battery verdict cannot be stored, and status judges it from its samples', async () => {
    dock = new TestDock({ battery: { shiftHours: 10, sampleIntervalMs: 200 } });
    // Only the verdict's write fails, as on a store that refuses that one row.
    const store = openStore(dock.dataDir);
    store.exec(
      "CREATE TRIGGER verdict_refused BEFORE UPDATE OF battery_verdict_json ON cameras WHEN NEW.battery_verdict_json IS NOT NULL BEGIN SELECT RAISE(ABORT, 'verdict refused'); END",
    );
    store.close();
    const f = fixture('night-ir');
    dock.dock('s1', {
      serial: f.serial,
      files: [
        { rel: 'DCIM/100CAM/a.mp4', size: 300_000 },
        { rel: 'DCIM/100CAM/b.mp4', size: 70_000 },
      ],
      spec: { battery: f.battery, clockOffsetSeconds: f.clockOffsetSeconds, batteryLog: f.batteryLog },
    });
    const d = dock.start();
    const recs = await allVerified(dock, 2);
    for (const r of recs) expect(r.sha256).toBe(dock.sources.get(`${f.serial}\n${r.sourcePath}`)!.sha256);
    expect(dock.cameraFileExists('s1', 'DCIM/100CAM/a.mp4')).toBe(false);
    const refused = d.events('battery.verdict_not_stored');
    expect(refused.map((e) => e.camera)).toEqual([f.serial]);
    expect(refused[0]!.level).toBe(40);
    expect(String(refused[0]!.error)).toContain('verdict refused');
    // Still found short: status judged it itself.
    expect(d.events('battery.short_runtime').map((e) => e.camera)).toEqual([f.serial]);
    const status = await dock.json<{ fleet: { short: string[] } }>(['status']);
    expect(status.fleet.short).toEqual([f.serial]);
  });

  it('corrects log times by the measured clock skew and never stores the same log twice across visits', async () => {
    dock = new TestDock({ battery: { sampleIntervalMs: 60_000 } });
    const f = fixture('night-ir');
    // One copy of the fixture for both visits: the same log must be recognised the second time.
    const spec = { battery: f.battery, clockOffsetSeconds: f.clockOffsetSeconds, batteryLog: f.batteryLog };
    dock.dock('s1', { serial: f.serial, spec });
    const d = dock.start();
    await d.waitForEvent('battery.log_ingested');
    const first = (await dock.json<BatteryJson[]>(['battery', f.serial]))[0]!;
    const device = first.samples!.filter((s) => s.source === 'device');
    expect(device).toHaveLength(new Set(f.batteryLog.map((e) => e.at)).size);
    // The camera's clock runs an hour ahead: the stored times are an hour earlier (± the 0.1 s skew rounding).
    const firstLogged = Math.min(...f.batteryLog.map((e) => Date.parse(e.at)));
    expect(Math.abs(device[0]!.at - (firstLogged - f.clockOffsetSeconds * 1000))).toBeLessThan(1500);

    // The camera goes out and comes back without having cleared its log.
    dock.undock('s1');
    await d.waitForEvent('camera.undocked');
    dock.writeCameraJson('s1', { serial: f.serial, ...spec });
    await waitFor('second visit', async () => d.events('battery.short_runtime').length === 2);
    const second = (await dock.json<BatteryJson[]>(['battery', f.serial]))[0]!;
    expect(second.samples!.filter((s) => s.source === 'device')).toHaveLength(device.length);
    expect(d.events('battery.log_ingested')).toHaveLength(1);
    expect(second.status).toBe('short');
  });

  it("keeps battery samples for battery.keepDays: older ones are deleted by the sweep and not brought back by a camera's log", async () => {
    dock = new TestDock({ battery: { sampleIntervalMs: 60_000, keepDays: 3 }, retention: { sweepIntervalMs: 300 } });
    const day = 86_400_000;
    const now = Date.now();
    // Ten days of the camera's own log, one entry every six hours, the last an hour ago.
    const batteryLog = Array.from({ length: 40 }, (_, i) => ({
      at: new Date(now - 3600_000 - i * 6 * 3600_000).toISOString(),
      percent: 90 - (i % 4) * 20,
      charging: i % 4 === 0,
    }));
    const spec = { battery: { percent: 80, charging: true }, clockOffsetSeconds: 0, batteryLog };
    dock.dock('s1', { serial: 'KEEP-1', spec });
    const d = dock.start();
    await d.waitForEvent('battery.log_ingested');
    const samples = async () => (await dock.json<BatteryJson[]>(['battery', 'KEEP-1']))[0]!.samples!;
    const first = await samples();
    const within = batteryLog.filter((e) => Date.parse(e.at) >= now - 3 * day).length;
    expect(first.filter((s) => s.source === 'device')).toHaveLength(within);
    expect(Math.min(...first.map((s) => s.at))).toBeGreaterThanOrEqual(now - 3 * day - 60_000);

    // A sample of a visit a year ago, as a store that ran before pruning holds: the sweep deletes it.
    const store = openStore(dock.dataDir);
    store
      .prepare(
        "INSERT INTO battery_samples (camera, at, percent, charging, source, visit) VALUES ('KEEP-1', ?, 55, 0, 'dock', 0)",
      )
      .run(now - 365 * day);
    store.close();
    const pruned = await d.waitForEvent('battery.pruned');
    expect(pruned).toMatchObject({ samples: 1, keepDays: 3, level: 30 });
    const after = await samples();
    expect(after.some((s) => s.percent === 55)).toBe(false);
    expect(after.length).toBeGreaterThanOrEqual(first.length);

    // Docked again with the same log: its old entries stay out.
    dock.undock('s1');
    await d.waitForEvent('camera.undocked');
    dock.writeCameraJson('s1', { serial: 'KEEP-1', ...spec });
    await waitFor('second visit', async () => d.events('camera.docked').length === 2 || null);
    await new Promise((r) => setTimeout(r, 1000));
    expect((await samples()).filter((s) => s.source === 'device')).toHaveLength(within);
    expect(d.events('battery.log_ingested')).toHaveLength(1);
    expect(d.events('battery.pruned')).toHaveLength(1);
  });

  it('prunes years of samples in batches, per camera, and keeps every recent one', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'dockd-prune-'));
    const db = openStore(dir);
    try {
      const iso = new Date().toISOString();
      const now = Date.now();
      const sample = db.prepare(
        "INSERT INTO battery_samples (camera, at, percent, charging, source, visit) VALUES (?, ?, 50, 0, 'dock', 1)",
      );
      db.transaction(() => {
        for (const serial of ['P-1', 'P-2']) {
          db.prepare('INSERT INTO cameras (serial, first_seen, last_seen) VALUES (?, ?, ?)').run(serial, iso, iso);
          // Two and a half batches of old samples, and ten within the days kept.
          for (let i = 0; i < 12_345; i++) sample.run(serial, now - 500 * 86_400_000 + i * 60_000);
          for (let i = 0; i < 10; i++) sample.run(serial, now - i * 60_000);
        }
      })();
      const recorder = new BatteryRecorder(db, 400);
      expect(await recorder.prune(now)).toBe(2 * 12_345);
      expect(
        db.prepare('SELECT camera, count(*) n FROM battery_samples GROUP BY camera ORDER BY camera').all(),
      ).toEqual([
        { camera: 'P-1', n: 10 },
        { camera: 'P-2', n: 10 },
      ]);
      expect(await recorder.prune(now)).toBe(0);
      // keepDays 0 keeps everything, however old.
      sample.run('P-1', 0);
      expect(await new BatteryRecorder(db, 0).prune(now)).toBe(0);
    } finally {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('status judges each camera by the verdict of its last docking, and a camera without one from its samples', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'dockd-verdict-'));
    const db = openStore(dir);
    try {
      const f = fixture('night-ir');
      const iso = new Date().toISOString();
      db.prepare('INSERT INTO cameras (serial, first_seen, last_seen) VALUES (?, ?, ?)').run(f.serial, iso, iso);
      const sample = db.prepare(
        "INSERT INTO battery_samples (camera, at, percent, charging, source, visit) VALUES (?, ?, ?, ?, 'device', 1)",
      );
      for (const e of f.batteryLog) sample.run(f.serial, Date.parse(e.at), e.percent, e.charging ? 1 : 0);

      // A store from before verdicts were kept: judged from the samples.
      const live = fleetVerdicts(db, 10)[0]!;
      expect(live.status).toBe('short');
      // The daemon's verdict is what status shows, without reading a month of samples again.
      storeVerdict(db, f.serial, 10, { ...live, status: 'ok', projectedRuntimeHours: 12 });
      expect(fleetVerdicts(db, 10)[0]).toMatchObject({ serial: f.serial, status: 'ok', projectedRuntimeHours: 12 });
      // A verdict for another shift length does not answer this one.
      expect(fleetVerdicts(db, 11)[0]!.status).toBe('short');
    } finally {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
