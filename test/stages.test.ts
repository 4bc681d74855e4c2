import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openStore } from '../src/store/db.js';
import { storeCameraEvents } from '../src/store/camera-settings.js';
import { allVerified, cli, TestDock, waitFor } from './support/harness.js';
import { SHIFT } from './support/stages-shift.js';

const MIN = 60_000;
const HOUR = 60 * MIN;
const iso = (ms: number) => new Date(ms).toISOString();

interface StagesJson {
  from: string | null;
  to: string | null;
  cameras: number;
  displayActivations: number;
  escalated: number;
  escalationRate: number | null;
  directRecordings: number;
  shifts: number;
  shiftHours: number;
  camerasWithoutData: number;
  noData: string[];
  weeks: Array<{ week: string; displayActivations: number }>;
  groups?: Array<{
    group: string;
    shifts: number;
    withheld?: boolean;
    displayActivations?: number;
    escalated?: number;
  }>;
}

let dock: TestDock | undefined;
const dirs: string[] = [];
afterEach(async () => {
  await dock?.cleanup();
  dock = undefined;
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('dockd stages on a simulated dock', () => {
  it("counts a docked camera's event log as the contract defines it, and a camera without a log as no data", async () => {
    dock = new TestDock();
    // Yesterday's shift, written by a camera whose clock ran 42 s behind.
    const start = Math.floor(Date.now() / MIN) * MIN - 30 * HOUR;
    const eventLog = SHIFT.map(([m, type]) => ({ at: iso(start + m * MIN - 42_000), type }));
    dock.dock('dock1-01', { serial: 'DU-0042', spec: { clockOffsetSeconds: -42, eventLog } });
    dock.dock('dock1-02', { serial: 'DU-0043' });
    const d = dock.start();
    await d.waitForEvent('camera.events_ingested');
    await waitFor('both cameras', async () => (await dock!.json<Array<{ serial: string }>>(['cameras'])).length === 2);

    const all = await dock.json<StagesJson>(['stages']);
    expect(all).toMatchObject({
      cameras: 1,
      displayActivations: 2,
      escalated: 1,
      escalationRate: 0.5,
      directRecordings: 1,
      shifts: 1,
      shiftHours: 8,
      camerasWithoutData: 1,
      noData: ['DU-0043'],
    });
    // The skew is measured at docking, to within the time the measurement took.
    expect(Math.abs(Date.parse(all.from!) - start)).toBeLessThan(2000);

    // From the escalation on: the display-only minute is outside.
    const later = await dock.json<StagesJson>([
      'stages',
      '--from',
      iso(start + 90 * MIN),
      '--to',
      iso(start + 24 * HOUR),
    ]);
    expect(later).toMatchObject({
      from: iso(start + 90 * MIN),
      displayActivations: 1,
      escalated: 1,
      escalationRate: 1,
      directRecordings: 1,
    });
    const before = await dock.json<StagesJson>(['stages', '--to', iso(start)]);
    expect(before).toMatchObject({ displayActivations: 0, escalationRate: null, cameras: 0 });

    const table = await dock.cli(['stages']);
    expect(table.stdout).toContain('1 without an event log (no data, not zero)');
    expect(table.stdout).toMatch(/all\s+1\s+8\.0\s+2\s+1\s+50 %\s+1/);

    // One camera of one shift is below the default minimum of 5 shifts: nothing but its shift count is shown.
    const byCamera = await dock.json<StagesJson>(['stages', '--by', 'camera']);
    expect(byCamera.groups).toEqual([{ group: 'other', withheld: true, shifts: 1 }]);
  });
  it('counts a ring buffer handed again after the dock set the clock once, and ends a display-on left open at the docking', async () => {
    dock = new TestDock();
    const start = Math.floor(Date.now() / MIN) * MIN - 30 * HOUR;
    const spec = {
      clockOffsetSeconds: -42,
      eventLog: SHIFT.map(([m, type]) => ({ at: iso(start + m * MIN - 42_000), type })),
    };
    dock.dock('dock1-01', { serial: 'DU-0042', files: [{ rel: 'DCIM/REC0001.MP4', size: 4096 }], spec });
    const d = dock.start();
    await d.waitForEvent('camera.clock_set');
    // Undocked once its docking is done, as an officer takes it out in the morning.
    await allVerified(dock, 1);
    dock.undock('dock1-01');
    await d.waitForEvent('camera.undocked');

    // Out again on the dock's clock: switched on, display on, and back in the dock without a display-off.
    const later = Math.floor(Date.now() / 1000) * 1000 - 10 * MIN;
    const after = [
      { at: iso(later), type: 'power.on' },
      { at: iso(later + MIN), type: 'display.on' },
    ];
    dock.writeCameraJson('dock1-01', {
      serial: 'DU-0042',
      model: 'SimCam 2',
      firmware: '4.1.7',
      ...spec,
      eventLog: [...spec.eventLog, ...after],
    });
    await waitFor('events of the second docking', async () => d.events('camera.events_ingested').length === 2);
    const dockedAt = Date.parse(
      (await dock.json<Array<{ type: string; at: string }>>(['custody', '--camera', 'DU-0042']))
        .filter((e) => e.type === 'camera.docked')
        .at(-1)!.at,
    );

    const s = await dock.json<StagesJson & { displayOnly: { count: number } }>(['stages']);
    // The first shift once (2 activations, 1 escalated, 1 direct), and the open display-on of the second.
    expect(s).toMatchObject({ displayActivations: 3, escalated: 1, directRecordings: 1, shifts: 2 });
    expect(s.displayOnly.count).toBe(2);
    // The second shift runs from its power-on to the docking (within the skew measured at docking).
    expect(s.shiftHours).toBeCloseTo(8 + (dockedAt - later) / HOUR, 3);
  });
});

describe('dockd stages over a store of many cameras', () => {
  /** Six cameras with two shifts each; DU-1 escalates both its activations, the others none. */
  function fillStore(): string {
    const root = mkdtempSync(path.join(os.tmpdir(), 'dockd-stages-'));
    dirs.push(root);
    const dataDir = path.join(root, 'data');
    const db = openStore(dataDir);
    const day0 = Date.UTC(2026, 10, 30, 6);
    for (let c = 1; c <= 6; c++) {
      const events = [0, 1].flatMap((day) => {
        const t = (m: number) => day0 + day * 24 * HOUR + m * MIN;
        const log: Array<[number, string]> = [
          [0, 'power.on'],
          [60, 'display.on'],
          [62, 'display.off'],
          [480, 'power.off'],
        ];
        if (c === 1) log.splice(2, 0, [61, 'recording.start'], [61.5, 'recording.stop']);
        return log.map(([m, type]) => ({ at: t(m), cameraAt: t(m), type }));
      });
      storeCameraEvents(db, `DU-${c}`, 1, events);
    }
    db.close();
    return dataDir;
  }
  const config = (dir: string, cfg: Record<string, unknown>) => {
    const file = path.join(dir, `config-${Math.random().toString(36).slice(2)}.json`);
    writeFileSync(file, JSON.stringify(cfg));
    return file;
  };
  const run = (dataDir: string, configFile: string, args: string[]) =>
    cli(['--config', configFile, '--data-dir', dataDir, ...args]);

  it('groups by unit from `assign --unit`, merges small units into "other", and refuses per-officer figures unless the config allows them', async () => {
    const dataDir = fillStore();
    const root = path.dirname(dataDir);
    const units = ['north', 'north', 'north', 'south', 'south', 'east'];
    for (let c = 1; c <= 6; c++) {
      const officer = c === 4 ? '=HYPERLINK("x")' : `officer-${c}`;
      const r = await run(dataDir, config(root, {}), [
        'assign',
        `DU-${c}`,
        officer,
        '--unit',
        units[c - 1]!,
        '--from',
        '2026-11-01T00:00:00Z',
      ]);
      expect(r.stderr).toBe('');
    }
    const plain = config(root, {});
    const byUnit = JSON.parse((await run(dataDir, plain, ['stages', '--by', 'unit', '--json'])).stdout) as StagesJson;
    // north: 3 cameras × 2 shifts = 6 ≥ 5; south (4) and east (2) merge into other (6).
    expect(byUnit.groups?.map((g) => [g.group, g.shifts, g.displayActivations, g.escalated])).toEqual([
      ['north', 6, 6, 2],
      ['other', 6, 6, 0],
    ]);

    const refused = await run(dataDir, plain, ['stages', '--by', 'officer']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('privacy.perOfficerStatistics');
    expect(refused.stdout).toBe('');

    const open = config(root, { privacy: { perOfficerStatistics: true, minGroupSize: 2 } });
    const csv = await run(dataDir, open, ['stages', '--by', 'officer', '--csv']);
    expect(csv.code).toBe(0);
    const lines = csv.stdout.trimEnd().split('\r\n');
    expect(lines[0]).toMatch(/^officer,cameras,shifts,shiftHours,displayActivations,escalated,escalationRate,/);
    expect(lines).toHaveLength(1 + 6 + 1);
    // An officer's name is text a spreadsheet must not run.
    expect(lines).toContain(`"'=HYPERLINK(""x"")",1,2,16,2,0,0,0,0,12.5,0,,,2,120,120,`);
    expect(lines.at(-1)).toMatch(/^all,6,12,96,12,2,0.166667,/);

    const bad = await run(dataDir, config(root, { privacy: { minGroupSize: 0 } }), ['stages']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('privacy.minGroupSize');
  });

  it('counts an officer who moved to another unit with the unit they were in at each shift', async () => {
    const dataDir = fillStore();
    const root = path.dirname(dataDir);
    const plain = config(root, {});
    for (let c = 1; c <= 6; c++) {
      const unit = c <= 3 ? 'north' : 'south';
      const r = await run(dataDir, plain, [
        'assign',
        `DU-${c}`,
        `officer-${c}`,
        '--unit',
        unit,
        '--from',
        '2026-11-01T00:00:00Z',
      ]);
      expect(r.stderr).toBe('');
    }
    // officer-1 (DU-1, who escalates both shifts) joins south between the two days.
    const moved = await run(dataDir, plain, [
      'assign',
      'DU-1',
      'officer-1',
      '--unit',
      'south',
      '--from',
      '2026-12-01T00:00:00Z',
    ]);
    expect(moved.code).toBe(0);
    const byUnit = JSON.parse((await run(dataDir, plain, ['stages', '--by', 'unit', '--json'])).stdout) as StagesJson;
    // north: DU-1..3 on day one, DU-2..3 on day two; south: DU-4..6 both days and DU-1 on day two.
    expect(byUnit.groups?.map((g) => [g.group, g.shifts, g.displayActivations, g.escalated])).toEqual([
      ['north', 5, 5, 1],
      ['south', 7, 7, 1],
    ]);
  });
});
