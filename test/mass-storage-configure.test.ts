/**
 * A mass-storage camera of the example profile through the driver, on a fake sysfs and
 * mountinfo (fixtures/sysfs/): its clock, settings and event log through the files on its
 * volume, and its recordings never touched by any of it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { CameraSession, DeviceInfo } from '../drivers/types.js';
import type { MassStorageDriverOptions } from '../drivers/mass-storage/index.js';
import { formatLocalTime, parseLocalTime } from '../drivers/mass-storage/local-time.js';
import { MAX_EVENT_LOG_FILE } from '../drivers/mass-storage/camera-files.js';
import { fakeDockPc, fakePcDriver, setConnectedDuration, type FakeDockPc } from './support/sysfs.js';
import { MemoryLogger, recordedInfo } from './support/usb.js';
import { rejection } from './support/driver-error.js';

/** QEMU's disk (port 1-1 of the fixture) with the example profile's VID:PID. */
const EXAMPLE_CAMERA: DeviceInfo = { ...recordedInfo('qemu-usb-storage'), vendorId: 0x1209, productId: 0x0001 };
const HOUR = 3600_000;
/** How long ago the fixture's kernel says the camera was connected. */
const CONNECTED_MS = 4180;

const SETTINGS = [
  '# Acme BWC-M',
  'preRecordSeconds=10',
  'resolution=1080p',
  'displayBrightness=80',
  'wifi=on',
  'unitName=UNIT 7',
  'ledPattern=3',
  '',
].join('\r\n');

const roots: string[] = [];
const sessions: CameraSession[] = [];
afterEach(async () => {
  for (const s of sessions.splice(0)) await s.close().catch(() => undefined);
  for (const r of roots.splice(0)) rmSync(r, { recursive: true, force: true });
});

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

interface Camera {
  pc: FakeDockPc;
  vol: string;
  log: MemoryLogger;
  /** Every file of the volume but the profile's, with its hash: the recordings and whatever else. */
  untouched(): Record<string, string>;
  file(rel: string): string;
  open(device?: DeviceInfo, opts?: MassStorageDriverOptions): Promise<CameraSession>;
}

/** The camera wrote its clock, an hour behind the dock's, into TIME.TXT when it was connected. */
function camera(): Camera {
  const root = mkdtempSync(path.join(os.tmpdir(), 'dockd-mscfg-'));
  roots.push(root);
  const pc = fakeDockPc(root);
  setConnectedDuration(pc, '1-1', CONNECTED_MS);
  const vol = pc.camA;
  const put = (rel: string, data: Buffer | string) => {
    mkdirSync(path.dirname(path.join(vol, rel)), { recursive: true });
    writeFileSync(path.join(vol, rel), data);
  };
  put('DCIM/100ACME/A0001.MP4', randomBytes(300_000));
  put('DCIM/100ACME/A0002.MP4', randomBytes(1000));
  put('SETTINGS.TXT', SETTINGS);
  put('TIME.TXT', `${formatLocalTime(new Date(Date.now() - CONNECTED_MS - HOUR))}\r\n`);
  put('EVENTS.LOG', '2026-12-05 06:00:42,power.on\n2026-12-05 06:01:00,recording.start\nnot an entry\n');
  const log = new MemoryLogger();
  const profileFiles = new Set(['SETTINGS.TXT', 'TIME.TXT', 'EVENTS.LOG']);
  const untouched = () => {
    const out: Record<string, string> = {};
    const walk = (rel: string) => {
      for (const e of readdirSync(path.join(vol, rel), { withFileTypes: true })) {
        const r = rel ? `${rel}/${e.name}` : e.name;
        if (e.isDirectory()) walk(r);
        else if (!profileFiles.has(r)) out[r] = sha(readFileSync(path.join(vol, r)));
      }
    };
    walk('');
    return out;
  };
  return {
    pc,
    vol,
    log,
    untouched,
    file: (rel) => readFileSync(path.join(vol, rel), 'latin1'),
    async open(device = EXAMPLE_CAMERA, opts = {}) {
      const s = await fakePcDriver(pc, opts).open(device, log);
      sessions.push(s);
      return s;
    },
  };
}

async function ids(s: CameraSession): Promise<string[]> {
  const out: string[] = [];
  for await (const e of s.list()) out.push(e.id);
  return out.sort();
}

describe('a mass-storage camera with a profile', () => {
  it('says what it can do, and a camera without a profile offers only its recordings', async () => {
    const cam = camera();
    const s = await cam.open();
    expect(s.capabilities).toEqual({
      resume: true,
      delete: true,
      clock: true,
      settings: true,
      eventLog: true,
      settingsDisturbRecordings: false,
    });
    expect(cam.log.events('mass_storage.profile')).toMatchObject([
      { profile: 'example-bwc-m', matchedBy: 'VID:PID 1209:0001' },
    ]);
    await s.close();

    const plain = await cam.open(recordedInfo('qemu-usb-storage'));
    expect(plain.capabilities).toEqual({ resume: true, delete: true });
    expect([plain.clock, plain.setClock, plain.settings, plain.applySettings, plain.eventLog]).toEqual([
      undefined,
      undefined,
      undefined,
      undefined,
      undefined,
    ]);
    // The same disk, given the example's files by usb.massStorage.profiles.
    await plain.close();
    const assigned = await cam.open(recordedInfo('qemu-usb-storage'), { profiles: { '46f4:0001': 'example-bwc-m' } });
    expect(assigned.capabilities.settings).toBe(true);
  });

  it('reads its clock as the time it wrote at the connection plus the time since', async () => {
    const cam = camera();
    const s = await cam.open();
    const t0 = Date.now();
    const clock = await s.clock!();
    const skew = clock.getTime() - t0;
    // An hour behind, to the second the file holds.
    expect(skew).toBeGreaterThan(-HOUR - 1500);
    expect(skew).toBeLessThan(-HOUR + 1500);
  });

  it('sets its clock by writing the dock’s time at the connection, atomically, and then reads the dock’s time', async () => {
    const cam = camera();
    const before = cam.untouched();
    const s = await cam.open();
    const now = new Date();
    await s.setClock!(now);
    const written = parseLocalTime(cam.file('TIME.TXT').trimEnd())!;
    expect(cam.file('TIME.TXT')).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\n$/);
    expect(Math.abs(written.getTime() - (now.getTime() - CONNECTED_MS))).toBeLessThanOrEqual(1500);
    expect(Math.abs((await s.clock!()).getTime() - Date.now())).toBeLessThanOrEqual(1500);
    expect(readdirSync(cam.vol).sort()).toEqual(['DCIM', 'EVENTS.LOG', 'SETTINGS.TXT', 'TIME.TXT']);
    expect(cam.untouched()).toEqual(before);
  });

  it('calls a time file it cannot read a permanent error, so the clock is not set', async () => {
    const cam = camera();
    writeFileSync(path.join(cam.vol, 'TIME.TXT'), '1970-01-01 00:00:00 and then some\n');
    const s = await cam.open();
    expect(await rejection(s.clock!())).toMatchObject({ kind: 'permanent', code: 'bad-time' });
    rmSync(path.join(cam.vol, 'TIME.TXT'));
    expect(await rejection(s.clock!())).toMatchObject({ kind: 'permanent', code: 'ENOENT' });
  });

  it('reads its settings and changes only the lines of the keys it is given, keeping the camera’s own', async () => {
    const cam = camera();
    const before = cam.untouched();
    const s = await cam.open();
    expect(await s.settings!()).toEqual({
      preRecordSeconds: 10,
      resolution: '1080p',
      displayBrightness: 80,
      wifi: true,
      unitName: 'UNIT 7',
    });
    await s.applySettings!({ preRecordSeconds: 30, wifi: false });
    expect(cam.file('SETTINGS.TXT')).toBe(
      SETTINGS.replace('preRecordSeconds=10', 'preRecordSeconds=30').replace('wifi=on', 'wifi=off'),
    );
    expect(await s.settings!()).toMatchObject({ preRecordSeconds: 30, wifi: false, displayBrightness: 80 });
    expect(readdirSync(cam.vol).sort()).toEqual(['DCIM', 'EVENTS.LOG', 'SETTINGS.TXT', 'TIME.TXT']);
    expect(cam.untouched()).toEqual(before);
  });

  it('refuses a key the profile does not know or a value it does not allow, naming the key, and writes nothing', async () => {
    const cam = camera();
    const s = await cam.open();
    for (const [partial, message] of [
      [{ ledPattern: 3 }, "ledPattern: the camera's settings file has no such setting"],
      [{ preRecordSeconds: 'long' }, 'preRecordSeconds: the camera takes a whole number, not "long"'],
      [{ wifi: false, displayBrightness: 101 }, 'displayBrightness: the camera takes 0..100, not 101'],
    ] as const) {
      const err = await rejection(s.applySettings!(partial));
      expect(err).toMatchObject({ kind: 'permanent', message });
    }
    expect(cam.file('SETTINGS.TXT')).toBe(SETTINGS);
  });

  it('refuses a settings file too big to be one, and never follows a link out of the volume', async () => {
    const cam = camera();
    const s = await cam.open();
    writeFileSync(path.join(cam.vol, 'SETTINGS.TXT'), Buffer.alloc(65 * 1024, 0x41));
    expect(await rejection(s.settings!())).toMatchObject({ kind: 'permanent', code: 'too-big' });
    expect(await rejection(s.applySettings!({ wifi: false }))).toMatchObject({ kind: 'permanent', code: 'too-big' });
    rmSync(path.join(cam.vol, 'SETTINGS.TXT'));
    const outside = path.join(cam.pc.root, 'outside.txt');
    writeFileSync(outside, 'wifi=on\n');
    symlinkSync(outside, path.join(cam.vol, 'SETTINGS.TXT'));
    expect(await rejection(s.settings!())).toMatchObject({ kind: 'permanent', code: 'ELOOP' });
    expect(await rejection(s.applySettings!({ wifi: false }))).toMatchObject({ kind: 'permanent' });
    expect(readFileSync(outside, 'utf8')).toBe('wifi=on\n');
  });

  it('reads its event log on its own clock, counting the lines it skipped, and an absent log as empty', async () => {
    const cam = camera();
    const s = await cam.open();
    expect(await s.eventLog!()).toEqual([
      { at: new Date(2026, 11, 5, 6, 0, 42), type: 'power.on' },
      { at: new Date(2026, 11, 5, 6, 1, 0), type: 'recording.start' },
    ]);
    expect(cam.log.events('mass_storage.file_lines_skipped')).toMatchObject([
      { level: 'warn', file: 'EVENTS.LOG', skipped: 1, truncatedBytes: 0 },
    ]);
    rmSync(path.join(cam.vol, 'EVENTS.LOG'));
    expect(await s.eventLog!()).toEqual([]);
  });

  it('reads only the newest 4 MiB of a huge event log, and of those the newest 100,000 entries', async () => {
    const cam = camera();
    const entry = (i: number) => `${formatLocalTime(new Date(2026, 0, 1, 0, 0, i))},display.on\n`;
    const lines: string[] = [];
    // 16 MiB: garbage first, entries last.
    const garbage = Buffer.alloc(12 * 1024 * 1024, 0xff);
    for (let i = 0; i < 150_000; i++) lines.push(entry(i));
    const tail = Buffer.from(lines.join(''));
    writeFileSync(path.join(cam.vol, 'EVENTS.LOG'), Buffer.concat([garbage, tail]));
    const s = await cam.open();
    const events = await s.eventLog!();
    // The whole lines in the last 4 MiB, of which the newest 100,000.
    const whole = Math.floor(MAX_EVENT_LOG_FILE / entry(0).length);
    expect(events).toHaveLength(100_000);
    expect(events[0]).toEqual({ at: new Date(2026, 0, 1, 0, 0, 50_000), type: 'display.on' });
    expect(events.at(-1)).toEqual({ at: new Date(2026, 0, 1, 0, 0, 149_999), type: 'display.on' });
    expect(cam.log.events('mass_storage.file_lines_skipped')).toMatchObject([
      {
        file: 'EVENTS.LOG',
        skipped: 0,
        truncatedBytes: garbage.length + tail.length - MAX_EVENT_LOG_FILE,
        droppedEntries: whole - 100_000,
      },
    ]);
  });

  it('never lists its own files or a temporary file as recordings, and never deletes them', async () => {
    const cam = camera();
    // A temporary file a dock that lost power mid-write left behind.
    writeFileSync(path.join(cam.vol, '.SETTINGS.TXT.dockd'), 'wifi=o');
    mkdirSync(path.join(cam.vol, 'MISC'));
    writeFileSync(path.join(cam.vol, 'MISC', 'NOTES.TXT'), 'a file of the camera’s');
    const s = await cam.open(EXAMPLE_CAMERA, { folders: [''] });
    expect(await ids(s)).toEqual(['DCIM/100ACME/A0001.MP4', 'DCIM/100ACME/A0002.MP4', 'MISC/NOTES.TXT']);
    for (const id of ['SETTINGS.TXT', 'time.txt', 'EVENTS.LOG'])
      expect(await rejection(s.delete(id))).toMatchObject({ kind: 'permanent', code: 'camera-file' });
    expect(readdirSync(cam.vol).sort()).toEqual([
      '.SETTINGS.TXT.dockd',
      'DCIM',
      'EVENTS.LOG',
      'MISC',
      'SETTINGS.TXT',
      'TIME.TXT',
    ]);
    await s.applySettings!({ wifi: false });
    expect(readdirSync(cam.vol)).not.toContain('.SETTINGS.TXT.dockd');
  });

  it('calls the camera gone once it is unplugged', async () => {
    const cam = camera();
    const s = await cam.open();
    rmSync(path.join(cam.pc.sys, 'bus/usb/devices/1-1'));
    // Each call's rejection is caught at once: awaited one by one, a later one could reject unheard.
    const errors = await Promise.all(
      [s.clock!(), s.setClock!(new Date()), s.settings!(), s.applySettings!({ wifi: false }), s.eventLog!()].map(
        rejection,
      ),
    );
    for (const e of errors) expect(e).toMatchObject({ kind: 'deviceGone' });
    expect(cam.file('SETTINGS.TXT')).toBe(SETTINGS);
  });
});
