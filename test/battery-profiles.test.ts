import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseCameraFile } from '../drivers/simulated/camera-file.js';
import { newDeviceSamples } from '../src/battery/device-log.js';
import { assessBattery } from '../src/battery/model.js';
import { drainByProfile } from '../src/battery/profiles.js';
import { BatteryRecorder } from '../src/battery/recorder.js';
import { openStore } from '../src/store/db.js';
import { noteProfile } from '../src/store/camera-settings.js';
import { cli } from './support/harness.js';
import { buildReport } from '../src/report/model.js';
import { renderReport } from '../src/report/html.js';
import { parseConfig } from '../src/config.js';

interface Range {
  min: number;
  max: number;
}
interface Fixture {
  serial: string;
  clockOffsetSeconds: number;
  healthPercent: number;
  batteryLog: Array<{ at: string; percent: number; charging: boolean }>;
  settingsChanges: Array<{ at: string; profile: string }>;
  expected: {
    shiftHours: number;
    status: string;
    trend: string;
    drainPercentPerHour: Range;
    byProfile: Array<{ profile: string | null; drainPercentPerHour: Range }>;
  };
}

const text = readFileSync(new URL('../fixtures/battery/profile-change.json', import.meta.url), 'utf8');
const f = JSON.parse(text) as Fixture;
const log = f.batteryLog.map((e) => ({ at: new Date(e.at), percent: e.percent, charging: e.charging }));
const starts = f.settingsChanges.map((c) => ({ from: Date.parse(c.at), profile: c.profile }));
const NOW = Date.UTC(2026, 11, 1);

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('battery drain per settings profile', () => {
  it('profile-change fixture: the drain before and after the change, each within what the fixture states', () => {
    const samples = newDeviceSamples(new Set(), log, f.clockOffsetSeconds, { now: NOW });
    const whole = assessBattery({ samples, healthPercent: f.healthPercent, shiftHours: f.expected.shiftHours });
    expect(whole.status).toBe(f.expected.status);
    expect(whole.trend.label).toBe(f.expected.trend);
    expect(whole.drainPercentPerHour).toBeGreaterThanOrEqual(f.expected.drainPercentPerHour.min);
    expect(whole.drainPercentPerHour).toBeLessThanOrEqual(f.expected.drainPercentPerHour.max);

    const by = drainByProfile(samples, starts, f.expected.shiftHours);
    expect(by.map((p) => p.profile)).toEqual(f.expected.byProfile.map((p) => p.profile));
    by.forEach((p, i) => {
      const want = f.expected.byProfile[i]!.drainPercentPerHour;
      expect(p.drainPercentPerHour, String(p.profile)).toBeGreaterThanOrEqual(want.min);
      expect(p.drainPercentPerHour, String(p.profile)).toBeLessThanOrEqual(want.max);
    });
    // Short of a 10 h shift before, comfortably past it after.
    expect(by[0]!.projectedRuntimeHours).toBeLessThan(10);
    expect(by[1]!.projectedRuntimeHours).toBeGreaterThan(12);
    expect(by[0]!.to).toBeLessThan(starts[0]!.from);
    expect(by[1]!.from).toBeGreaterThan(starts[0]!.from);
  });

  it('counts a profile the camera ran twice as one, and none for a camera never given one', () => {
    const H = 3_600_000;
    const shift = (day: number, drain: number) =>
      Array.from({ length: 9 }, (_, k) => ({
        at: day * 24 * H + k * H,
        percent: 100 - drain * k,
        charging: false,
        source: 'device' as const,
      }));
    const samples = [...shift(0, 10), ...shift(1, 6), ...shift(2, 10)];
    const by = drainByProfile(
      samples,
      [
        { from: 0, profile: 'full' },
        { from: 20 * H, profile: 'eco' },
        { from: 44 * H, profile: 'full' },
      ],
      10,
    );
    expect(by.map((p) => [p.profile, p.drainPercentPerHour])).toEqual([
      ['full', 10],
      ['eco', 6],
    ]);
    expect(drainByProfile(samples, [], 10).map((p) => p.profile)).toEqual([null]);
  });

  it('profile-change fixture is a valid simulated camera.json with its settings', () => {
    expect(parseCameraFile(text).settings).toMatchObject({ wifi: true, displayBrightness: 80 });
  });

  it('dockd battery SERIAL shows the drain under each profile the camera ran, in --json as byProfile', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'dockd-byprofile-'));
    dirs.push(dir);
    const db = openStore(dir);
    db.prepare(
      "INSERT INTO cameras (serial, model, firmware, slot, docked, first_seen, last_seen, visit) VALUES (?, 'SimCam 2', '4.1.7', 's1', 0, ?, ?, 2)",
    ).run(f.serial, new Date(NOW).toISOString(), new Date(NOW).toISOString());
    new BatteryRecorder(db).ingestDeviceLog(
      f.serial,
      1,
      log.map((e) => ({ ...e, type: 'battery' })),
      f.clockOffsetSeconds,
    );
    db.transaction(() => noteProfile(db, f.serial, 'winter', starts[0]!.from))();
    db.close();

    const r = await cli(['--data-dir', dir, 'battery', f.serial, '--json'], { env: { DOCKD_CONFIG: '' } });
    expect(r.stderr).toBe('');
    const [cam] = JSON.parse(r.stdout) as Array<{
      byProfile: Array<{ profile: string | null; drainPercentPerHour: number; projectedRuntimeHours: number }>;
    }>;
    expect(cam!.byProfile.map((p) => p.profile)).toEqual([null, 'winter']);
    expect(cam!.byProfile[0]!.drainPercentPerHour).toBeCloseTo(12, 0);
    expect(cam!.byProfile[1]!.drainPercentPerHour).toBeCloseTo(8, 0);

    const human = await cli(['--data-dir', dir, 'battery', f.serial], { env: { DOCKD_CONFIG: '' } });
    expect(human.stdout).toMatch(/after profile winter the drain fell from 1[12](\.\d+)? to [78](\.\d+)? %\/h/);

    const store = openStore(dir);
    try {
      const page = renderReport(buildReport(store, parseConfig({ dataDir: dir }, dir)));
      expect(page).toContain('<tr data-profile="winter"><td>winter</td>');
      expect(page).toMatch(
        /drain per settings profile: after profile winter the drain fell from 1[12](\.\d+)? to [78](\.\d+)? %\/h/,
      );
    } finally {
      store.close();
    }
  });
});
