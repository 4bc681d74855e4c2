import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { DriverError, type CameraSession, type CameraSettings, type SessionCapabilities } from '../drivers/types.js';
import { CameraConfigurator, trueTimes } from '../src/dock/configure.js';
import { CustodyLog } from '../src/store/custody-log.js';
import { openStore, type Db } from '../src/store/db.js';
import {
  cameraEvents,
  cameraSettings,
  profileHistory,
  pruneCameraEvents,
  storeCameraEvents,
} from '../src/store/camera-settings.js';
import { parseConfig } from '../src/config.js';

const dirs: string[] = [];
const dbs: Db[] = [];
afterEach(() => {
  for (const db of dbs.splice(0)) db.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A camera with a settings menu that refuses some values, as a real one refuses an out-of-range brightness. */
function camera(
  own: CameraSettings,
  opts: { refuses?: string[]; caps?: Partial<SessionCapabilities>; clockFails?: boolean } = {},
) {
  const current = { ...own };
  const applied: CameraSettings[] = [];
  const clockSets: Date[] = [];
  const session = {
    capabilities: { resume: true, delete: true, clock: true, settings: true, ...opts.caps },
    identity: async () => ({ serial: 'DU-7', model: 'BodyCam X', firmware: '1' }),
    battery: async () => null,
    list: async function* () {},
    read: async () => {
      throw new Error('not used');
    },
    stat: async () => null,
    delete: async () => undefined,
    close: async () => undefined,
    setClock: async (d: Date) => {
      if (opts.clockFails) throw new DriverError('permanent', 'ptp-0x2005', 'operation not supported');
      clockSets.push(d);
    },
    settings: async () => ({ ...current }),
    applySettings: async (partial: CameraSettings) => {
      for (const k of Object.keys(partial))
        if (opts.refuses?.includes(k)) throw new DriverError('permanent', 'refused', `value out of range for ${k}`);
      applied.push(partial);
      Object.assign(current, partial);
    },
  } satisfies CameraSession;
  return { session, applied, clockSets, current };
}

function setup(config: unknown) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dockd-configure-'));
  dirs.push(dir);
  const db = openStore(dir);
  dbs.push(db);
  const custody = new CustodyLog(db);
  const cfg = parseConfig(config, dir);
  const configurator = new CameraConfigurator(db, custody, {
    clock: cfg.clock,
    settings: cfg.settings,
    earliest: () => 0,
  });
  return { db, custody, configurator };
}

const log = pino({ level: 'silent' });
const PROFILES = {
  settings: { profiles: { night: { brightness: 20, wifi: false, ir: true } }, assign: [{ profile: 'night' }] },
};

describe('configuring a camera at docking', () => {
  it('sets what the camera takes, keeps what it refuses pending with its reason, and records the change once', async () => {
    const { db, custody, configurator } = setup(PROFILES);
    const cam = camera({ brightness: 80, wifi: true, ir: false }, { refuses: ['ir'] });
    await configurator.atDocking({
      serial: 'DU-7',
      model: 'BodyCam X',
      visit: 1,
      session: cam.session,
      skew: 0.4,
      log,
    });
    expect(cam.current).toEqual({ brightness: 20, wifi: false, ir: false });
    const [rec] = cameraSettings(db, 'DU-7');
    expect(rec).toMatchObject({
      profile: 'night',
      settings: { brightness: 20, wifi: false, ir: false },
      configuredAt: expect.any(String),
    });
    expect(rec!.pending).toEqual({ ir: { wanted: true, reason: 'the camera refused it: value out of range for ir' } });
    const changed = [...custody.all()].filter((e) => e.type === 'camera.settings_changed');
    expect(changed.map((e) => e.details)).toEqual([
      {
        profile: 'night',
        before: { brightness: 80, wifi: true, ir: false },
        after: { brightness: 20, wifi: false, ir: false },
        changed: ['brightness', 'wifi'],
      },
    ]);
    // Not on its profile while something is pending: battery drain is not credited to it yet.
    expect(profileHistory(db, 'DU-7')).toEqual([]);
    expect(cam.clockSets).toEqual([]);
  });

  it('notes from when a camera runs its profile, once', async () => {
    const { db, configurator } = setup(PROFILES);
    const cam = camera({ brightness: 80, wifi: true, ir: false });
    await configurator.atDocking({ serial: 'DU-7', model: 'BodyCam X', visit: 1, session: cam.session, skew: 0, log });
    await configurator.atDocking({ serial: 'DU-7', model: 'BodyCam X', visit: 2, session: cam.session, skew: 0, log });
    expect(profileHistory(db, 'DU-7')).toEqual([{ from: expect.any(Number), profile: 'night' }]);
  });

  it('holds back settings that could disturb recordings until the camera is cleared', async () => {
    const { db, custody, configurator } = setup(PROFILES);
    const cam = camera({ brightness: 80, wifi: false, ir: true }, { caps: { settingsDisturbRecordings: true } });
    await configurator.atDocking({ serial: 'DU-7', model: 'BodyCam X', visit: 1, session: cam.session, skew: 0, log });
    expect(cam.applied).toEqual([]);
    expect(cameraSettings(db, 'DU-7')[0]!.pending).toEqual({
      brightness: expect.objectContaining({ wanted: 20, reason: expect.stringContaining('disturb') }),
    });
    await configurator.cleared('DU-7');
    expect(cam.applied).toEqual([{ brightness: 20 }]);
    expect(cameraSettings(db, 'DU-7')[0]).toMatchObject({
      settings: { brightness: 20, wifi: false, ir: true },
      pending: {},
    });
    expect([...custody.all()].filter((e) => e.type === 'camera.settings_changed')).toHaveLength(1);
    // Cleared again (new recordings came and went): nothing is applied twice.
    await configurator.cleared('DU-7');
    expect(cam.applied).toHaveLength(1);
  });

  it('drops settings held back for a camera that docks again before it was cleared', async () => {
    const { configurator } = setup(PROFILES);
    const first = camera({ brightness: 80, wifi: false, ir: true }, { caps: { settingsDisturbRecordings: true } });
    await configurator.atDocking({
      serial: 'DU-7',
      model: 'BodyCam X',
      visit: 1,
      session: first.session,
      skew: 0,
      log,
    });
    const second = camera({ brightness: 20, wifi: false, ir: true }, { caps: { settingsDisturbRecordings: true } });
    await configurator.atDocking({
      serial: 'DU-7',
      model: 'BodyCam X',
      visit: 2,
      session: second.session,
      skew: 0,
      log,
    });
    await configurator.cleared('DU-7');
    expect([first.applied, second.applied]).toEqual([[], []]);
  });

  it('shows the clock pending when it cannot be read or is refused, and sets nothing', async () => {
    const { db, custody, configurator } = setup({});
    const unreadable = camera({});
    await configurator.atDocking({
      serial: 'DU-7',
      model: 'BodyCam X',
      visit: 1,
      session: unreadable.session,
      skew: null,
      log,
    });
    expect(unreadable.clockSets).toEqual([]);
    expect(cameraSettings(db, 'DU-7')[0]!.pending).toEqual({
      clock: expect.objectContaining({ reason: "the camera's clock cannot be read" }),
    });
    const refusing = camera({}, { clockFails: true });
    await configurator.atDocking({
      serial: 'DU-7',
      model: 'BodyCam X',
      visit: 2,
      session: refusing.session,
      skew: -30,
      log,
    });
    expect(cameraSettings(db, 'DU-7')[0]!.pending.clock!.reason).toContain('operation not supported');
    expect([...custody.all()].map((e) => e.type)).not.toContain('camera.clock_set');
  });

  it('pends a whole profile for a camera that cannot be configured', async () => {
    const { db, configurator } = setup(PROFILES);
    const cam = camera({}, { caps: { settings: false } });
    await configurator.atDocking({ serial: 'DU-7', model: 'BodyCam X', visit: 1, session: cam.session, skew: 0, log });
    expect(cameraSettings(db, 'DU-7')[0]).toMatchObject({
      settings: null,
      profile: 'night',
      pending: { brightness: expect.anything(), wifi: expect.anything(), ir: expect.anything() },
    });
  });
});

describe('event-log true times', () => {
  it('moves camera times by the skew and drops unknown types, impossible times and pruned ones', () => {
    const now = Date.UTC(2026, 11, 5);
    const entries = [
      { at: new Date(now - 3_600_000), type: 'display.on' },
      { at: new Date(now - 3_600_000), type: 'self.destruct' },
      { at: new Date(Date.UTC(1970, 0, 1)), type: 'power.on' },
      { at: new Date(now + 3 * 86_400_000), type: 'power.off' },
      { at: new Date(now - 40 * 86_400_000), type: 'power.on' },
      { at: 'yesterday', type: 'power.on' },
    ];
    expect(trueTimes(entries, -42, now - 30 * 86_400_000, now)).toEqual([
      { at: now - 3_600_000 + 42_000, cameraAt: now - 3_600_000, type: 'display.on' },
    ]);
  });
});

describe('stored event log', () => {
  it('keeps an entry once by its camera timestamp and type, with the true time of its first storing, and prunes by true time', async () => {
    const { db } = setup({});
    const t = Date.UTC(2026, 11, 1, 8);
    expect(
      storeCameraEvents(db, 'DU-7', 1, [
        { at: t + 42_000, cameraAt: t, type: 'power.on' },
        { at: t + 42_000, cameraAt: t, type: 'display.on' },
      ]),
    ).toBe(2);
    // Handed again after the clock was set: the skew is now 0, the camera's timestamp unchanged.
    expect(
      storeCameraEvents(db, 'DU-7', 2, [
        { at: t, cameraAt: t, type: 'power.on' },
        { at: t + 60_000, cameraAt: t + 60_000, type: 'power.off' },
      ]),
    ).toBe(1);
    expect([...cameraEvents(db, 'DU-7')]).toEqual([
      { at: t + 42_000, type: 'power.on' },
      { at: t + 42_000, type: 'display.on' },
      { at: t + 60_000, type: 'power.off' },
    ]);
    expect(await pruneCameraEvents(db, t + 50_000, undefined, 1)).toBe(2);
    expect([...cameraEvents(db, 'DU-7')].map((e) => e.type)).toEqual(['power.off']);
    expect(await pruneCameraEvents(db, 0)).toBe(0);
  });
});
