/**
 * A mass-storage camera of the example profile configured at docking (issue 24), the whole way:
 * the dock with its configurator, the ingest engine and the real mass-storage driver on a fake
 * sysfs and mountinfo. Its clock and settings are set through the files on its volume, its event
 * log is stored with true times, both changes are in custody, and its recordings are offloaded,
 * verified and deleted as from any other camera, while its own files stay on it.
 */
import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { DeviceInfo } from '../drivers/types.js';
import { formatLocalTime, parseLocalTime } from '../drivers/mass-storage/local-time.js';
import { cameraEvents, cameraSettings } from '../src/store/camera-settings.js';
import { cleanupAfterEach, configuringDock, until } from './support/configuring-dock.js';
import { sha256 } from './support/harness.js';
import { fakeDockPc, fakePcDriver, setConnectedDuration } from './support/sysfs.js';
import { recordedInfo } from './support/usb.js';

/** QEMU's disk on port 1-1 of the fixture, CAM-0001, given the example profile's VID:PID. */
const DEVICE: DeviceInfo = { ...recordedInfo('qemu-usb-storage'), vendorId: 0x1209, productId: 0x0001 };
const SERIAL = 'CAM-0001';
const HOUR = 3600_000;
const CONNECTED_MS = 2000;

const cleanup = cleanupAfterEach();

/** A camera an hour behind the dock, with two recordings and the example profile's three files. */
function camera() {
  const root = mkdtempSync(path.join(os.tmpdir(), 'dockd-mscfgdock-'));
  cleanup.push(() => rmSync(root, { recursive: true, force: true }));
  const pc = fakeDockPc(root);
  setConnectedDuration(pc, '1-1', CONNECTED_MS);
  const files = new Map<string, Buffer>([
    ['DCIM/100ACME/A0001.MP4', randomBytes(1024 * 1024 + 5)],
    ['DCIM/100ACME/A0002.MP4', randomBytes(7000)],
  ]);
  // The file holds whole seconds.
  const cameraNow = Math.floor((Date.now() - HOUR) / 1000) * 1000;
  const events = [
    { at: new Date(cameraNow - 5 * HOUR), type: 'power.on' },
    { at: new Date(cameraNow - 4 * HOUR), type: 'recording.start' },
    { at: new Date(cameraNow - 4 * HOUR + 600_000), type: 'recording.stop' },
    { at: new Date(cameraNow - 2 * HOUR), type: 'power.off' },
  ];
  const own = new Map<string, string>([
    ['SETTINGS.TXT', '# Acme BWC-M\r\npreRecordSeconds=10\r\nresolution=1080p\r\nwifi=on\r\nunitName=UNIT 7\r\n'],
    ['TIME.TXT', `${formatLocalTime(new Date(cameraNow - CONNECTED_MS))}\r\n`],
    ['EVENTS.LOG', events.map((e) => `${formatLocalTime(e.at)},${e.type}\n`).join('') + 'zz,unknown\n'],
  ]);
  for (const [rel, data] of [...files, ...own]) {
    mkdirSync(path.dirname(path.join(pc.camA, rel)), { recursive: true });
    writeFileSync(path.join(pc.camA, rel), data);
  }
  return { vol: pc.camA, files, events, driver: fakePcDriver(pc) };
}

describe('docking a mass-storage camera of the example profile', () => {
  it('sets its clock and settings through its files, stores its event log, records both in custody, and still offloads every recording', async () => {
    const cam = camera();
    const pc = configuringDock(
      [cam.driver],
      {
        settings: {
          profiles: { patrol: { preRecordSeconds: 30, wifi: false, resolution: '1080p', displayBrightness: 40 } },
          assign: [{ profile: 'patrol' }],
        },
      },
      cleanup,
    );
    const t0 = Date.now();
    pc.dock.attach(DEVICE);
    await until('the camera to be cleared', () => pc.cleared.includes(SERIAL));

    const custody = [...pc.custody.all()];
    const [docked] = custody.filter((e) => e.type === 'camera.docked');
    const skew = docked!.details.clockSkewSeconds as number;
    expect(skew).toBeGreaterThan(-3602);
    expect(skew).toBeLessThan(-3598);
    const clockSet = custody.filter((e) => e.type === 'camera.clock_set');
    expect(clockSet).toHaveLength(1);
    expect(clockSet[0]!.details.skewSeconds).toBe(skew);
    // The time file holds the dock's clock at the moment the camera was connected.
    const time = readFileSync(path.join(cam.vol, 'TIME.TXT'), 'latin1');
    expect(time).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\n$/);
    const connected = parseLocalTime(time.trimEnd())!.getTime();
    expect(connected).toBeGreaterThanOrEqual(t0 - CONNECTED_MS - 1000);
    expect(connected).toBeLessThanOrEqual(Date.now() - CONNECTED_MS + 1000);

    const changed = custody.filter((e) => e.type === 'camera.settings_changed');
    expect(changed.map((e) => e.details)).toEqual([
      {
        profile: 'patrol',
        before: { preRecordSeconds: 10, resolution: '1080p', wifi: true, unitName: 'UNIT 7' },
        after: { preRecordSeconds: 30, resolution: '1080p', wifi: false, unitName: 'UNIT 7' },
        changed: ['preRecordSeconds', 'wifi'],
      },
    ]);
    expect(readFileSync(path.join(cam.vol, 'SETTINGS.TXT'), 'latin1')).toBe(
      '# Acme BWC-M\r\npreRecordSeconds=30\r\nresolution=1080p\r\nwifi=off\r\nunitName=UNIT 7\r\n',
    );
    // A key the camera's file does not have is pending, the rest applied.
    const [stored] = cameraSettings(pc.db, SERIAL);
    expect(stored).toMatchObject({
      profile: 'patrol',
      settings: { preRecordSeconds: 30, resolution: '1080p', wifi: false, unitName: 'UNIT 7' },
      pending: { displayBrightness: { wanted: 40, reported: null, reason: 'the camera does not report this setting' } },
    });

    // The event log at true times: the camera's timestamps less the skew measured at docking.
    expect([...cameraEvents(pc.db, SERIAL)]).toEqual(
      cam.events.map((e) => ({ at: Math.round(e.at.getTime() - skew * 1000), type: e.type })),
    );
    expect(pc.lines.filter((l) => l.event === 'mass_storage.file_lines_skipped')).toMatchObject([
      { file: 'EVENTS.LOG', skipped: 1 },
    ]);

    const rows = pc.db
      .prepare<[], { source_path: string; status: string; archive_path: string; deleted_from_camera: number }>(
        'SELECT source_path, status, archive_path, deleted_from_camera FROM recordings ORDER BY source_path',
      )
      .all();
    expect(rows.map((r) => r.source_path)).toEqual([...cam.files.keys()].sort());
    for (const r of rows) {
      expect(r.status, r.source_path).toBe('verified');
      expect(sha256(readFileSync(r.archive_path)), r.source_path).toBe(sha256(cam.files.get(r.source_path)!));
      expect(r.deleted_from_camera, r.source_path).toBe(1);
      expect(existsSync(path.join(cam.vol, r.source_path)), r.source_path).toBe(false);
    }
    // Its own files stay on the camera, with no temporary file beside them.
    expect(readdirSync(cam.vol).sort()).toEqual(['DCIM', 'EVENTS.LOG', 'SETTINGS.TXT', 'TIME.TXT']);
  });
});
