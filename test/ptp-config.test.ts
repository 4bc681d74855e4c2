/**
 * A PTP camera's clock and settings through device properties (issue 24), byte for byte against
 * the responder: DateTime through SetDevicePropValue, vendor properties named by a setting
 * profile, and the cameras that refuse either.
 */
import { formatPtpDateTime } from '../drivers/ptp/datasets.js';
import { afterEach, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DriverError, type CameraSession, type DeviceInfo } from '../drivers/types.js';
import { createPtpDriver, type PtpDriverOptions, type PtpSettingProfile } from '../drivers/ptp/driver.js';
import { DataType, DeviceProp, Op, Rc } from '../drivers/ptp/constants.js';
import {
  ALL_OPERATIONS,
  PtpResponder,
  type PtpFault,
  type PtpResponderOptions,
  type ResponderProp,
} from './support/ptp-responder.js';
import { MemoryLogger } from './support/usb.js';

const roots: string[] = [];
const sessions: CameraSession[] = [];
afterEach(async () => {
  for (const s of sessions.splice(0)) await s.close().catch(() => undefined);
  for (const r of roots.splice(0)) rmSync(r, { recursive: true, force: true });
});

/** The example profile's VID:PID (drivers/ptp/setting-profiles.ts). */
const EXAMPLE_CAMERA: DeviceInfo = {
  bus: 'usb',
  key: '1-3',
  slot: 'Bay 3',
  vendorId: 0x1209,
  productId: 0x0001,
  serialNumber: 'ACME-0007',
  interfaces: [{ number: 0, class: 6, subclass: 1, protocol: 1 }],
};

/** The example profile's properties as one firmware has them: a narrower pre-record range, one read-only string. */
function exampleProps(): Record<number, ResponderProp> {
  return {
    0xd001: { dataType: DataType.UINT16, writable: true, value: 10, form: { kind: 'range', min: 0, max: 60, step: 5 } },
    0xd002: { dataType: DataType.UINT8, writable: true, value: 2, form: { kind: 'enum', values: [1, 2, 3] } },
    0xd003: { dataType: DataType.UINT8, writable: true, value: 80, form: { kind: 'range', min: 0, max: 100, step: 1 } },
    0xd004: { dataType: DataType.UINT8, writable: true, value: 1, form: { kind: 'enum', values: [0, 1] } },
    0xd005: { dataType: DataType.STR, writable: true, value: 'UNIT 7' },
    0xd006: { dataType: DataType.STR, writable: false, value: 'stable' },
  };
}

async function dock(
  o: Partial<PtpResponderOptions> = {},
  d: Partial<PtpDriverOptions> = {},
  device: DeviceInfo = EXAMPLE_CAMERA,
  faults: PtpFault[] = [],
) {
  const root = mkdtempSync(path.join(os.tmpdir(), 'dockd-ptpcfg-'));
  roots.push(root);
  mkdirSync(path.join(root, 'DCIM'));
  writeFileSync(path.join(root, 'DCIM', 'A001.MP4'), 'footage');
  const responder = new PtpResponder({ root, ...o }).inject(...faults);
  const log = new MemoryLogger();
  const driver = createPtpDriver({
    openTransport: async () => responder,
    timeoutMs: 300,
    transferBytes: 64 * 1024,
    session: { drainTimeoutMs: 20, statusPollMs: 2 },
    ...d,
  });
  const session = await driver.open(device, log);
  sessions.push(session);
  return { responder, session, log };
}

/** The data container the host sends with SetDevicePropValue: header, then the value. */
function dataContainer(transactionId: number, value: number[]): number[] {
  const length = 12 + value.length;
  return [
    length & 0xff,
    length >> 8,
    0,
    0,
    0x02,
    0x00,
    0x16,
    0x10,
    transactionId & 0xff,
    (transactionId >> 8) & 0xff,
    0,
    0,
    ...value,
  ];
}

function ptpString(s: string): number[] {
  const units = [...s].flatMap((c) => [c.charCodeAt(0), 0]);
  return [s.length + 1, ...units, 0, 0];
}

const sets = (r: PtpResponder) => r.commands.filter((c) => c.op === Op.SetDevicePropValue);
const rejection = (p: Promise<unknown>) =>
  p.then(
    () => expect.fail('expected a rejection'),
    (e: unknown) => e as DriverError,
  );

describe('ptp clock through DateTime (0x5011)', () => {
  it('sets a skewed camera clock with SetDevicePropValue and a zone-less local-time string, and reads the new time back', async () => {
    const { responder, session } = await dock({ clockSkewSeconds: -3600 });
    expect(session.capabilities.clock).toBe(true);
    const before = await session.clock!();
    expect(Math.abs(before.getTime() - (Date.now() - 3_600_000))).toBeLessThan(2000);

    await session.setClock!(new Date('2026-12-05T21:00:07.400Z'));
    const [set] = sets(responder);
    expect(set!.params).toEqual([DeviceProp.DateTime]);
    const digits = formatPtpDateTime(new Date('2026-12-05T21:00:07Z'), 'local');
    expect(digits).toMatch(/^\d{8}T\d{6}$/);
    expect(responder.clockSets).toEqual([digits]);
    const phase = responder.dataPhases.at(-1)!;
    expect([...phase.bytes]).toEqual(dataContainer(set!.transactionId, ptpString(digits)));
    // The camera runs on the new time: it reads back as that time plus what has passed since.
    const after = await session.clock!();
    expect(Math.abs(after.getTime() - Date.parse('2026-12-05T21:00:07Z'))).toBeLessThan(2000);
  });

  it('offers no clock when DateTime is read-only, or when the camera lists no SetDevicePropValue', async () => {
    const readOnly = await dock({ clockWritable: false });
    expect(readOnly.session.capabilities.clock).toBeUndefined();
    expect(readOnly.session.setClock).toBeUndefined();
    expect(readOnly.log.events('ptp.clock_read_only')).toEqual([
      expect.objectContaining({ reason: 'DateTime is read-only (GetSet = 0)' }),
    ]);

    const noSet = await dock({ operations: ALL_OPERATIONS.filter((op) => op !== Op.SetDevicePropValue) });
    expect(noSet.session.capabilities.clock).toBeUndefined();
    expect(await noSet.session.clock!()).toBeInstanceOf(Date);
  });
});

describe('ptp settings through a setting profile', () => {
  it('reads every mapped property by its described data type, and writes what the profile changes', async () => {
    const { responder, session } = await dock({ vendorProps: exampleProps() });
    expect(session.capabilities).toMatchObject({ settings: true, clock: true });
    expect(session.capabilities.settingsDisturbRecordings).toBeUndefined();
    expect(await session.settings!()).toEqual({
      preRecordSeconds: 10,
      resolution: '1080p',
      displayBrightness: 80,
      wifi: true,
      unitName: 'UNIT 7',
      firmwareChannel: 'stable',
    });

    await session.applySettings!({ preRecordSeconds: 30, resolution: '720p', wifi: false, unitName: 'Ofc. Rivera' });
    expect(sets(responder).map((c) => c.params)).toEqual([[0xd001], [0xd002], [0xd004], [0xd005]]);
    const [pre, res, wifi, name] = responder.dataPhases.slice(-4).map((p) => [...p.bytes]);
    const tids = sets(responder).map((c) => c.transactionId);
    expect(pre).toEqual(dataContainer(tids[0]!, [30, 0]));
    expect(res).toEqual(dataContainer(tids[1]!, [1]));
    expect(wifi).toEqual(dataContainer(tids[2]!, [0]));
    expect(name).toEqual(dataContainer(tids[3]!, ptpString('Ofc. Rivera')));
    expect([...responder.props].map(([code, p]) => [code, p.value])).toEqual([
      [0xd001, 30],
      [0xd002, 1],
      [0xd003, 80],
      [0xd004, 0],
      [0xd005, 'Ofc. Rivera'],
      [0xd006, 'stable'],
    ]);
    expect(await session.settings!()).toMatchObject({
      preRecordSeconds: 30,
      resolution: '720p',
      wifi: false,
      unitName: 'Ofc. Rivera',
    });
  });

  it('refuses a read-only property with a permanent error naming the key, without writing', async () => {
    const { responder, session } = await dock({ vendorProps: exampleProps() });
    const err = await rejection(session.applySettings!({ firmwareChannel: 'beta' }));
    expect(err).toBeInstanceOf(DriverError);
    expect(err).toMatchObject({ kind: 'permanent', code: 'setting-read-only' });
    expect(err.message).toContain('firmwareChannel');
    expect(sets(responder)).toEqual([]);
    expect(responder.props.get(0xd006)!.value).toBe('stable');
  });

  it("refuses values outside the camera's range, step or enumeration, or of the wrong type, before writing any", async () => {
    const { responder, session } = await dock({ vendorProps: exampleProps() });
    const cases: Array<[Record<string, string | number | boolean>, string]> = [
      [{ preRecordSeconds: 90 }, 'preRecordSeconds'], // the profile allows 0..120, this camera 0..60
      [{ preRecordSeconds: 33 }, 'preRecordSeconds'], // not a step of 5
      [{ displayBrightness: 101 }, 'displayBrightness'],
      [{ resolution: '4k' }, 'resolution'],
      [{ wifi: 1 }, 'wifi'],
      [{ unitName: 7 }, 'unitName'],
      [{ nightVision: true }, 'nightVision'],
      // One bad key holds back the good one: the dock then tries them one at a time.
      [{ displayBrightness: 40, preRecordSeconds: 90 }, 'preRecordSeconds'],
    ];
    for (const [partial, key] of cases) {
      const err = await rejection(session.applySettings!(partial));
      expect(err, JSON.stringify(partial)).toMatchObject({ kind: 'permanent' });
      expect(err.message, JSON.stringify(partial)).toContain(key);
    }
    expect(sets(responder)).toEqual([]);
    expect(responder.props.get(0xd001)!.value).toBe(10);
    expect(responder.props.get(0xd003)!.value).toBe(80);
  });

  it("turns the camera's own refusal into a permanent error naming the key", async () => {
    const { responder, session } = await dock({ vendorProps: exampleProps() });
    responder.inject({ op: Op.SetDevicePropValue, kind: 'response', code: Rc.InvalidDevicePropValue });
    const err = await rejection(session.applySettings!({ displayBrightness: 40 }));
    expect(err).toMatchObject({ kind: 'permanent', code: 'ptp-0x201c' });
    expect(err.message).toContain('displayBrightness');
    // The camera answered after the whole data phase: the session goes on.
    await session.applySettings!({ displayBrightness: 40 });
    expect(responder.props.get(0xd003)!.value).toBe(40);
  });

  it('leaves out a property the camera describes with another type than the profile, or does not list', async () => {
    const props = exampleProps();
    props[0xd003] = { dataType: DataType.UINT16, writable: true, value: 80 };
    delete props[0xd005];
    const { session, log } = await dock({ vendorProps: props });
    expect(Object.keys(await session.settings!()).sort()).toEqual([
      'firmwareChannel',
      'preRecordSeconds',
      'resolution',
      'wifi',
    ]);
    expect(log.events('ptp.setting_skipped').map((l) => l.setting)).toEqual(['displayBrightness', 'unitName']);
    expect((await rejection(session.applySettings!({ displayBrightness: 40 }))).message).toContain('displayBrightness');
  });

  it('ends a data phase that fills its last packet with a zero-length packet', async () => {
    const table: PtpSettingProfile[] = [
      {
        model: 'BodyCam PTP',
        device: 'test',
        source: 'test',
        settings: { sleepAfterSeconds: { code: 0xd010, type: 'UINT32' } },
      },
    ];
    const { responder, session } = await dock(
      { maxPacketSize: 16, vendorProps: { 0xd010: { dataType: DataType.UINT32, writable: true, value: 300 } } },
      { settingProfiles: table },
      { ...EXAMPLE_CAMERA, vendorId: 0x2a70, productId: 0x0a11 },
    );
    expect(await session.settings!()).toEqual({ sleepAfterSeconds: 300 });
    await session.applySettings!({ sleepAfterSeconds: 600 });
    expect([...responder.dataPhases.at(-1)!.bytes]).toHaveLength(16);
    expect(responder.zeroLengthPackets).toBe(1);
    expect(responder.props.get(0xd010)!.value).toBe(600);
  });

  it('offers neither clock nor settings on a camera that answers OperationNotSupported to GetDevicePropDesc and SetDevicePropValue', async () => {
    const { responder, session, log } = await dock({ vendorProps: exampleProps(), refuseDeviceProps: true });
    expect(session.capabilities).toEqual({ resume: true, delete: true });
    expect(session.setClock).toBeUndefined();
    expect(session.settings).toBeUndefined();
    expect(session.applySettings).toBeUndefined();
    expect(log.events('ptp.device_props_unsupported')).toHaveLength(1);
    // Asked once: the first refusal stands for every property.
    expect(responder.commands.filter((c) => c.op === Op.GetDevicePropDesc)).toHaveLength(1);
    // Everything else about the camera still works.
    expect(await session.clock!()).toBeInstanceOf(Date);
    const listed: string[] = [];
    for await (const e of session.list()) listed.push(e.path);
    expect(listed).toEqual(['DCIM/A001.MP4']);
  });

  it('stops describing after a GetDevicePropDesc that times out, and docks without clock or settings', async () => {
    const { responder, session, log } = await dock({ vendorProps: exampleProps() }, {}, EXAMPLE_CAMERA, [
      { op: Op.GetDevicePropDesc, kind: 'stall' },
    ]);
    expect(session.capabilities.clock).toBeUndefined();
    expect(session.capabilities.settings).toBeUndefined();
    expect(responder.commands.filter((c) => c.op === Op.GetDevicePropDesc)).toHaveLength(1);
    expect(log.events('ptp.setting_skipped')).toEqual([
      expect.objectContaining({ setting: 'DateTime', code: '0x5011' }),
    ]);
    const listed: string[] = [];
    for await (const e of session.list()) listed.push(e.path);
    expect(listed).toEqual(['DCIM/A001.MP4']);
  });

  it('reports settings without a profile for the camera as no capability at all', async () => {
    const { session } = await dock(
      { vendorProps: exampleProps() },
      {},
      { ...EXAMPLE_CAMERA, vendorId: 0x2a70, productId: 0x0a11 },
    );
    expect(session.capabilities.settings).toBeUndefined();
    expect(session.settings).toBeUndefined();
  });
});
