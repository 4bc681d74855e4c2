/**
 * A PTP camera configured at docking (issue 24), the whole way: the dock with its configurator,
 * the ingest engine and the real PTP driver against the responder. Its clock is set and its
 * settings brought to its profile through device properties, both recorded in custody, and its
 * recordings are offloaded, verified and cleared as from any other camera.
 */
import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { DeviceInfo } from '../drivers/types.js';
import { createPtpDriver } from '../drivers/ptp/driver.js';
import { DataType, Op } from '../drivers/ptp/constants.js';
import { cameraSettings } from '../src/store/camera-settings.js';
import { cleanupAfterEach, configuringDock, until } from './support/configuring-dock.js';
import { sha256 } from './support/harness.js';
import { PtpResponder } from './support/ptp-responder.js';

/** The example setting profile's VID:PID (drivers/ptp/setting-profiles.ts). */
const DEVICE: DeviceInfo = {
  bus: 'usb',
  key: '1-5',
  slot: 'Bay 5',
  vendorId: 0x1209,
  productId: 0x0001,
  serialNumber: 'ACME-0042',
  interfaces: [{ number: 0, class: 6, subclass: 1, protocol: 1 }],
};
const SERIAL = 'ACME-0042';

const cleanup = cleanupAfterEach();

function camera() {
  const root = mkdtempSync(path.join(os.tmpdir(), 'dockd-ptpcfg-cam-'));
  cleanup.push(() => rmSync(root, { recursive: true, force: true }));
  const files = new Map<string, Buffer>([
    ['DCIM/100ACME/A001.MP4', randomBytes(2 * 1024 * 1024 + 5)],
    ['DCIM/100ACME/A002.MP4', randomBytes(7000)],
  ]);
  for (const [rel, data] of files) {
    mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    writeFileSync(path.join(root, rel), data);
  }
  const responder = new PtpResponder({
    root,
    // An hour ahead, as a camera that never learnt daylight saving time ended.
    clockSkewSeconds: 3600,
    vendorProps: {
      0xd001: {
        dataType: DataType.UINT16,
        writable: true,
        value: 10,
        form: { kind: 'range', min: 0, max: 60, step: 5 },
      },
      0xd002: { dataType: DataType.UINT8, writable: true, value: 2, form: { kind: 'enum', values: [1, 2, 3] } },
      0xd004: { dataType: DataType.UINT8, writable: true, value: 1, form: { kind: 'enum', values: [0, 1] } },
      0xd006: { dataType: DataType.STR, writable: false, value: 'stable' },
    },
  });
  return { root, files, responder };
}

function dockPc(responder: PtpResponder) {
  const driver = createPtpDriver({
    openTransport: async () => responder,
    timeoutMs: 300,
    transferBytes: 64 * 1024,
    session: { drainTimeoutMs: 20, statusPollMs: 2 },
  });
  return configuringDock(
    [driver],
    {
      settings: {
        profiles: { patrol: { preRecordSeconds: 30, resolution: '720p', wifi: false, firmwareChannel: 'beta' } },
        assign: [{ profile: 'patrol' }],
      },
    },
    cleanup,
  );
}

describe('docking a PTP camera with a skewed clock and a setting profile', () => {
  it('sets its clock and settings, records both in custody, and still offloads every recording', async () => {
    const { root, files, responder } = camera();
    const pc = dockPc(responder);
    pc.dock.attach(DEVICE);
    await until('the camera to be cleared', () => pc.cleared.includes(SERIAL));

    const events = [...pc.custody.all()];
    const clockSet = events.filter((e) => e.type === 'camera.clock_set');
    expect(clockSet).toHaveLength(1);
    expect(clockSet[0]!.details.skewSeconds as number).toBeGreaterThan(3590);
    expect(clockSet[0]!.details.skewSeconds as number).toBeLessThan(3610);
    expect(responder.clockSets).toHaveLength(1);
    expect(Math.abs(responder.cameraTime.getTime() - Date.now())).toBeLessThan(2000);

    const changed = events.filter((e) => e.type === 'camera.settings_changed');
    expect(changed.map((e) => e.details)).toEqual([
      {
        profile: 'patrol',
        before: { preRecordSeconds: 10, resolution: '1080p', wifi: true, firmwareChannel: 'stable' },
        after: { preRecordSeconds: 30, resolution: '720p', wifi: false, firmwareChannel: 'stable' },
        changed: ['preRecordSeconds', 'resolution', 'wifi'],
      },
    ]);
    expect([0xd001, 0xd002, 0xd004, 0xd006].map((code) => responder.props.get(code)!.value)).toEqual([
      30,
      1,
      0,
      'stable',
    ]);
    const [stored] = cameraSettings(pc.db, SERIAL);
    expect(Object.keys(stored!.pending)).toEqual(['firmwareChannel']);
    expect(stored!.pending.firmwareChannel!.reason).toMatch(/refused it: firmwareChannel: the camera has it read-only/);

    // Configured before listing: every SetDevicePropValue precedes the first GetObjectHandles.
    const ops = responder.commands.map((c) => c.op);
    expect(ops.lastIndexOf(Op.SetDevicePropValue)).toBeLessThan(ops.indexOf(Op.GetObjectHandles));

    const rows = pc.db
      .prepare<[], { source_path: string; status: string; archive_path: string; deleted_from_camera: number }>(
        'SELECT source_path, status, archive_path, deleted_from_camera FROM recordings ORDER BY source_path',
      )
      .all();
    expect(rows.map((r) => r.source_path)).toEqual([...files.keys()].sort());
    for (const r of rows) {
      expect(r.status, r.source_path).toBe('verified');
      expect(sha256(readFileSync(r.archive_path)), r.source_path).toBe(sha256(files.get(r.source_path)!));
      expect(r.deleted_from_camera, r.source_path).toBe(1);
      expect(existsSync(path.join(root, r.source_path)), r.source_path).toBe(false);
    }
  });
});
