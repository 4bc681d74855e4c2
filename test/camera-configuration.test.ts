import { afterEach, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { allVerified, TestDock, waitFor, type CustodyJson } from './support/harness.js';
import { openStore } from '../src/store/db.js';

let dock: TestDock;
afterEach(async () => {
  await dock?.cleanup();
});

interface SettingsJson {
  serial: string;
  profile: string | null;
  settings: Record<string, string | number | boolean> | null;
  pending: Record<string, { wanted: unknown; reason: string }>;
  configuredAt: string | null;
}
interface EventJson {
  camera: string;
  at: string;
  type: string;
}

const SETTINGS = { preRecordSeconds: 30, displayBrightness: 80, wifi: true, gps: true, resolution: '1080p' };
const WINTER = { preRecordSeconds: 60, wifi: false, displayBrightness: 'low', nightVision: true };
const CONFIG = {
  settings: {
    profiles: { winter: WINTER, standard: { wifi: true } },
    assign: [
      { serial: 'DU-0099', profile: 'standard' },
      { model: 'SimCam 2', profile: 'winter' },
    ],
  },
};

const iso = (ms: number) => new Date(ms).toISOString();

describe('the dock configures a simulated camera', () => {
  it('sets its clock and settings through the slot files, keeps its event log once with true times, and records both in custody', async () => {
    dock = new TestDock(CONFIG);
    const base = Math.floor(Date.now() / 1000) * 1000 - 3 * 3_600_000;
    // Written by a camera whose clock ran 42 s behind.
    const before = [
      { at: iso(base), type: 'power.on' },
      { at: iso(base + 60_000), type: 'display.on' },
      { at: iso(base + 90_000), type: 'recording.start' },
    ];
    const batteryLog = [
      { at: iso(base), percent: 100, charging: false },
      { at: iso(base + 3_600_000), percent: 90, charging: false },
    ];
    const spec = { clockOffsetSeconds: -42, settings: SETTINGS, eventLog: before, batteryLog };
    dock.dock('dock1-01', { serial: 'DU-0042', files: [{ rel: 'DCIM/REC0001.MP4', size: 50_000 }], spec });
    const d = dock.start();
    await allVerified(dock, 1);
    await d.waitForEvent('camera.settings_pending');

    const slot = path.join(dock.simDir, 'dock1-01');
    const wanted = { ...SETTINGS, preRecordSeconds: 60, wifi: false };
    expect(JSON.parse(readFileSync(path.join(slot, 'settings.json'), 'utf8'))).toEqual(wanted);
    const clock = JSON.parse(readFileSync(path.join(slot, 'clock.json'), 'utf8')) as { setTo: string };
    expect(Math.abs(Date.parse(clock.setTo) - Date.now())).toBeLessThan(60_000);
    // The slot's own files are the camera's, never footage.
    expect((await dock.recordings()).map((r) => r.sourcePath)).toEqual(['DCIM/REC0001.MP4']);

    const [settings] = await dock.json<SettingsJson[]>(['settings', 'DU-0042']);
    expect(settings).toEqual({
      serial: 'DU-0042',
      profile: 'winter',
      settings: wanted,
      pending: {
        displayBrightness: expect.objectContaining({ wanted: 'low', reason: expect.stringContaining('number') }),
        nightVision: expect.objectContaining({ wanted: true, reason: 'the camera does not report this setting' }),
      },
      configuredAt: expect.any(String),
      reportedAt: expect.any(String),
    });
    expect(await dock.json<SettingsJson[]>(['settings'])).toEqual([settings]);
    const table = await dock.cli(['settings', 'DU-0042']);
    expect(table.stdout).toContain('profile winter');
    expect(table.stdout).toMatch(/nightVision\s+-\s+true\s+the camera does not report this setting/);

    const shifted = before.map((e) => ({ camera: 'DU-0042', at: iso(Date.parse(e.at) + 42_000), type: e.type }));
    expect(await dock.json<EventJson[]>(['events', '--camera', 'DU-0042'])).toEqual(shifted);
    expect((await dock.cli(['events', '--camera', 'DU-0042'])).stdout).toContain(`${shifted[1]!.at}  display.on`);

    const custody = await dock.json<CustodyJson[]>(['custody', '--camera', 'DU-0042']);
    const clockSet = custody.filter((e) => e.type === 'camera.clock_set');
    expect(clockSet).toEqual([
      expect.objectContaining({
        details: expect.objectContaining({ skewSeconds: expect.closeTo(-42, 0), setTo: clock.setTo }),
      }),
    ]);
    const changed = custody.filter((e) => e.type === 'camera.settings_changed');
    expect(changed).toEqual([
      expect.objectContaining({
        details: { profile: 'winter', before: SETTINGS, after: wanted, changed: ['preRecordSeconds', 'wifi'] },
      }),
    ]);
    // Configured before the recordings were listed, and the docking carried the skew from before the clock was set.
    const types = custody.map((e) => e.type);
    expect(types.indexOf('camera.settings_changed')).toBeLessThan(types.indexOf('recording.discovered'));
    expect(custody.find((e) => e.type === 'camera.docked')!.details.clockSkewSeconds).toBeCloseTo(-42, 0);
    expect(d.events('camera.settings_pending')).toHaveLength(1);

    // The camera comes back with its ring buffer handed again, now on the dock's clock.
    dock.undock('dock1-01');
    await d.waitForEvent('camera.undocked');
    const later = Math.floor(Date.now() / 1000) * 1000 - 60_000;
    const after = [
      { at: iso(later), type: 'power.on' },
      { at: iso(later + 5_000), type: 'display.off' },
    ];
    dock.writeCameraJson('dock1-01', {
      serial: 'DU-0042',
      model: 'SimCam 2',
      firmware: '4.1.7',
      ...spec,
      eventLog: [...before, ...after],
    });
    await waitFor('second docking', async () => d.events('camera.docked').length === 2);
    await waitFor('events of the second docking', async () => d.events('camera.events_ingested').length === 2);

    const events = await dock.json<EventJson[]>(['events', '--camera', 'DU-0042']);
    expect(events).toEqual([...shifted, ...after.map((e) => ({ camera: 'DU-0042', ...e }))]);
    expect(d.events('camera.events_ingested').map((l) => l.events)).toEqual([3, 2]);

    const again = await dock.json<CustodyJson[]>(['custody', '--camera', 'DU-0042']);
    expect(again.filter((e) => e.type === 'camera.clock_set')).toHaveLength(1);
    expect(again.filter((e) => e.type === 'camera.settings_changed')).toHaveLength(1);
    expect(again.filter((e) => e.type === 'camera.docked').at(-1)!.details.clockSkewSeconds).toBeCloseTo(0, 0);
    // The battery log is recognised by the camera's timestamps too, not stored again 42 s later.
    const [battery] = await dock.json<Array<{ samples: Array<{ at: number; source: string }> }>>([
      'battery',
      'DU-0042',
    ]);
    expect(battery!.samples.filter((x) => x.source === 'device').map((x) => iso(x.at))).toEqual(
      batteryLog.map((e) => iso(Date.parse(e.at) + 42_000)),
    );
    const [still] = await dock.json<SettingsJson[]>(['settings', 'DU-0042']);
    expect(still!.settings).toEqual(wanted);
    expect(Object.keys(still!.pending).sort()).toEqual(['displayBrightness', 'nightVision']);
    expect((await dock.json<{ chain: { ok: boolean } }>(['verify'])).chain.ok).toBe(true);

    // The admin gives the camera another profile: until it docks again, that is what is pending.
    dock.writeConfig({
      settings: { profiles: { standard: { wifi: true, preRecordSeconds: 60 } }, assign: [{ profile: 'standard' }] },
    });
    const [moved] = await dock.json<SettingsJson[]>(['settings', 'DU-0042']);
    expect(moved).toMatchObject({
      profile: 'standard',
      settings: wanted,
      pending: { wifi: { wanted: true, reported: false, reason: expect.stringContaining('next') } },
    });
    expect(Object.keys(moved!.pending)).toEqual(['wifi']);
  });

  it('only reads settings without a settings section, and leaves a camera within clock.maxSkewSeconds alone', async () => {
    dock = new TestDock({ clock: { maxSkewSeconds: 5 } });
    dock.dock('s1', {
      serial: 'DU-0050',
      files: [{ rel: 'a.mp4', size: 1000 }],
      spec: { clockOffsetSeconds: 3, settings: SETTINGS },
    });
    dock.dock('s2', { serial: 'DU-0051', files: [{ rel: 'b.mp4', size: 1000 }] });
    dock.start();
    await allVerified(dock, 2);
    const rows = await waitFor('settings of both', async () => {
      const r = await dock.json<SettingsJson[]>(['settings']);
      return r.length === 2 ? r : null;
    });
    expect(rows).toEqual([
      {
        serial: 'DU-0050',
        profile: null,
        settings: SETTINGS,
        pending: {},
        configuredAt: null,
        reportedAt: expect.any(String),
      },
      {
        serial: 'DU-0051',
        profile: null,
        settings: null,
        pending: {},
        configuredAt: null,
        reportedAt: expect.any(String),
      },
    ]);
    expect(dock.cameraFileExists('s1', 'settings.json')).toBe(false);
    expect(dock.cameraFileExists('s1', 'clock.json')).toBe(false);
    const custody = await dock.json<CustodyJson[]>(['custody', '--camera', 'DU-0050']);
    expect(custody.map((e) => e.type)).not.toContain('camera.clock_set');
  });

  it('refuses an unknown profile in settings.assign (exit 2 naming the key) and an unknown serial (exit 1 naming it)', async () => {
    dock = new TestDock({
      settings: { profiles: { winter: { wifi: false } }, assign: [{ model: 'SimCam 2', profile: 'summer' }] },
    });
    const bad = await dock.cli(['settings']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('settings.assign[0].profile: unknown profile "summer"');
    dock.writeConfig(CONFIG);
    // A store as a daemon leaves it: without one, every read command says there is no dockd data.
    openStore(dock.dataDir).close();
    for (const args of [
      ['settings', 'DU-404'],
      ['events', '--camera', 'DU-404'],
    ]) {
      const r = await dock.cli([...args, '--json']);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('no camera DU-404');
    }
    expect((await dock.cli(['events'])).code).toBe(2);
  });
});
