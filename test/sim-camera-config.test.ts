import { afterEach, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { SimCameraSession } from '../drivers/simulated/session.js';
import { parseCameraFile, CameraFileError } from '../drivers/simulated/camera-file.js';
import { DriverError, type RecordingEntry } from '../drivers/types.js';

const roots: string[] = [];
afterEach(() => {
  for (const r of roots.splice(0)) rmSync(r, { recursive: true, force: true });
});

const SETTINGS = { preRecordSeconds: 30, displayBrightness: 80, wifi: true, gps: true, resolution: '1080p' };

function slot(spec: Record<string, unknown>, files: Record<string, string> = {}): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dockd-simcfg-'));
  roots.push(dir);
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    writeFileSync(path.join(dir, rel), text);
  }
  writeFileSync(path.join(dir, 'camera.json'), JSON.stringify({ serial: 'DU-0042', ...spec }));
  return dir;
}

const open = (dir: string) => SimCameraSession.open(dir, pino({ level: 'silent' }));

async function listed(s: SimCameraSession): Promise<string[]> {
  const out: RecordingEntry[] = [];
  for await (const r of s.list()) out.push(r);
  return out.map((r) => r.path).sort();
}

describe('camera.json settings and eventLog', () => {
  it('reads flat settings and an event log with the contract event types', () => {
    const spec = parseCameraFile(
      JSON.stringify({
        serial: 'A',
        settings: SETTINGS,
        eventLog: [{ at: '2026-11-27T06:00:00Z', type: 'display.on' }],
      }),
    );
    expect(spec.settings).toEqual(SETTINGS);
    expect(spec.eventLog).toEqual([{ at: new Date('2026-11-27T06:00:00Z'), type: 'display.on' }]);
    expect(parseCameraFile('{"serial":"A"}')).toMatchObject({ settings: null, eventLog: [] });
  });

  it.each([
    [{ settings: [1] }, 'settings must be an object'],
    [{ settings: { wifi: { on: true } } }, 'settings.wifi must be a string, a number or true/false'],
    [{ settings: { gps: null } }, 'settings.gps must be'],
    [{ eventLog: {} }, 'eventLog must be an array'],
    [{ eventLog: [{ at: 'yesterday', type: 'power.on' }] }, 'eventLog[0].at must be an ISO-8601 time'],
    [
      {
        eventLog: [
          { at: '2026-11-27T06:00:00Z', type: 'power.on' },
          { at: '2026-11-27T06:00:00Z', type: 'reboot' },
        ],
      },
      'eventLog[1].type must be one of power.on',
    ],
  ])('refuses %j naming the field', (extra, message) => {
    expect(() => parseCameraFile(JSON.stringify({ serial: 'A', ...extra }))).toThrow(CameraFileError);
    expect(() => parseCameraFile(JSON.stringify({ serial: 'A', ...extra }))).toThrow(message);
  });
});

describe('configuring a simulated camera', () => {
  it('says what it can do: settings only when camera.json reports some', async () => {
    expect((await open(slot({ settings: SETTINGS }))).capabilities).toMatchObject({
      clock: true,
      settings: true,
      eventLog: true,
      settingsDisturbRecordings: false,
    });
    expect((await open(slot({}))).capabilities.settings).toBe(false);
  });

  it('writes the complete wanted settings into settings.json atomically and then reports them', async () => {
    const dir = slot({ settings: SETTINGS });
    const s = await open(dir);
    await s.applySettings({ wifi: false, preRecordSeconds: 60 });
    expect(JSON.parse(readFileSync(path.join(dir, 'settings.json'), 'utf8'))).toEqual({
      ...SETTINGS,
      wifi: false,
      preRecordSeconds: 60,
    });
    expect(await s.settings()).toEqual({ ...SETTINGS, wifi: false, preRecordSeconds: 60 });
    // A later change keeps the earlier one: the file always holds every wanted value.
    await s.applySettings({ gps: false });
    expect(JSON.parse(readFileSync(path.join(dir, 'settings.json'), 'utf8'))).toEqual({
      ...SETTINGS,
      wifi: false,
      preRecordSeconds: 60,
      gps: false,
    });
    expect(readdirSync(dir).filter((n) => n.startsWith('.'))).toEqual([]);
  });

  it('does not write settings.json when the camera already has the wanted values', async () => {
    const dir = slot({ settings: SETTINGS });
    await (await open(dir)).applySettings({ wifi: true, resolution: '1080p' });
    expect(existsSync(path.join(dir, 'settings.json'))).toBe(false);
  });

  it('refuses a key it does not report and a value of another type, naming the key', async () => {
    const dir = slot({ settings: SETTINGS });
    const s = await open(dir);
    await expect(s.applySettings({ nightVision: true })).rejects.toMatchObject({
      kind: 'permanent',
      message: expect.stringContaining('nightVision'),
    });
    await expect(s.applySettings({ wifi: 'off' })).rejects.toMatchObject({
      kind: 'permanent',
      message: expect.stringContaining('wifi'),
    });
    await expect(s.applySettings({ wifi: false })).resolves.toBeUndefined();
    await expect((await open(slot({}))).applySettings({ wifi: false })).rejects.toBeInstanceOf(DriverError);
    expect(existsSync(path.join(dir, 'settings.json'))).toBe(true);
  });

  it('ignores keys of settings.json the camera does not report', async () => {
    const dir = slot(
      { settings: SETTINGS },
      { 'settings.json': JSON.stringify({ wifi: false, laser: true, gps: 'no' }) },
    );
    expect(await (await open(dir)).settings()).toEqual({ ...SETTINGS, wifi: false });
  });

  it('runs on the dock clock while clock.json exists and on its own offset again once it is removed', async () => {
    const dir = slot({ clockOffsetSeconds: -42 });
    const s = await open(dir);
    expect(((await s.clock()).getTime() - Date.now()) / 1000).toBeCloseTo(-42, 0);
    const set = new Date();
    await s.setClock(set);
    expect(JSON.parse(readFileSync(path.join(dir, 'clock.json'), 'utf8'))).toEqual({ setTo: set.toISOString() });
    expect(Math.abs((await s.clock()).getTime() - Date.now())).toBeLessThan(1000);
    rmSync(path.join(dir, 'clock.json'));
    expect(((await s.clock()).getTime() - Date.now()) / 1000).toBeCloseTo(-42, 0);
  });

  it('hands its logs with the timestamps they were written with, also after its clock was set', async () => {
    const eventLog = [
      { at: '2026-11-27T06:00:00.000Z', type: 'power.on' },
      { at: '2026-11-27T06:05:00.000Z', type: 'recording.start' },
    ];
    const batteryLog = [{ at: '2026-11-27T06:00:00.000Z', percent: 100, charging: false }];
    const s = await open(slot({ clockOffsetSeconds: -42, eventLog, batteryLog }));
    await s.setClock(new Date());
    expect((await s.eventLog()).map((e) => ({ at: e.at.toISOString(), type: e.type }))).toEqual(eventLog);
    expect((await s.deviceLog()).map((e) => e.at.toISOString())).toEqual([batteryLog[0]!.at]);
  });

  it('never lists settings.json or clock.json as recordings, only at the top of the slot', async () => {
    const dir = slot({ settings: SETTINGS }, { 'DCIM/settings.json': 'footage', 'REC1.MP4': 'x' });
    const s = await open(dir);
    await s.applySettings({ wifi: false });
    await s.setClock(new Date());
    expect(await listed(s)).toEqual(['DCIM/settings.json', 'REC1.MP4']);
  });

  it('reports a slot that vanished while being configured as a camera gone', async () => {
    const dir = slot({ settings: SETTINGS });
    const s = await open(dir);
    rmSync(dir, { recursive: true });
    await expect(s.setClock(new Date())).rejects.toMatchObject({ kind: 'deviceGone' });
  });
});
