import { bytesFromName } from '../drivers/camera-names.js';
import { afterEach, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { DriverError, type CameraSession, type DeviceInfo, type RecordingEntry } from '../drivers/types.js';
import {
  PTP_QUIRKS,
  createPtpDriver,
  handleId,
  type PtpDriverOptions,
  type PtpQuirkRow,
} from '../drivers/ptp/driver.js';
import { ClassRequest, DataType, DeviceProp, Op, Rc } from '../drivers/ptp/constants.js';
import { DatasetWriter } from '../drivers/ptp/codec.js';
import { encodeObjectInfo } from '../drivers/ptp/datasets.js';
import { PtpSession } from '../drivers/ptp/session.js';
import {
  findStillImageInterface,
  openUsbTransport,
  usbError,
  type UsbStillImageDevice,
} from '../drivers/ptp/usb-transport.js';
import {
  ALL_OPERATIONS,
  PtpResponder,
  STORAGE_ID,
  syntheticBytes,
  type Framing,
  type PtpResponderOptions,
} from './support/ptp-responder.js';
import { MemoryLogger, recordedInfo } from './support/usb.js';
import { rejection } from './support/driver-error.js';

const TRANSFER = 64 * 1024;
const BIG = randomBytes(5 * 1024 * 1024 + 123);
const SMALL = randomBytes(1000);

const roots: string[] = [];
const sessions: CameraSession[] = [];
afterEach(async () => {
  for (const s of sessions.splice(0)) await s.close().catch(() => undefined);
  for (const r of roots.splice(0)) rmSync(r, { recursive: true, force: true });
});

const DEVICE: DeviceInfo = {
  bus: 'usb',
  key: '1-2',
  slot: 'Bay 2',
  vendorId: 0x46f4,
  productId: 0x0004,
  serialNumber: 'MTP-0002',
  interfaces: [{ number: 0, class: 6, subclass: 1, protocol: 1 }],
};

function put(root: string, rel: string, data: Uint8Array | string, mtime?: Date): void {
  const abs = path.join(root, rel);
  mkdirSync(path.dirname(abs), { recursive: true });
  writeFileSync(abs, data);
  if (mtime) utimesSync(abs, mtime, mtime);
}

/** A camera folder: nested recordings, an empty folder, names a hostile camera could report. */
function cameraFolder(): string {
  const root = mkdtempSync(path.join(os.tmpdir(), 'dockd-ptp-'));
  roots.push(root);
  put(root, 'DCIM/100BODY/A001.MP4', BIG, new Date('2024-03-05T14:22:33Z'));
  put(root, 'DCIM/100BODY/A002.MP4', SMALL);
  put(root, 'DCIM/101BODY/line\nbreak.mp4', 'x');
  put(root, 'DCIM/101BODY/climb.mp4', 'climb');
  put(root, 'DCIM/101BODY/dot.mp4', 'dot');
  put(root, 'DCIM/101BODY/dup1.mp4', 'one');
  put(root, 'DCIM/101BODY/dup2.mp4', 'two');
  put(root, 'DCIM/101BODY/empty-name.mp4', 'e');
  put(root, 'root.txt', 'top');
  mkdirSync(path.join(root, 'EMPTY'));
  return root;
}

const HOSTILE_NAMES: Record<string, string> = {
  'DCIM/101BODY/climb.mp4': '../../etc/passwd',
  'DCIM/101BODY/dot.mp4': '..',
  'DCIM/101BODY/dup1.mp4': 'same.mp4',
  'DCIM/101BODY/dup2.mp4': 'same.mp4',
  'DCIM/101BODY/empty-name.mp4': '',
};

interface World {
  root: string;
  responder: PtpResponder;
  session: CameraSession;
  log: MemoryLogger;
}

async function world(
  o: Partial<PtpResponderOptions> = {},
  d: Partial<PtpDriverOptions> = {},
  device: DeviceInfo = DEVICE,
): Promise<World> {
  const root = o.root ?? cameraFolder();
  const responder = new PtpResponder({ rename: HOSTILE_NAMES, ...o, root });
  const log = new MemoryLogger();
  const driver = createPtpDriver({
    openTransport: async () => responder,
    timeoutMs: 300,
    transferBytes: TRANSFER,
    session: { drainTimeoutMs: 20, statusPollMs: 2 },
    ...d,
  });
  const session = await driver.open(device, log);
  sessions.push(session);
  return { root, responder, session, log };
}

async function all(session: CameraSession): Promise<RecordingEntry[]> {
  const out: RecordingEntry[] = [];
  for await (const e of session.list()) out.push(e);
  return out;
}

async function entry(session: CameraSession, p: string): Promise<RecordingEntry> {
  const e = (await all(session)).find((x) => x.path === p);
  if (!e) throw new Error(`no ${p}`);
  return e;
}

async function drain(stream: Readable): Promise<{ bytes: Buffer; chunks: number[] }> {
  const parts: Buffer[] = [];
  const chunks: number[] = [];
  for await (const c of stream) {
    parts.push(c as Buffer);
    chunks.push((c as Buffer).length);
  }
  return { bytes: Buffer.concat(parts), chunks };
}

function sha(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

/** Reads a stream to its end and returns the error it ended with. */
async function streamError(stream: Readable): Promise<DriverError> {
  return rejection(drain(stream));
}

const cancels = (r: PtpResponder) => r.controls.filter((c) => c.request === ClassRequest.Cancel);

describe('ptp driver: matching', () => {
  const driver = createPtpDriver({ openTransport: () => Promise.reject(new Error('unused')) });

  it('claims still-image interfaces and nothing else', () => {
    expect(driver.name).toBe('ptp');
    expect(driver.matches(recordedInfo('qemu-usb-mtp'))).toBe(60);
    expect(driver.matches({ ...DEVICE, interfaces: [{ number: 0, class: 6, subclass: 2, protocol: 0 }] })).toBe(50);
    expect(driver.matches(recordedInfo('usb-stick'))).toBe(0);
    expect(driver.matches(recordedInfo('keyboard'))).toBe(0);
    // Vendor-class MTP needs a usb.drivers rule.
    expect(driver.matches(recordedInfo('body-camera-vendor-mtp'))).toBe(0);
    expect(driver.explainMatch(recordedInfo('ptp-still-camera'))).toMatch(/0x06\/0x01\/0x01/);
    // `dockd usb` shows which quirks a docked camera gets.
    expect(driver.explainMatch({ ...DEVICE, vendorId: 0x1d6b, productId: 0x0100 })).toBe(
      'interface class 0x06/0x01/0x01 (PTP still image); quirks: deviceInfoInSession',
    );
  });
});

describe('ptp driver: session', () => {
  it('reports identity from DeviceInfo with the USB serial winning over the PTP one', async () => {
    const { session } = await world();
    expect(await session.identity()).toEqual({ serial: 'MTP-0002', model: 'Responder BodyCam PTP', firmware: '2.4.1' });
  });

  it('falls back to the PTP serial, and refuses a camera with neither', async () => {
    const { serialNumber: _, ...noUsbSerial } = DEVICE;
    const a = await world({ serialNumber: 'PTP-77', manufacturer: 'QEMU', model: 'QEMU filesharing' }, {}, noUsbSerial);
    expect(await a.session.identity()).toEqual({ serial: 'PTP-77', model: 'QEMU filesharing', firmware: '2.4.1' });

    const responder = new PtpResponder({ root: cameraFolder(), serialNumber: '  ' });
    const driver = createPtpDriver({ openTransport: async () => responder });
    expect(await rejection(driver.open(noUsbSerial, new MemoryLogger()))).toMatchObject({
      kind: 'permanent',
      code: 'no-serial',
    });
    expect(responder.closed).toBe(true);
  });

  it('uses transaction 0 outside the session and increasing ids inside it', async () => {
    const { session, responder } = await world();
    await all(session);
    await session.battery();
    const ids = responder.commands.map((c) => c.transactionId);
    expect(responder.commands.slice(0, 2)).toMatchObject([
      { op: Op.GetDeviceInfo, transactionId: 0 },
      { op: Op.OpenSession, transactionId: 0, params: [1] },
    ]);
    expect(ids.slice(2)).toEqual(ids.slice(2).map((_, i) => i + 1));
  });

  it('carries on with a session a previous host left open', async () => {
    const first = await world();
    const log = new MemoryLogger();
    const second = await createPtpDriver({ openTransport: async () => first.responder, transferBytes: TRANSFER }).open(
      DEVICE,
      log,
    );
    sessions.push(second);
    expect(log.events('ptp.session_already_open')).toHaveLength(1);
    expect((await all(second)).length).toBeGreaterThan(0);
  });

  it('reads the battery level, scaled by the range the camera describes', async () => {
    expect(await (await world()).session.battery()).toEqual({ percent: 87, charging: true });
    expect(await (await world({ battery: { value: 3, min: 0, max: 4 } })).session.battery()).toEqual({
      percent: 75,
      charging: true,
    });
    expect(await (await world({ battery: { value: 100 } })).session.battery()).toEqual({
      percent: 100,
      charging: false,
    });
    // No description: the value's size says how to read it.
    const noDesc = ALL_OPERATIONS.filter((op) => op !== Op.GetDevicePropDesc);
    expect(
      await (await world({ operations: noDesc, battery: { value: 42, dataType: DataType.UINT16 } })).session.battery(),
    ).toEqual({ percent: 42, charging: true });
  });

  it('has no battery when the camera lists neither the property nor the operation', async () => {
    expect(await (await world({ properties: [DeviceProp.DateTime] })).session.battery()).toBeNull();
    expect(
      await (
        await world({ operations: ALL_OPERATIONS.filter((op) => op !== Op.GetDevicePropValue) })
      ).session.battery(),
    ).toBeNull();
  });

  it('refuses a battery level outside the described range', async () => {
    const { session } = await world({ battery: { value: 9, min: 0, max: 4 } });
    expect(await rejection(session.battery())).toMatchObject({ kind: 'transient', code: 'ptp-bad-battery' });
  });

  it('reads the clock from DateTime, and has no clock without it', async () => {
    expect((await (await world({ dateTime: '20240305T142233Z' })).session.clock!()).toISOString()).toBe(
      '2024-03-05T14:22:33.000Z',
    );
    expect((await (await world({ dateTime: '20240305T142233.5+0130' })).session.clock!()).toISOString()).toBe(
      '2024-03-05T12:52:33.500Z',
    );
    expect((await world({ properties: [DeviceProp.BatteryLevel] })).session.clock).toBeUndefined();
    const bad = await world({ dateTime: '2024-03-05 14:22' });
    expect(await rejection(bad.session.clock!())).toMatchObject({ kind: 'transient', code: 'ptp-bad-datetime' });
  });
});

describe('ptp driver: listing', () => {
  it('keeps two names that differ only in lone UTF-16 surrogates as two names that give their units back', async () => {
    const { session } = await world({
      rename: { 'DCIM/101BODY/dup1.mp4': 'A\ud800.MP4', 'DCIM/101BODY/dup2.mp4': 'A\udbff.MP4' },
    });
    const names = (await all(session)).map((e) => e.path).filter((p) => p.startsWith('DCIM/101BODY/A'));
    expect(names.sort()).toEqual(['DCIM/101BODY/A\uf7ed\uf7a0\uf780.MP4', 'DCIM/101BODY/A\uf7ed\uf7af\uf7bf.MP4']);
    // The bytes are the generalized UTF-8 of each surrogate, which decodes to the camera's units.
    expect(names.map((n) => bytesFromName(n)!.toString('hex'))).toEqual([
      Buffer.from('DCIM/101BODY/A').toString('hex') + 'eda080' + Buffer.from('.MP4').toString('hex'),
      Buffer.from('DCIM/101BODY/A').toString('hex') + 'edafbf' + Buffer.from('.MP4').toString('hex'),
    ]);
  });

  it('walks nested folders into /-joined paths, ids are handles, hostile names stay inside their folder', async () => {
    const { session, responder } = await world();
    const entries = await all(session);
    const byPath = new Map(entries.map((e) => [e.path, e]));
    expect([...byPath.keys()].sort()).toEqual(
      [
        'DCIM/100BODY/A001.MP4',
        'DCIM/100BODY/A002.MP4',
        'DCIM/101BODY/.._.._etc_passwd',
        `DCIM/101BODY/${handleId(responder.handleOf('DCIM/101BODY/dot.mp4'))}`,
        `DCIM/101BODY/${handleId(responder.handleOf('DCIM/101BODY/empty-name.mp4'))}`,
        'DCIM/101BODY/line\nbreak.mp4',
        'DCIM/101BODY/same.mp4',
        `DCIM/101BODY/same.mp4~${handleId(responder.handleOf('DCIM/101BODY/dup2.mp4'))}`,
        'root.txt',
      ].sort(),
    );
    const a001 = byPath.get('DCIM/100BODY/A001.MP4')!;
    expect(a001).toEqual({
      id: handleId(responder.handleOf('DCIM/100BODY/A001.MP4')),
      path: 'DCIM/100BODY/A001.MP4',
      bytes: BIG.length,
      modifiedAt: new Date('2024-03-05T14:22:33Z'),
      identity: `${BIG.length}:20240305T142233Z:20240305T142233Z`,
    });
    expect(a001.id).toMatch(/^0x[0-9a-f]{8}$/);
    expect(byPath.get('DCIM/100BODY/A002.MP4')!.bytes).toBe(1000);
    // The root is asked for with parent 0xFFFFFFFF and no format filter (QEMU refuses one).
    const handles = responder.commands.filter((c) => c.op === Op.GetObjectHandles);
    expect(handles[0]!.params).toEqual([0x00010001, 0, 0xffffffff]);
    expect(handles.every((c) => c.params[1] === 0)).toBe(true);
  });

  it('skips folders past the depth bound and refuses cameras with too many objects', async () => {
    const shallow = await world({}, { maxDepth: 1 });
    expect((await all(shallow.session)).map((e) => e.path)).toEqual(['root.txt']);
    expect(shallow.log.events('ptp.too_deep').length).toBeGreaterThan(0);

    const crowded = await world({}, { maxObjects: 4 });
    expect(await rejection(all(crowded.session))).toMatchObject({ kind: 'permanent', code: 'ptp-too-many-objects' });
  });

  it('does not follow a folder that lists itself', async () => {
    const { session, responder, log } = await world();
    const dcim = responder.handleOf('DCIM');
    responder.inject({
      op: Op.GetObjectHandles,
      kind: 'payload',
      bytes: new DatasetWriter().u32Array([dcim]).bytes(),
      times: 2,
    });
    expect(await all(session)).toEqual([]);
    expect(log.events('ptp.folder_loop')).toHaveLength(1);
  });

  it('takes sizes of 4 GiB and more from the ObjectSize property, and skips what no one can size', async () => {
    const five = 5 * 1024 ** 3;
    const withProp = await world({ sizes: { 'DCIM/100BODY/A002.MP4': five } });
    expect((await entry(withProp.session, 'DCIM/100BODY/A002.MP4')).bytes).toBe(five);

    const without = await world({
      sizes: { 'DCIM/100BODY/A002.MP4': five },
      operations: ALL_OPERATIONS.filter((op) => op !== Op.GetObjectPropValue),
    });
    expect((await all(without.session)).map((e) => e.path)).not.toContain('DCIM/100BODY/A002.MP4');
    expect(without.log.events('ptp.size_unknown')).toHaveLength(1);
  });
});

describe('ptp driver: reading', () => {
  it('streams a multi-megabyte recording in bounded chunks', async () => {
    const { session } = await world();
    const e = await entry(session, 'DCIM/100BODY/A001.MP4');
    const { bytes, chunks } = await drain(await session.read(e.id, 0));
    expect(sha(bytes)).toBe(sha(BIG));
    expect(Math.max(...chunks)).toBeLessThanOrEqual(TRANSFER);
    expect(chunks.length).toBeGreaterThan(BIG.length / TRANSFER - 1);
  });

  // Sizes around packet and transfer boundaries, where devices end data phases differently.
  const sizes = [0, 1, 500, 512 - 12, 4 * 512 - 12, TRANSFER - 12, TRANSFER, 2 * TRANSFER - 12, 3 * TRANSFER + 7];
  for (const framing of ['qemu', 'zlp', 'no-zlp'] as Framing[]) {
    it(`reads every size whole when the camera frames containers the ${framing} way`, async () => {
      const root = cameraFolder();
      const data = new Map(sizes.map((n) => [`sizes/${n}.bin`, randomBytes(n)]));
      for (const [rel, b] of data) put(root, rel, b);
      const { session } = await world({ root, framing, unknownLength: ['sizes/500.bin', `sizes/${TRANSFER}.bin`] });
      const entries = await all(session);
      for (const [rel, b] of data) {
        const e = entries.find((x) => x.path === rel)!;
        expect(e.bytes).toBe(b.length);
        expect(sha((await drain(await session.read(e.id, 0))).bytes), rel).toBe(sha(b));
        // A partial read continues right where asked.
        if (b.length > 3)
          expect(sha((await drain(await session.read(e.id, 3))).bytes), `${rel}@3`).toBe(sha(b.subarray(3)));
      }
      expect((await all(session)).length).toBe(entries.length);
    });
  }

  it('resumes from an offset with GetPartialObject64, splitting the offset into two u32s', async () => {
    const { session, responder } = await world();
    const e = await entry(session, 'DCIM/100BODY/A001.MP4');
    expect(session.capabilities.resume).toBe(true);
    const offset = 3 * 1024 * 1024 + 17;
    expect(sha((await drain(await session.read(e.id, offset))).bytes)).toBe(sha(BIG.subarray(offset)));
    const cmd = responder.commands.find((c) => c.op === Op.GetPartialObject64)!;
    expect(cmd.params).toEqual([parseInt(e.id, 16), offset, 0, BIG.length - offset]);
  });

  it('falls back to the 32-bit GetPartialObject', async () => {
    const { session, responder } = await world({
      operations: ALL_OPERATIONS.filter((op) => op !== Op.GetPartialObject64),
    });
    const e = await entry(session, 'DCIM/100BODY/A001.MP4');
    expect(session.capabilities.resume).toBe(true);
    expect(sha((await drain(await session.read(e.id, 1000))).bytes)).toBe(sha(BIG.subarray(1000)));
    expect(responder.commands.find((c) => c.op === Op.GetPartialObject)!.params).toEqual([
      parseInt(e.id, 16),
      1000,
      BIG.length - 1000,
    ]);
  });

  it('without partial reads says resume: false and refuses offsets', async () => {
    const { session } = await world({
      operations: ALL_OPERATIONS.filter((op) => op !== Op.GetPartialObject64 && op !== Op.GetPartialObject),
    });
    const e = await entry(session, 'DCIM/100BODY/A002.MP4');
    expect(session.capabilities.resume).toBe(false);
    expect(await rejection(session.read(e.id, 10))).toMatchObject({ kind: 'permanent', code: 'resume-unsupported' });
    expect(sha((await drain(await session.read(e.id, 0))).bytes)).toBe(sha(SMALL));
  });

  it('past 4 GiB without GetPartialObject64, reads from the start and skips up to the offset', async () => {
    // The camera claims 5 GiB, so a 32-bit GetPartialObject cannot be trusted to reach the offset.
    const { session, responder, log } = await world({
      operations: ALL_OPERATIONS.filter((op) => op !== Op.GetPartialObject64),
      sizes: { 'DCIM/100BODY/A001.MP4': 5 * 1024 ** 3 },
    });
    const e = await entry(session, 'DCIM/100BODY/A001.MP4');
    const offset = 2 * TRANSFER + 5;
    expect(sha((await drain(await session.read(e.id, offset))).bytes)).toBe(sha(BIG.subarray(offset)));
    expect(responder.commands.some((c) => c.op === Op.GetPartialObject)).toBe(false);
    expect(responder.commands.at(-1)!.op).toBe(Op.GetObject);
    expect(log.events('ptp.resume_from_start')).toEqual([expect.objectContaining({ id: e.id, offset })]);
  });

  for (const [framing, size] of [
    ['qemu', 1000],
    ['zlp', 2 * 4096 - 12],
    ['no-zlp', 4096 * 3 + 100],
  ] as Array<[Framing, number]>) {
    it(`reads a data phase announced as 0xFFFFFFFF to its short packet when no length is expected (${framing}, ${size} bytes)`, async () => {
      const root = cameraFolder();
      const data = randomBytes(size);
      put(root, 'u.bin', data);
      const responder = new PtpResponder({ root, framing, unknownLength: ['u.bin'] });
      const s = new PtpSession(responder, { log: new MemoryLogger(), transferBytes: 4096, timeoutMs: 300 });
      await s.open();
      const ds = await s.stream(Op.GetObject, [responder.handleOf('u.bin')], 'GetObject');
      expect(ds.declaredLength).toBeNull();
      const parts: Uint8Array[] = [];
      for (let c = await ds.next(); c; c = await ds.next()) parts.push(c);
      expect(await ds.finish()).toEqual({ code: Rc.OK, params: [] });
      expect(sha(Buffer.concat(parts))).toBe(sha(data));
      await s.close();
      expect(responder.sessionOpen).toBe(false);
    });
  }

  it('gives an empty stream at the end and refuses offsets past it, bad ids and folders', async () => {
    const { session, responder } = await world();
    const e = await entry(session, 'DCIM/100BODY/A002.MP4');
    expect((await drain(await session.read(e.id, SMALL.length))).bytes.length).toBe(0);
    expect(await rejection(session.read(e.id, SMALL.length + 1))).toMatchObject({
      kind: 'permanent',
      code: 'bad-offset',
    });
    expect(await rejection(session.read(e.id, -1))).toMatchObject({ kind: 'permanent', code: 'bad-offset' });
    expect(await rejection(session.read('DCIM/100BODY/A002.MP4', 0))).toMatchObject({
      kind: 'permanent',
      code: 'bad-id',
    });
    expect(await rejection(session.read(handleId(responder.handleOf('DCIM')), 0))).toMatchObject({
      kind: 'permanent',
      code: 'not-a-file',
    });
    expect(await rejection(session.read('0x0000ffff', 0))).toMatchObject({ kind: 'permanent', code: 'ptp-0x2009' });
  });

  it('reads a 64 MB recording without buffering it: the camera is read only as fast as the consumer', async () => {
    const root = cameraFolder();
    const file = path.join(root, 'DCIM/100BODY/LONG.MP4');
    const hash = createHash('sha256');
    const fh = await open(file, 'w');
    for (let i = 0; i < 64; i++) {
      const mb = randomBytes(1024 * 1024);
      hash.update(mb);
      await fh.write(mb);
    }
    await fh.close();
    const { session, responder } = await world({ root }, { transferBytes: 256 * 1024 });
    const e = await entry(session, 'DCIM/100BODY/LONG.MP4');
    const sentBefore = responder.bytesSent;
    const stream = await session.read(e.id, 0);
    const got = createHash('sha256');
    let consumed = 0;
    let maxChunk = 0;
    let maxAhead = 0;
    for await (const c of stream) {
      const chunk = c as Buffer;
      got.update(chunk);
      consumed += chunk.length;
      maxChunk = Math.max(maxChunk, chunk.length);
      maxAhead = Math.max(maxAhead, responder.bytesSent - sentBefore - consumed);
      if (consumed % (8 * 1024 * 1024) < chunk.length) await new Promise((r) => setTimeout(r, 5));
    }
    expect(consumed).toBe(64 * 1024 * 1024);
    expect(got.digest('hex')).toBe(hash.digest('hex'));
    expect(maxChunk).toBeLessThanOrEqual(256 * 1024);
    expect(maxAhead).toBeLessThanOrEqual(1024 * 1024);
  });

  it('holds the session for one transaction at a time: other calls wait for a read to finish', async () => {
    const { session, responder } = await world();
    const e = await entry(session, 'DCIM/100BODY/A001.MP4');
    const stream = await session.read(e.id, 0);
    let batteryDone = false;
    const battery = session.battery().then((b) => {
      batteryDone = true;
      return b;
    });
    const first = await new Promise<Buffer>((r) => stream.once('data', r));
    stream.pause();
    await new Promise((r) => setTimeout(r, 20));
    expect(first.length).toBeGreaterThan(0);
    expect(batteryDone).toBe(false);
    stream.resume();
    await drain(stream);
    expect(await battery).toEqual({ percent: 87, charging: true });
    const order = responder.commands.map((c) => c.op);
    expect(order.indexOf(Op.GetDevicePropValue)).toBeGreaterThan(order.indexOf(Op.GetObject));
  });
});

describe('ptp driver: abort and close', () => {
  it('on abort stops reading, cancels the transaction on the camera, then destroys the stream', async () => {
    const { session, responder } = await world();
    const e = await entry(session, 'DCIM/100BODY/A001.MP4');
    const ac = new AbortController();
    const stream = await session.read(e.id, 0, { signal: ac.signal });
    let cancelsAtClose = -1;
    stream.on('close', () => (cancelsAtClose = cancels(responder).length));
    const errored = new Promise<Error>((r) => stream.once('error', r));
    await new Promise((r) => stream.once('data', r));
    ac.abort();
    const err = await errored;
    expect(err).toMatchObject({ kind: 'transient', code: 'aborted' });
    await new Promise((r) => setImmediate(r));
    expect(cancelsAtClose).toBe(1);
    const sent = responder.bytesSent;
    await new Promise((r) => setTimeout(r, 30));
    expect(responder.bytesSent).toBe(sent);
    // The session is free again and the next read is whole.
    expect(sha((await drain(await session.read(e.id, 0))).bytes)).toBe(sha(BIG));
  });

  it('refuses a read whose signal already aborted', async () => {
    const { session } = await world();
    const e = await entry(session, 'DCIM/100BODY/A002.MP4');
    expect(await rejection(session.read(e.id, 0, { signal: AbortSignal.abort() }))).toMatchObject({
      kind: 'transient',
      code: 'aborted',
    });
  });

  it('cancels the transaction when the consumer destroys the stream', async () => {
    const { session, responder } = await world();
    const e = await entry(session, 'DCIM/100BODY/A001.MP4');
    const stream = await session.read(e.id, 0);
    await new Promise((r) => stream.once('data', r));
    stream.destroy();
    await new Promise((r) => stream.once('close', r));
    expect(cancels(responder)).toHaveLength(1);
    expect(sha((await drain(await session.read(e.id, 0))).bytes)).toBe(sha(BIG));
  });

  it('close destroys open reads with deviceGone, ends the session and the transport', async () => {
    const { session, responder } = await world();
    const e = await entry(session, 'DCIM/100BODY/A001.MP4');
    const stream = await session.read(e.id, 0);
    const errored = new Promise<Error>((r) => stream.once('error', r));
    await new Promise((r) => stream.once('data', r));
    await session.close();
    expect(await errored).toMatchObject({ kind: 'deviceGone', code: 'closed' });
    expect(responder.commands.at(-1)!.op).toBe(Op.CloseSession);
    expect(responder.closed).toBe(true);
    // Each call's rejection is caught at once: awaited one by one, a later one could reject unheard.
    const errors = await Promise.all(
      [session.identity(), session.battery(), all(session), session.read(e.id, 0), session.delete(e.id)].map(rejection),
    );
    for (const err of errors) expect(err).toMatchObject({ kind: 'deviceGone' });
  });
});

describe('ptp driver: delete', () => {
  it('deletes a recording by handle, after which its handle is refused', async () => {
    const { session, root } = await world();
    const e = await entry(session, 'DCIM/100BODY/A002.MP4');
    expect(session.capabilities.delete).toBe(true);
    await session.delete(e.id);
    expect(existsSync(path.join(root, 'DCIM/100BODY/A002.MP4'))).toBe(false);
    expect(await rejection(session.read(e.id, 0))).toMatchObject({ kind: 'permanent', code: 'ptp-0x2009' });
    expect(await rejection(session.delete(e.id))).toMatchObject({ kind: 'permanent', code: 'ptp-0x2009' });
  });

  it('never deletes a folder', async () => {
    const { session, responder, root } = await world();
    expect(await rejection(session.delete(handleId(responder.handleOf('DCIM/100BODY'))))).toMatchObject({
      kind: 'permanent',
      code: 'not-a-file',
    });
    expect(readFileSync(path.join(root, 'DCIM/100BODY/A002.MP4'))).toEqual(SMALL);
    expect(responder.commands.some((c) => c.op === Op.DeleteObject)).toBe(false);
  });

  it('says delete: false for a read-only store, as QEMU reports one', async () => {
    const { session } = await world({ readOnly: true });
    expect(session.capabilities.delete).toBe(false);
    const e = await entry(session, 'DCIM/100BODY/A002.MP4');
    expect(await rejection(session.delete(e.id))).toMatchObject({ kind: 'permanent', code: 'delete-unsupported' });
  });
});

describe('ptp driver: faults', () => {
  it('maps error responses: InvalidObjectHandle is permanent, DeviceBusy transient', async () => {
    const { session, responder } = await world();
    const e = await entry(session, 'DCIM/100BODY/A002.MP4');
    responder.inject({ op: Op.GetObject, kind: 'response', code: Rc.InvalidObjectHandle });
    expect(await rejection(session.read(e.id, 0))).toMatchObject({ kind: 'permanent', code: 'ptp-0x2009' });
    responder.inject({ op: Op.GetObjectInfo, kind: 'response', code: Rc.DeviceBusy });
    expect(await rejection(session.read(e.id, 0))).toMatchObject({ kind: 'transient', code: 'ptp-0x2019' });
    responder.inject({ op: Op.DeleteObject, kind: 'response', code: Rc.StoreReadOnly });
    expect(await rejection(session.delete(e.id))).toMatchObject({ kind: 'permanent', code: 'ptp-0x200e' });
    // Answers are whole transactions: nothing needed cancelling.
    expect(cancels(responder)).toHaveLength(0);
    expect(sha((await drain(await session.read(e.id, 0))).bytes)).toBe(sha(SMALL));
  });

  it('refuses a response for another transaction and recovers', async () => {
    const { session, responder } = await world();
    const e = await entry(session, 'DCIM/100BODY/A002.MP4');
    responder.inject({ op: Op.GetObjectInfo, kind: 'wrong-transaction' });
    expect(await rejection(session.read(e.id, 0))).toMatchObject({
      kind: 'transient',
      code: 'ptp-transaction-mismatch',
    });
    expect(sha((await drain(await session.read(e.id, 0))).bytes)).toBe(sha(SMALL));
  });

  it('fails a data phase that ends early (a short packet) as transient and cancels it', async () => {
    const { session, responder } = await world();
    const e = await entry(session, 'DCIM/100BODY/A001.MP4');
    responder.inject({ op: Op.GetObject, kind: 'short-data', afterBytes: 100_001 });
    expect(await streamError(await session.read(e.id, 0))).toMatchObject({ kind: 'transient', code: 'ptp-short-data' });
    expect(cancels(responder)).toHaveLength(1);
    expect(sha((await drain(await session.read(e.id, 0))).bytes)).toBe(sha(BIG));
  });

  it('on a stall sends Cancel, polls Get Device Status until OK, clears both halts, and fails transient', async () => {
    const { session, responder } = await world({ busyPolls: 2 });
    const e = await entry(session, 'DCIM/100BODY/A001.MP4');
    responder.inject({ op: Op.GetObject, kind: 'stall', afterBytes: 1024 * 1024 });
    const stream = await session.read(e.id, 0);
    expect(await streamError(stream)).toMatchObject({ kind: 'transient', code: 'usb-timeout' });
    const tid = responder.commands.find((c) => c.op === Op.GetObject)!.transactionId;
    const cancel = cancels(responder)[0]!;
    expect(cancel.data).toEqual([...new DatasetWriter().u16(0x4001).u32(tid).bytes()]);
    expect(responder.controls.filter((c) => c.request === ClassRequest.GetDeviceStatus)).toHaveLength(3);
    expect(responder.halts).toEqual(expect.arrayContaining(['in', 'out']));
    expect(sha((await drain(await session.read(e.id, 0))).bytes)).toBe(sha(BIG));
  });

  it('recovers from a stall on a camera that stalls Get Device Status (QEMU)', async () => {
    const { session, responder } = await world({ deviceStatus: false });
    const e = await entry(session, 'DCIM/100BODY/A002.MP4');
    // The camera deleted the file and then never answered.
    responder.inject({ op: Op.DeleteObject, kind: 'stall' });
    expect(await rejection(session.delete(e.id))).toMatchObject({ kind: 'transient', code: 'usb-timeout' });
    expect(cancels(responder)).toHaveLength(1);
    const other = await entry(session, 'root.txt');
    expect((await drain(await session.read(other.id, 0))).bytes.toString()).toBe('top');
  });

  it('resets a camera that stays busy after a cancel and opens a new session', async () => {
    const { session, responder, log } = await world({ busyPolls: 1000 });
    const e = await entry(session, 'DCIM/100BODY/A002.MP4');
    responder.inject({ op: Op.GetObjectInfo, kind: 'stall' });
    expect(await rejection(session.read(e.id, 0))).toMatchObject({ kind: 'transient', code: 'usb-timeout' });
    expect(responder.controls.some((c) => c.request === ClassRequest.DeviceReset)).toBe(true);
    expect(log.events('ptp.reset')).toHaveLength(1);
    const again = await entry(session, 'DCIM/100BODY/A002.MP4');
    expect(responder.commands.filter((c) => c.op === Op.OpenSession)).toHaveLength(2);
    expect(sha((await drain(await session.read(again.id, 0))).bytes)).toBe(sha(SMALL));
  });

  it('a camera unplugged mid-transfer is deviceGone, then and for every later call', async () => {
    const { session, responder } = await world();
    const e = await entry(session, 'DCIM/100BODY/A001.MP4');
    responder.inject({ op: Op.GetObject, kind: 'vanish', afterBytes: 2 * 1024 * 1024 });
    expect(await streamError(await session.read(e.id, 0))).toMatchObject({ kind: 'deviceGone', code: 'usb-gone' });
    // Each call's rejection is caught at once: awaited one by one, a later one could reject unheard.
    const errors = await Promise.all(
      [session.battery(), all(session), session.read(e.id, 0), session.delete(e.id), session.identity()].map(rejection),
    );
    for (const err of errors) expect(err).toMatchObject({ kind: 'deviceGone' });
    await session.close();
  });

  it('a camera unplugged between calls is deviceGone', async () => {
    const { session, responder } = await world();
    responder.unplug();
    expect(await rejection(all(session))).toMatchObject({ kind: 'deviceGone', code: 'usb-gone' });
  });

  it('refuses a length field that lies, without allocating it, and recovers', async () => {
    const { session, responder } = await world();
    const e = await entry(session, 'DCIM/100BODY/A002.MP4');
    responder.inject({ op: Op.GetObjectInfo, kind: 'length', length: 0x7ffffff0 });
    expect(await rejection(session.read(e.id, 0))).toMatchObject({ kind: 'transient', code: 'ptp-too-large' });
    responder.inject({ op: Op.GetObjectInfo, kind: 'length', length: 8 });
    expect(await rejection(session.read(e.id, 0))).toMatchObject({ kind: 'transient', code: 'ptp-bad-length' });
    // Longer than what is sent: the data ends at a short packet before the announced length.
    responder.inject({ op: Op.GetObjectInfo, kind: 'length', length: 4000 });
    expect(await rejection(session.read(e.id, 0))).toMatchObject({ kind: 'transient', code: 'ptp-short-data' });
    expect(sha((await drain(await session.read(e.id, 0))).bytes)).toBe(sha(SMALL));
  });

  it('refuses malformed datasets: unterminated names, huge counts, 64-bit sizes past any real file', async () => {
    const { session, responder } = await world();
    const unterminated = new DatasetWriter()
      .u32(0x00010001)
      .u16(0x3000)
      .u16(0)
      .u32(5)
      .raw(new Uint8Array(40))
      .u8(3)
      .u16(0x41)
      .u16(0x42)
      .u16(0x43)
      .bytes();
    responder.inject({ op: Op.GetObjectInfo, kind: 'payload', bytes: unterminated });
    expect(await rejection(all(session))).toMatchObject({ kind: 'transient', code: 'ptp-unterminated-string' });

    responder.inject({
      op: Op.GetObjectHandles,
      kind: 'payload',
      bytes: new DatasetWriter().u32(0xfffffff0).u32(1).bytes(),
    });
    expect(await rejection(all(session))).toMatchObject({ kind: 'transient', code: 'ptp-bad-count' });

    const e = await entry(session, 'DCIM/100BODY/A002.MP4');
    const big = new DatasetWriter()
      .u32(0x00010001)
      .u16(0x3000)
      .u16(0)
      .u32(0xffffffff)
      .raw(new Uint8Array(40))
      .string('X.MP4')
      .string('')
      .string('')
      .string('')
      .bytes();
    responder.inject(
      { op: Op.GetObjectInfo, kind: 'payload', bytes: big },
      { op: Op.GetObjectPropValue, kind: 'payload', bytes: new DatasetWriter().u64(2n ** 60n).bytes() },
    );
    expect(await rejection(session.read(e.id, 0))).toMatchObject({ kind: 'transient', code: 'ptp-too-large' });
    expect((await all(session)).length).toBe(9);
  });

  it('refuses to open a camera whose DeviceInfo is malformed outside and inside the session, and closes the transport', async () => {
    const responder = new PtpResponder({ root: cameraFolder() });
    responder.inject({ op: Op.GetDeviceInfo, kind: 'payload', bytes: new Uint8Array([100, 0, 6, 0]), times: 2 });
    const driver = createPtpDriver({
      openTransport: async () => responder,
      timeoutMs: 300,
      session: { drainTimeoutMs: 20 },
    });
    expect(await rejection(driver.open(DEVICE, new MemoryLogger()))).toMatchObject({
      kind: 'transient',
      code: 'ptp-truncated',
    });
    expect(responder.closed).toBe(true);
  });

  it('opens a new session when the camera says it has none', async () => {
    const { session, responder } = await world();
    responder.sessionOpen = false;
    expect(await rejection(session.battery())).toMatchObject({ kind: 'transient', code: 'ptp-0x2003' });
    expect(await session.battery()).toEqual({ percent: 87, charging: true });
  });
});

describe('ptp driver: quirks', () => {
  const GIB = 1024 ** 3;
  const tuning: PtpDriverOptions['session'] = { drainTimeoutMs: 20, statusPollMs: 2 };
  const firstOps = (r: PtpResponder, n: number) => r.commands.slice(0, n).map((c) => [c.op, c.transactionId]);

  it('asks GetDeviceInfo inside the session when refused outside, and takes that path at once on the next docking', async () => {
    const root = cameraFolder();
    const driver = createPtpDriver({ openTransport: async () => current, timeoutMs: 300, session: tuning });
    let current = new PtpResponder({ root, deviceInfoNeedsSession: true });
    const firstLog = new MemoryLogger();
    const first = await driver.open(DEVICE, firstLog);
    expect(await first.identity()).toEqual({ serial: 'MTP-0002', model: 'Responder BodyCam PTP', firmware: '2.4.1' });
    expect(firstOps(current, 3)).toEqual([
      [Op.GetDeviceInfo, 0],
      [Op.OpenSession, 0],
      [Op.GetDeviceInfo, 1],
    ]);
    expect(firstLog.events('ptp.device_info_refused')).toEqual([
      expect.objectContaining({ operation: 'GetDeviceInfo', code: 'ptp-0x2003' }),
    ]);
    expect(firstLog.events('ptp.open_path')).toEqual([
      expect.objectContaining({ vidPid: '46f4:0004', path: 'in-session', source: 'fallback' }),
    ]);
    await first.close();

    // Docked again: no refused transaction first.
    current = new PtpResponder({ root, deviceInfoNeedsSession: true });
    const againLog = new MemoryLogger();
    const again = await driver.open(DEVICE, againLog);
    sessions.push(again);
    expect(firstOps(current, 2)).toEqual([
      [Op.OpenSession, 0],
      [Op.GetDeviceInfo, 1],
    ]);
    expect(againLog.events('ptp.device_info_refused')).toHaveLength(0);
    expect(againLog.events('ptp.open_path')).toEqual([expect.objectContaining({ source: 'an earlier docking' })]);
    expect((await all(again)).length).toBe(9);

    // What one kind of camera needs says nothing about another.
    current = new PtpResponder({ root });
    sessions.push(await driver.open({ ...DEVICE, productId: 0x0005 }, new MemoryLogger()));
    expect(firstOps(current, 2)).toEqual([
      [Op.GetDeviceInfo, 0],
      [Op.OpenSession, 0],
    ]);
  });

  it('fails permanently when GetDeviceInfo is refused inside the session too', async () => {
    const responder = new PtpResponder({ root: cameraFolder() }).inject({
      op: Op.GetDeviceInfo,
      kind: 'response',
      code: Rc.SessionNotOpen,
      times: 2,
    });
    const driver = createPtpDriver({ openTransport: async () => responder, timeoutMs: 300, session: tuning });
    const err = await rejection(driver.open(DEVICE, new MemoryLogger()));
    expect(err).toMatchObject({ kind: 'permanent', code: 'ptp-0x2003' });
    expect(err.message).toMatch(/GetDeviceInfo.*SessionNotOpen \(0x2003\)/);
    expect(responder.closed).toBe(true);
  });

  it('does not take a refused OpenSession for a refused GetDeviceInfo', async () => {
    const responder = new PtpResponder({ root: cameraFolder() }).inject({
      op: Op.OpenSession,
      kind: 'response',
      code: Rc.ParameterNotSupported,
    });
    const log = new MemoryLogger();
    const err = await rejection(
      createPtpDriver({ openTransport: async () => responder, timeoutMs: 300, session: tuning }).open(DEVICE, log),
    );
    expect(err).toMatchObject({ kind: 'permanent', code: 'ptp-0x2006' });
    expect(err.message).toMatch(/^OpenSession/);
    expect(log.events('ptp.device_info_refused')).toHaveLength(0);
    expect(responder.commands.map((c) => c.op)).toEqual([Op.GetDeviceInfo, Op.OpenSession]);
  });

  it('keeps DeviceBusy and transport timeouts transient, and deterministic answers permanent', async () => {
    const busy = new PtpResponder({ root: cameraFolder() }).inject({
      op: Op.GetDeviceInfo,
      kind: 'response',
      code: Rc.DeviceBusy,
      times: 2,
    });
    expect(
      await rejection(
        createPtpDriver({ openTransport: async () => busy, timeoutMs: 300, session: tuning }).open(
          DEVICE,
          new MemoryLogger(),
        ),
      ),
    ).toMatchObject({ kind: 'transient', code: 'ptp-0x2019' });
    const silent = new PtpResponder({ root: cameraFolder() }).inject({ op: Op.GetDeviceInfo, kind: 'stall', times: 2 });
    expect(
      await rejection(
        createPtpDriver({ openTransport: async () => silent, timeoutMs: 100, session: tuning }).open(
          DEVICE,
          new MemoryLogger(),
        ),
      ),
    ).toMatchObject({ kind: 'transient', code: 'usb-timeout' });

    const { session, responder } = await world();
    const e = await entry(session, 'DCIM/100BODY/A002.MP4');
    for (const code of [Rc.OperationNotSupported, Rc.ParameterNotSupported, Rc.InvalidObjectHandle]) {
      responder.inject({ op: Op.GetObjectInfo, kind: 'response', code });
      expect(await rejection(session.read(e.id, 0))).toMatchObject({
        kind: 'permanent',
        code: `ptp-0x${code.toString(16)}`,
      });
    }
  });

  it('follows the quirk table: in-session DeviceInfo from the first docking, a pause after OpenSession, no delete, no partial read', async () => {
    const slept: number[] = [];
    const table: PtpQuirkRow[] = [
      {
        vendorId: DEVICE.vendorId!,
        productId: DEVICE.productId!,
        device: 'test camera',
        flags: { deviceInfoInSession: true, openSessionDelayMs: 250, noDelete: true, noPartialObject: true },
        reasons: {},
      },
    ];
    const responder = new PtpResponder({ root: cameraFolder(), rename: HOSTILE_NAMES });
    const log = new MemoryLogger();
    const driver = createPtpDriver({
      openTransport: async () => responder,
      timeoutMs: 300,
      quirks: table,
      session: { ...tuning, sleep: async (ms) => void slept.push(ms) },
    });
    const session = await driver.open(DEVICE, log);
    sessions.push(session);
    expect(firstOps(responder, 2)).toEqual([
      [Op.OpenSession, 0],
      [Op.GetDeviceInfo, 1],
    ]);
    expect(slept).toContain(250);
    expect(log.events('ptp.quirks')).toEqual([
      expect.objectContaining({
        vidPid: '46f4:0004',
        flags: ['deviceInfoInSession', 'openSessionDelayMs=250', 'noDelete', 'noPartialObject'],
      }),
    ]);
    expect(session.capabilities).toEqual({ resume: false, delete: false, clock: true });
    const e = await entry(session, 'DCIM/100BODY/A002.MP4');
    expect(await rejection(session.delete(e.id))).toMatchObject({ kind: 'permanent', code: 'delete-unsupported' });
    expect(await rejection(session.read(e.id, 5))).toMatchObject({ kind: 'permanent', code: 'resume-unsupported' });
    expect(
      responder.commands.some(
        (c) => c.op === Op.DeleteObject || c.op === Op.GetPartialObject || c.op === Op.GetPartialObject64,
      ),
    ).toBe(false);
  });

  it('knows the MTP gadget stack of issue 29 by its VID:PID', async () => {
    const responder = new PtpResponder({ root: cameraFolder(), deviceInfoNeedsSession: true });
    const log = new MemoryLogger();
    const session = await createPtpDriver({
      openTransport: async () => responder,
      timeoutMs: 300,
      session: tuning,
    }).open({ ...DEVICE, vendorId: 0x1d6b, productId: 0x0100 }, log);
    sessions.push(session);
    expect(responder.commands[0]!.op).toBe(Op.OpenSession);
    expect(log.events('ptp.open_path')).toEqual([
      expect.objectContaining({ vidPid: '1d6b:0100', source: 'quirk table' }),
    ]);
    for (const row of PTP_QUIRKS) {
      for (const flag of Object.keys(row.flags))
        expect(row.reasons[flag as keyof PtpQuirkRow['flags']], `${row.device}: ${flag}`).toMatchObject({
          why: expect.any(String),
          seen: expect.any(String),
        });
    }
  });

  it('lists a whole storage at once when the table says so, with the same paths as walking its folders', async () => {
    const walked = (await all((await world()).session)).map((e) => e.path).sort();
    const table: PtpQuirkRow[] = [
      {
        vendorId: DEVICE.vendorId!,
        productId: DEVICE.productId!,
        device: 'test camera',
        flags: { listWholeStorage: true },
        reasons: {},
      },
    ];
    const { session, responder } = await world({}, { quirks: table });
    const entries = await all(session);
    expect(entries.map((e) => e.path).sort()).toEqual(walked);
    expect(responder.commands.filter((c) => c.op === Op.GetObjectHandles).map((c) => c.params)).toEqual([
      [STORAGE_ID, 0, 0],
    ]);
    const a002 = entries.find((x) => x.path === 'DCIM/100BODY/A002.MP4')!;
    expect(sha((await drain(await session.read(a002.id, 0))).bytes)).toBe(sha(SMALL));

    const shallow = await world({}, { quirks: table, maxDepth: 1 });
    expect((await all(shallow.session)).map((e) => e.path)).toEqual(['root.txt']);
    expect(shallow.log.events('ptp.too_deep').length).toBeGreaterThan(0);

    // A file whose folder claims to sit inside itself is skipped, not followed forever.
    const looped = await world({}, { quirks: table });
    const dcim = looped.responder.handleOf('DCIM');
    const info = (name: string, format: number) =>
      encodeObjectInfo({
        storageId: STORAGE_ID,
        format,
        protectionStatus: 0,
        compressedSize: 3,
        thumbFormat: 0,
        thumbCompressedSize: 0,
        thumbPixWidth: 0,
        thumbPixHeight: 0,
        imagePixWidth: 0,
        imagePixHeight: 0,
        imageBitDepth: 0,
        parent: dcim,
        associationType: 0,
        associationDesc: 0,
        sequenceNumber: 0,
        filename: name,
        captureDate: '',
        modificationDate: '',
        keywords: '',
      });
    looped.responder.inject(
      {
        op: Op.GetObjectHandles,
        kind: 'payload',
        bytes: new DatasetWriter().u32Array([looped.responder.handleOf('root.txt')]).bytes(),
      },
      { op: Op.GetObjectInfo, kind: 'payload', bytes: info('x.mp4', 0x3000) },
      { op: Op.GetObjectInfo, kind: 'payload', bytes: info('loop', 0x3001) },
    );
    expect(await all(looped.session)).toEqual([]);
    expect(looped.log.events('ptp.folder_loop')).toHaveLength(1);
  });

  it('reads the tail of a recording past 4 GiB with GetPartialObject64, its size from ObjectSize', async () => {
    const root = cameraFolder();
    put(root, 'DCIM/102BODY/LONG.MP4', '');
    const size = 5 * GIB + 12_345;
    const { session, responder } = await world({ root, synthetic: { 'DCIM/102BODY/LONG.MP4': size } });
    const e = await entry(session, 'DCIM/102BODY/LONG.MP4');
    expect(e.bytes).toBe(size);
    expect(responder.commands.some((c) => c.op === Op.GetObjectPropValue && c.params[1] === 0xdc04)).toBe(true);
    const offset = size - 3 * TRANSFER - 7;
    const { bytes } = await drain(await session.read(e.id, offset));
    expect(sha(bytes)).toBe(sha(syntheticBytes(offset, size - offset)));
    const cmd = responder.commands.find((c) => c.op === Op.GetPartialObject64)!;
    expect(cmd.params).toEqual([parseInt(e.id, 16), offset % 2 ** 32, 1, size - offset]);
  });

  it('refuses DeleteObject for the rest of the docking once the camera answers OperationNotSupported, and says so once', async () => {
    const { session, responder, log, root } = await world({ refuseDelete: true });
    expect(session.capabilities.delete).toBe(true);
    const a = await entry(session, 'DCIM/100BODY/A002.MP4');
    const b = await entry(session, 'root.txt');
    expect(await rejection(session.delete(a.id))).toMatchObject({ kind: 'permanent', code: 'ptp-0x2005' });
    expect(session.capabilities.delete).toBe(false);
    expect(await rejection(session.delete(b.id))).toMatchObject({ kind: 'permanent', code: 'delete-unsupported' });
    expect(responder.commands.filter((c) => c.op === Op.DeleteObject)).toHaveLength(1);
    expect(log.events('ptp.delete_unsupported')).toHaveLength(1);
    expect(readFileSync(path.join(root, 'DCIM/100BODY/A002.MP4'))).toEqual(SMALL);
  });
});

describe('ptp usb transport', () => {
  const QEMU_CONFIG = {
    interfaces: [
      {
        interfaceNumber: 0,
        alternate: {
          interfaceClass: 6,
          interfaceSubclass: 1,
          interfaceProtocol: 1,
          endpoints: [
            { endpointNumber: 1, direction: 'in', type: 'bulk', packetSize: 512 },
            { endpointNumber: 2, direction: 'out', type: 'bulk', packetSize: 512 },
            { endpointNumber: 3, direction: 'in', type: 'interrupt', packetSize: 64 },
          ],
        },
      },
    ],
  };

  it('translates node-usb errors once', () => {
    expect(usbError(new Error('transferIn error: Disconnected'), 'bulk-in')).toMatchObject({
      kind: 'deviceGone',
      code: 'usb-gone',
    });
    expect(usbError(new Error('transferIn error: Stall'), 'bulk-in')).toMatchObject({
      kind: 'transient',
      code: 'usb-stall',
    });
    expect(usbError(new Error('controlTransferIn error: endpoint STALL condition'), 'status')).toMatchObject({
      code: 'usb-stall',
    });
    // nusb reports an expired timeout as a cancelled transfer.
    expect(usbError(new Error('transferIn error: Cancelled'), 'bulk-in')).toMatchObject({
      kind: 'transient',
      code: 'usb-timeout',
    });
    expect(usbError(new Error('claimInterface error: Device or resource busy'), 'claim')).toMatchObject({
      kind: 'transient',
      code: 'usb-busy',
    });
    expect(usbError(new Error('transferIn error: Fault'), 'bulk-in')).toMatchObject({
      kind: 'transient',
      code: 'usb-io',
    });
  });

  it('finds the still-image interface and its endpoints, or a vendor-class one shaped like it', () => {
    expect(findStillImageInterface(QEMU_CONFIG)).toEqual({
      number: 0,
      bulkIn: 1,
      bulkOut: 2,
      interruptIn: 3,
      maxPacketSize: 512,
    });
    const vendor = {
      interfaces: [
        {
          ...QEMU_CONFIG.interfaces[0]!,
          interfaceNumber: 2,
          alternate: { ...QEMU_CONFIG.interfaces[0]!.alternate, interfaceClass: 0xff },
        },
      ],
    };
    expect(findStillImageInterface(vendor)?.number).toBe(2);
    const hid = {
      interfaces: [
        {
          interfaceNumber: 0,
          alternate: {
            interfaceClass: 3,
            interfaceSubclass: 1,
            interfaceProtocol: 1,
            endpoints: [{ endpointNumber: 1, direction: 'in', type: 'interrupt', packetSize: 8 }],
          },
        },
      ],
    };
    expect(findStillImageInterface(hid)).toBeNull();
  });

  it('opens, claims and talks to the right endpoints with the requested timeouts', async () => {
    const calls: string[] = [];
    const device: UsbStillImageDevice = {
      opened: false,
      configuration: QEMU_CONFIG,
      open: async () => void calls.push('open'),
      close: async () => void calls.push('close'),
      claimInterface: async (n) => void calls.push(`claim ${n}`),
      releaseInterface: async (n) => void calls.push(`release ${n}`),
      detachKernelDriver: async () => Promise.reject(new Error('detachKernelDriver error: no driver')),
      nativeTransferIn: async (ep, timeout, length) => (
        calls.push(`in ${ep} ${timeout} ${length}`),
        ep === 1 ? new Uint8Array(3) : null
      ),
      nativeTransferOut: async (ep, timeout, data) => (calls.push(`out ${ep} ${timeout} ${data.length}`), data.length),
      nativeControlTransferIn: async (s, timeout, length) => (
        calls.push(`ctrl-in ${s.requestType} ${s.recipient} ${s.request} ${s.index} ${length}`),
        new Uint8Array([4, 0, 1, 0x20])
      ),
      nativeControlTransferOut: async (s, _t, data) => (
        calls.push(`ctrl-out ${s.request} ${s.index} ${data?.length}`),
        data?.length ?? 0
      ),
      clearHalt: async (dir, ep) => void calls.push(`halt ${dir} ${ep}`),
    };
    const t = await openUsbTransport(device, { outTimeoutMs: 4000 });
    expect(t.maxPacketSize).toBe(512);
    expect((await t.bulkIn(1024, 777)).length).toBe(3);
    await t.bulkOut(new Uint8Array(12));
    expect(await t.controlIn(ClassRequest.GetDeviceStatus, 0, 64)).toEqual(new Uint8Array([4, 0, 1, 0x20]));
    await t.controlOut(ClassRequest.Cancel, 0, new Uint8Array(6));
    await t.clearHalt('out');
    // The interrupt endpoint answers nothing: node-usb's "no data" is a stall.
    expect(await rejection(t.interruptIn!(64, 10))).toMatchObject({ code: 'usb-stall' });
    await t.close();
    expect(await rejection(t.bulkIn(512, 10))).toMatchObject({ kind: 'deviceGone' });
    expect(calls).toEqual([
      'open',
      'claim 0',
      'in 1 777 1024',
      'out 2 4000 12',
      'ctrl-in class interface 103 0 64',
      'ctrl-out 100 0 6',
      'halt out 2',
      'in 3 10 64',
      'release 0',
      'close',
    ]);
  });
});
