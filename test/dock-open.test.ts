/**
 * What the dock does with a camera that cannot be opened at first: a transient failure (the
 * camera held by gvfs, a volume not mounted yet, a timed-out first transaction) is tried again
 * while the camera stays plugged in; anything else is one clear error.
 */
import { describe, expect, it } from 'vitest';
import { DriverError, type CameraDriver, type CameraSession, type DeviceInfo } from '../drivers/types.js';
import { ScriptedCamera } from './support/scripted-camera.js';
import { cleanupAfterEach, dockInProcess, type LogLine } from './support/configuring-dock.js';

const RETRY = { attempts: 4, baseDelayMs: 40, maxDelayMs: 80 };
const device: DeviceInfo = { bus: 'usb', key: '1-2', slot: '1-2', serialNumber: 'R-1' };

const cleanup = cleanupAfterEach();

/** A dock whose only driver fails to open as often as `failures` says, then opens `camera`. */
function dockWith(failures: DriverError[] | Error[], camera: CameraSession) {
  const opens: number[] = [];
  const left = [...failures];
  const driver: CameraDriver = {
    name: 'scripted',
    matches: () => 1,
    open: async () => {
      opens.push(Date.now());
      const failure = left.shift();
      if (failure) throw failure;
      return camera;
    },
  };
  return { ...dockInProcess([driver], { openRetry: RETRY }, cleanup), opens };
}

const until = async (what: string, cond: () => boolean, ms = 3000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const events = (lines: LogLine[], name: string) => lines.filter((l) => l.event === name);

describe('opening a docked camera', () => {
  it('tries again after transient failures and offloads the camera without a re-plug', async () => {
    const busy = new DriverError(
      'transient',
      'usb-busy',
      'LIBUSB_ERROR_BUSY (another program, e.g. gvfs or gphoto2, may hold the camera)',
    );
    const cam = new ScriptedCamera('R-1', ['A.MP4']);
    const t = dockWith([busy, busy], cam);
    t.dock.attach(device);
    await until('the camera to be offloaded', () => t.cleared.includes('R-1'));
    expect(t.opens).toHaveLength(3);
    const retries = events(t.lines, 'camera.open_retry');
    expect(retries.map((l) => [l.level, l.attempt])).toEqual([
      [40, 1],
      [40, 2],
    ]);
    expect(retries[0]!.msg).toMatch(/attempt 1 of 4.*gvfs.*trying again in/);
    expect(events(t.lines, 'camera.rejected')).toHaveLength(0);
    const row = t.db
      .prepare<[], { status: string; deleted_from_camera: number }>(
        'SELECT status, deleted_from_camera FROM recordings',
      )
      .get();
    expect(row).toEqual({ status: 'verified', deleted_from_camera: 1 });
    expect(t.db.prepare("SELECT count(*) n FROM custody_events WHERE type = 'camera.docked'").get()).toEqual({ n: 1 });
  });

  it('gives up with one error after the last attempt', async () => {
    const timeout = new DriverError('transient', 'timeout', 'OpenSession timed out');
    const t = dockWith([timeout, timeout, timeout, timeout, timeout], new ScriptedCamera('R-1', []));
    t.dock.attach(device);
    await until('the camera to be rejected', () => events(t.lines, 'camera.rejected').length > 0);
    await sleep(3 * RETRY.maxDelayMs);
    expect(t.opens).toHaveLength(RETRY.attempts);
    expect(events(t.lines, 'camera.open_retry')).toHaveLength(RETRY.attempts - 1);
    const [rejected] = events(t.lines, 'camera.rejected');
    expect(rejected!.level).toBe(50);
    expect(rejected!.msg).toMatch(/after 4 attempts: OpenSession timed out/);
  });

  it('does not retry what cannot get better', async () => {
    const t = dockWith(
      [
        new DriverError('permanent', 'no-serial', 'camera reports no serial number'),
        new Error('malformed camera.json'),
      ],
      new ScriptedCamera('R-1', []),
    );
    t.dock.attach(device);
    await until('the camera to be rejected', () => events(t.lines, 'camera.rejected').length > 0);
    await sleep(3 * RETRY.maxDelayMs);
    expect(t.opens).toHaveLength(1);
    expect(events(t.lines, 'camera.open_retry')).toHaveLength(0);
  });

  it('stops trying once the camera is unplugged', async () => {
    const busy = new DriverError('transient', 'usb-busy', 'LIBUSB_ERROR_BUSY');
    const t = dockWith([busy, busy, busy], new ScriptedCamera('R-1', []));
    t.dock.attach(device);
    await until('the first retry to be planned', () => events(t.lines, 'camera.open_retry').length > 0);
    t.dock.detach('usb', device.key);
    await sleep(3 * RETRY.maxDelayMs);
    expect(t.opens).toHaveLength(1);
    expect(events(t.lines, 'camera.rejected')).toHaveLength(0);
  });
});
