/**
 * The device side of PTP over an in-memory PtpTransport: a camera whose one storage is a real
 * folder on disk. It keeps the rules hardware keeps (bulk-in requests in whole packets, one
 * transfer at a time, no new command while a transaction is in flight, a cancel that clears
 * what was queued), produces object data only as the host reads it, and injects the faults a
 * real camera shows: short data, wrong transaction ids, stalls, error responses, unplugging
 * mid-transfer and malformed replies.
 */
import { lstat, open, readdir, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { DriverError } from '../../drivers/types.js';
import {
  CANCEL_CODE,
  ClassRequest,
  ContainerType,
  Format,
  HEADER_BYTES,
  ObjectProp,
  Op,
  Rc,
} from '../../drivers/ptp/constants.js';
import {
  DatasetWriter,
  decodeHeader,
  decodeParamContainer,
  encodeContainer,
  encodeDataHeader,
} from '../../drivers/ptp/codec.js';
import { encodeDeviceInfo, encodeObjectInfo, formatPtpDateTime } from '../../drivers/ptp/datasets.js';
import type { PtpTransport, UsbDirection } from '../../drivers/ptp/transport.js';
import { DeviceProps, type DevicePropOptions, type PropAnswer, type ResponderProp } from './ptp-device-props.js';

export const STORAGE_ID = 0x00010001;

/**
 * How a container whose length is a whole number of packets is ended: `zlp` sends a
 * zero-length packet (the PTP rule), `no-zlp` lets the next container follow in the same
 * transfer, `qemu` ends the transfer at every container's end as QEMU's usb-mtp does.
 */
export type Framing = 'qemu' | 'zlp' | 'no-zlp';

/**
 * Each fault fires on the next command with this operation code, `times` times (default 1);
 * with `object`, only on a command about that recording (its path under the root).
 */
export type PtpFault = { op: number; times?: number; object?: string } & (
  | { kind: 'response'; code: number }
  | { kind: 'wrong-transaction' }
  /** The data phase ends after `afterBytes` payload bytes though its header announced more. */
  | { kind: 'short-data'; afterBytes: number }
  /** Bulk-in stops answering after `afterBytes` payload bytes (at the response when there is no data) until a Cancel. */
  | { kind: 'stall'; afterBytes?: number }
  /** The device is unplugged after `afterBytes` payload bytes. */
  | { kind: 'vanish'; afterBytes?: number }
  /** The dataset is replaced by these bytes. */
  | { kind: 'payload'; bytes: Uint8Array }
  /** The data container's length field says this, whatever follows. */
  | { kind: 'length'; length: number }
);

export interface PtpResponderOptions extends DevicePropOptions {
  root: string;
  maxPacketSize?: number;
  framing?: Framing;
  /** OperationsSupported; the responder refuses anything not listed. */
  operations?: number[];
  manufacturer?: string;
  model?: string;
  deviceVersion?: string;
  serialNumber?: string;
  readOnly?: boolean;
  /** false: Get Device Status and Device Reset stall, as on QEMU's usb-mtp. */
  deviceStatus?: boolean;
  /** Get Device Status answers DeviceBusy this many times after a Cancel. */
  busyPolls?: number;
  /** Relative path → the filename the device reports for it. */
  rename?: Record<string, string>;
  /** Relative path → the size the device reports (ObjectInfo says 0xFFFFFFFF from 4 GiB on). */
  sizes?: Record<string, number>;
  /** Relative paths whose GetObject data container announces 0xFFFFFFFF. */
  unknownLength?: string[];
  /**
   * Relative path (a file on disk, its content ignored) → the size of a made-up recording whose
   * bytes are syntheticBytes() of their position: 5 GiB without 5 GiB anywhere.
   */
  synthetic?: Record<string, number>;
  // Quirks of real MTP stacks (issue 29):
  /** GetDeviceInfo outside a session is answered SessionNotOpen, as uMTP-Responder does. */
  deviceInfoNeedsSession?: boolean;
  /** ObjectInfo says 0xFFFFFFFF for every file; only the ObjectSize property knows the size. */
  unknownSizes?: boolean;
  /** DeleteObject is listed in DeviceInfo but every call is answered OperationNotSupported. */
  refuseDelete?: boolean;
  // Device properties for the clock and settings (issue 24) are in DevicePropOptions.
  /** GetDevicePropDesc and SetDevicePropValue are listed but answered OperationNotSupported. */
  refuseDeviceProps?: boolean;
}

export type { ResponderProp } from './ptp-device-props.js';

/** An operation whose dataset comes from the host. */
const DATA_OUT_OPS = new Set<number>([Op.SetDevicePropValue]);

/** The byte at `pos` of a synthetic recording; the high half of the position changes it too. */
export function syntheticBytes(pos: number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const p = pos + i;
    const lo = p % 0x1_0000_0000;
    const hi = Math.floor(p / 0x1_0000_0000);
    out[i] = (lo ^ (lo >>> 8) ^ (lo >>> 16) ^ (lo >>> 24) ^ (hi * 0x9d)) & 0xff;
  }
  return out;
}

export const ALL_OPERATIONS = [
  Op.GetDeviceInfo,
  Op.OpenSession,
  Op.CloseSession,
  Op.GetStorageIDs,
  Op.GetStorageInfo,
  Op.GetObjectHandles,
  Op.GetObjectInfo,
  Op.GetObject,
  Op.DeleteObject,
  Op.GetDevicePropDesc,
  Op.GetDevicePropValue,
  Op.SetDevicePropValue,
  Op.GetPartialObject,
  Op.GetObjectPropValue,
  Op.GetPartialObject64,
];

interface DeviceObject {
  handle: number;
  /** 0 for objects in the root folder. */
  parent: number;
  abs: string;
  rel: string;
  name: string;
  folder: boolean;
  size: number;
  mtime: Date;
}

interface Source {
  length: number;
  read(pos: number, n: number): Promise<Uint8Array>;
  close(): Promise<void>;
}

interface Outgoing {
  header: Uint8Array;
  payload: Source;
  total: number;
  sent: number;
  data: boolean;
  stallAt?: number;
  vanishAt?: number;
}

interface Answer {
  code: number;
  params?: number[];
  data?: Source;
  /** Header length field for a data container of unknown length. */
  unknownLength?: boolean;
}

function bytesSource(bytes: Uint8Array): Source {
  return { length: bytes.length, read: async (pos, n) => bytes.subarray(pos, pos + n), close: async () => undefined };
}

function fileSource(abs: string, offset: number, length: number): Source {
  let fh: Promise<FileHandle> | null = null;
  return {
    length,
    async read(pos, n) {
      fh ??= open(abs, 'r');
      const buf = Buffer.alloc(n);
      // A file that shrank reads as zeros past its end, as QEMU sends them.
      await (await fh).read(buf, 0, n, offset + pos);
      return buf;
    },
    async close() {
      if (fh) await (await fh).close().catch(() => undefined);
      fh = null;
    },
  };
}

function syntheticSource(offset: number, length: number): Source {
  return { length, read: async (pos, n) => syntheticBytes(offset + pos, n), close: async () => undefined };
}

/** Every operation but the partial reads: a camera that can only send a whole object. */
export const WITHOUT_PARTIAL_READS = ALL_OPERATIONS.filter(
  (op) => op !== Op.GetPartialObject && op !== Op.GetPartialObject64,
);

const tick = () => new Promise<void>((r) => setImmediate(r));
const gone = () => new DriverError('deviceGone', 'usb-gone', 'transferIn error: Disconnected');
const stalled = (what: string) => new DriverError('transient', 'usb-stall', `${what} error: Stall`);

export class PtpResponder implements PtpTransport {
  readonly maxPacketSize: number;
  /** Every command received, in order. */
  readonly commands: Array<{ op: number; transactionId: number; params: number[] }> = [];
  readonly controls: Array<{ request: number; data: number[] }> = [];
  readonly halts: UsbDirection[] = [];
  /** Every data container the host sent, header included, byte for byte. */
  readonly dataPhases: Array<{ op: number; transactionId: number; bytes: Uint8Array }> = [];
  /** Zero-length packets the host sent to end a data phase. */
  zeroLengthPackets = 0;
  /** BatteryLevel, DateTime and the vendor properties. */
  readonly deviceProps: DeviceProps;
  /** A command with a data phase from the host, waiting for that data. */
  private dataOut: {
    op: number;
    transactionId: number;
    params: number[];
    fault: PtpFault | undefined;
    parts: Uint8Array[];
    got: number;
    zlpOwed: boolean;
  } | null = null;
  /** Object and dataset payload bytes handed to the host so far. */
  bytesSent = 0;
  sessionOpen = false;
  closed = false;
  private unplugged = false;
  private frozen = false;
  private busy = 0;
  private queue: Outgoing[] = [];
  private wake: (() => void) | null = null;
  private inTransfer = false;
  private faults: PtpFault[] = [];
  private objects = new Map<number, DeviceObject>();
  private readonly framing: Framing;
  private readonly operations: number[];
  private readonly properties: number[];

  constructor(readonly o: PtpResponderOptions) {
    this.maxPacketSize = o.maxPacketSize ?? 512;
    this.framing = o.framing ?? 'qemu';
    this.operations = o.operations ?? ALL_OPERATIONS;
    this.deviceProps = new DeviceProps(o);
    this.properties = this.deviceProps.listed;
  }

  /** What the camera's clock says now. */
  get cameraTime(): Date {
    return this.deviceProps.cameraTime;
  }

  /** Every DateTime string the host set, as it arrived. */
  get clockSets(): readonly string[] {
    return this.deviceProps.clockSets;
  }

  /** Current vendor property values by code. */
  get props(): ReadonlyMap<number, ResponderProp> {
    return this.deviceProps.values;
  }

  inject(...faults: PtpFault[]): this {
    this.faults.push(...faults);
    return this;
  }

  unplug(): void {
    this.unplugged = true;
    this.wake?.();
  }

  get isUnplugged(): boolean {
    return this.unplugged;
  }

  /** Handle of the object at a relative path (after the session opened). */
  handleOf(rel: string): number {
    const handle = this.handleIfAny(rel);
    if (handle === undefined) throw new Error(`no object ${rel}`);
    return handle;
  }

  private handleIfAny(rel: string): number | undefined {
    for (const o of this.objects.values()) if (o.rel === rel) return o.handle;
    return undefined;
  }

  // ---- transport side ----

  async bulkOut(data: Uint8Array): Promise<void> {
    await tick();
    if (this.unplugged) throw gone();
    // QEMU stalls a command that arrives while a transaction is still in flight.
    if (this.queue.length > 0) throw stalled('transferOut');
    if (this.dataOut) return this.receiveData(data);
    if (data.length === 0) {
      this.zeroLengthPackets++;
      return;
    }
    const c = decodeParamContainer(data);
    if (c.type !== ContainerType.Command) throw stalled('transferOut');
    this.commands.push({ op: c.code, transactionId: c.transactionId, params: c.params });
    const fault = this.takeFault(c.code, c.params[0]);
    if (DATA_OUT_OPS.has(c.code)) {
      this.dataOut = {
        op: c.code,
        transactionId: c.transactionId,
        params: c.params,
        fault,
        parts: [],
        got: 0,
        zlpOwed: false,
      };
      return;
    }
    const answer = await this.answer(c.code, c.params, fault);
    this.enqueue(c.code, c.transactionId, answer, fault);
    this.wake?.();
  }

  /**
   * The host's data phase: one container, perhaps over several transfers, and the zero-length
   * packet that must follow when it filled its last packet. Only then does the camera answer.
   */
  private async receiveData(data: Uint8Array): Promise<void> {
    const d = this.dataOut!;
    if (d.zlpOwed) {
      if (data.length !== 0) throw stalled('transferOut');
      this.zeroLengthPackets++;
    } else {
      d.parts.push(data);
      d.got += data.length;
      const first = d.parts[0]!;
      const header = decodeHeader(first);
      if (header.type !== ContainerType.Data || header.code !== d.op || header.transactionId !== d.transactionId)
        throw stalled('transferOut');
      if (d.got < header.length) return;
      if (d.got > header.length) throw stalled('transferOut');
      if (header.length % this.maxPacketSize === 0) {
        d.zlpOwed = true;
        return;
      }
    }
    this.dataOut = null;
    const bytes = new Uint8Array(d.got);
    let at = 0;
    for (const p of d.parts) {
      bytes.set(p, at);
      at += p.length;
    }
    this.dataPhases.push({ op: d.op, transactionId: d.transactionId, bytes });
    const answer = await this.answer(d.op, d.params, d.fault, bytes.subarray(HEADER_BYTES));
    this.enqueue(d.op, d.transactionId, answer, d.fault);
    this.wake?.();
  }

  async bulkIn(maxLength: number, timeoutMs: number): Promise<Uint8Array> {
    await tick();
    if (this.unplugged) throw gone();
    if (this.inTransfer) throw new Error('two bulk-in transfers at once');
    if (maxLength <= 0 || maxLength % this.maxPacketSize !== 0)
      throw new Error(`bulk-in of ${maxLength} bytes is not a whole number of ${this.maxPacketSize}-byte packets`);
    this.inTransfer = true;
    try {
      await this.waitForData(timeoutMs);
      return await this.transfer(maxLength, timeoutMs);
    } finally {
      this.inTransfer = false;
    }
  }

  async controlIn(request: number, _value: number, _length: number): Promise<Uint8Array> {
    await tick();
    if (this.unplugged) throw gone();
    this.controls.push({ request, data: [] });
    if (request !== ClassRequest.GetDeviceStatus || this.o.deviceStatus === false) throw stalled('controlTransferIn');
    const code = this.busy > 0 ? Rc.DeviceBusy : Rc.OK;
    if (this.busy > 0) this.busy--;
    return new DatasetWriter().u16(4).u16(code).bytes();
  }

  async controlOut(request: number, _value: number, data: Uint8Array): Promise<void> {
    await tick();
    if (this.unplugged) throw gone();
    this.controls.push({ request, data: [...data] });
    if (request === ClassRequest.Cancel) {
      const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
      if (data.length < 6 || v.getUint16(0, true) !== CANCEL_CODE) throw stalled('controlTransferOut');
      await this.clearQueue();
      this.busy = this.o.busyPolls ?? 1;
      return;
    }
    if (request === ClassRequest.DeviceReset && this.o.deviceStatus !== false) {
      await this.clearQueue();
      this.sessionOpen = false;
      return;
    }
    throw stalled('controlTransferOut');
  }

  async clearHalt(direction: UsbDirection): Promise<void> {
    await tick();
    if (this.unplugged) throw gone();
    this.halts.push(direction);
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.clearQueue();
  }

  // ---- USB framing ----

  private async clearQueue(): Promise<void> {
    const q = this.queue;
    this.queue = [];
    this.frozen = false;
    for (const c of q) await c.payload.close();
  }

  private async waitForData(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.frozen || this.queue.length === 0) {
      if (this.unplugged) throw gone();
      const left = deadline - Date.now();
      if (left <= 0) throw new DriverError('transient', 'usb-timeout', 'transferIn error: Cancelled');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.wake = null;
    }
  }

  private async transfer(max: number, timeoutMs: number): Promise<Uint8Array> {
    const parts: Uint8Array[] = [];
    let got = 0;
    while (got < max) {
      const c = this.queue[0];
      if (!c) break;
      if (c.sent === c.total) {
        // The zero-length packet owed by a container that filled the last transfer exactly.
        this.queue.shift();
        await c.payload.close();
        break;
      }
      const n = Math.min(max - got, c.total - c.sent);
      if (c.vanishAt !== undefined && c.sent + n > c.vanishAt) {
        this.unplug();
        throw gone();
      }
      if (c.stallAt !== undefined && c.sent + n > c.stallAt) {
        // A transfer that never completes: the host's timeout cancels it and its bytes are lost.
        this.frozen = true;
        c.stallAt = undefined;
        await new Promise((r) => setTimeout(r, timeoutMs));
        if (this.unplugged) throw gone();
        throw new DriverError('transient', 'usb-timeout', 'transferIn error: Cancelled');
      }
      parts.push(await this.readOut(c, n));
      if (c.data) this.bytesSent += Math.max(0, c.sent + n - Math.max(c.sent, HEADER_BYTES));
      c.sent += n;
      got += n;
      if (c.sent < c.total) continue;
      const shortPacket = c.total % this.maxPacketSize !== 0;
      if (shortPacket || this.framing === 'qemu' || (this.framing === 'zlp' && got < max)) {
        this.queue.shift();
        await c.payload.close();
        break;
      }
      if (this.framing === 'zlp') break;
      this.queue.shift();
      await c.payload.close();
    }
    const out = new Uint8Array(got);
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }

  private async readOut(c: Outgoing, n: number): Promise<Uint8Array> {
    const out = new Uint8Array(n);
    let at = 0;
    if (c.sent < HEADER_BYTES) {
      const h = c.header.subarray(c.sent, Math.min(HEADER_BYTES, c.sent + n));
      out.set(h, 0);
      at = h.length;
    }
    if (at < n) out.set(await c.payload.read(c.sent + at - HEADER_BYTES, n - at), at);
    return out;
  }

  // ---- PTP ----

  private takeFault(op: number, param0: number | undefined): PtpFault | undefined {
    const about = (f: PtpFault) => f.object === undefined || this.handleIfAny(f.object) === param0;
    const i = this.faults.findIndex((f) => f.op === op && about(f));
    if (i < 0) return undefined;
    const f = this.faults[i]!;
    if ((f.times ?? 1) <= 1) this.faults.splice(i, 1);
    else this.faults[i] = { ...f, times: (f.times ?? 1) - 1 };
    return f;
  }

  private enqueue(op: number, tid: number, a: Answer, fault: PtpFault | undefined): void {
    const stallAt = fault?.kind === 'stall' ? (fault.afterBytes ?? 0) : undefined;
    const vanishAt = fault?.kind === 'vanish' ? (fault.afterBytes ?? 0) : undefined;
    if (a.data) {
      let payload = a.data;
      if (fault?.kind === 'payload') payload = bytesSource(fault.bytes);
      const header = encodeDataHeader(op, tid, a.unknownLength ? 0xffffffff : payload.length);
      if (fault?.kind === 'length') new DataView(header.buffer).setUint32(0, fault.length >>> 0, true);
      if (fault?.kind === 'short-data') payload = { ...payload, length: Math.min(payload.length, fault.afterBytes) };
      this.queue.push({
        header,
        payload,
        total: HEADER_BYTES + payload.length,
        sent: 0,
        data: true,
        stallAt: stallAt === undefined ? undefined : HEADER_BYTES + stallAt,
        vanishAt: vanishAt === undefined ? undefined : HEADER_BYTES + vanishAt,
      });
    }
    const rtid = fault?.kind === 'wrong-transaction' ? (tid + 0x100) >>> 0 : tid;
    const response = encodeContainer(ContainerType.Response, a.code, rtid, a.params ?? []);
    this.queue.push({
      header: response.subarray(0, HEADER_BYTES),
      payload: bytesSource(response.subarray(HEADER_BYTES)),
      total: response.length,
      sent: 0,
      data: false,
      stallAt: !a.data && stallAt !== undefined ? 0 : undefined,
      vanishAt: !a.data && vanishAt !== undefined ? 0 : undefined,
    });
  }

  private async answer(op: number, p: number[], fault: PtpFault | undefined, received?: Uint8Array): Promise<Answer> {
    if (fault?.kind === 'response') return { code: fault.code };
    if (!this.operations.includes(op)) return { code: Rc.OperationNotSupported };
    if (op !== Op.GetDeviceInfo && op !== Op.OpenSession && !this.sessionOpen) return { code: Rc.SessionNotOpen };
    if (op === Op.GetDeviceInfo && this.o.deviceInfoNeedsSession && !this.sessionOpen)
      return { code: Rc.SessionNotOpen };
    if (op === Op.DeleteObject && this.o.refuseDelete) return { code: Rc.OperationNotSupported };
    if ((op === Op.GetDevicePropDesc || op === Op.SetDevicePropValue) && this.o.refuseDeviceProps)
      return { code: Rc.OperationNotSupported };
    const obj = () => this.objects.get(p[0] ?? 0);
    switch (op) {
      case Op.GetDeviceInfo:
        return { code: Rc.OK, data: bytesSource(this.deviceInfo()) };
      case Op.OpenSession:
        if (this.sessionOpen) return { code: Rc.SessionAlreadyOpened, params: [1] };
        if (!p[0]) return { code: Rc.InvalidParameter };
        await this.scan();
        this.sessionOpen = true;
        return { code: Rc.OK };
      case Op.CloseSession:
        this.sessionOpen = false;
        this.objects.clear();
        return { code: Rc.OK };
      case Op.GetStorageIDs:
        return { code: Rc.OK, data: bytesSource(new DatasetWriter().u32Array([STORAGE_ID]).bytes()) };
      case Op.GetStorageInfo:
        if (p[0] !== STORAGE_ID) return { code: Rc.InvalidStorageID };
        return { code: Rc.OK, data: bytesSource(this.storageInfo()) };
      case Op.GetObjectHandles:
        return this.handles(p[0] ?? 0, p[1] ?? 0, p[2] ?? 0);
      case Op.GetObjectInfo: {
        const o = obj();
        return o ? { code: Rc.OK, data: bytesSource(this.objectInfo(o)) } : { code: Rc.InvalidObjectHandle };
      }
      case Op.GetObject: {
        const o = obj();
        if (!o || o.folder) return { code: Rc.InvalidObjectHandle };
        const size = await this.contentSize(o);
        return { code: Rc.OK, data: this.content(o, 0, size), unknownLength: this.o.unknownLength?.includes(o.rel) };
      }
      case Op.GetPartialObject:
        return this.partial(obj(), p[1] ?? 0, p[2] ?? 0);
      case Op.GetPartialObject64:
        return this.partial(obj(), (p[1] ?? 0) + (p[2] ?? 0) * 0x1_0000_0000, p[3] ?? 0);
      case Op.GetObjectPropValue: {
        const o = obj();
        if (!o) return { code: Rc.InvalidObjectHandle };
        if (p[1] !== ObjectProp.ObjectSize) return { code: Rc.InvalidObjectPropCode };
        return { code: Rc.OK, data: bytesSource(new DatasetWriter().u64(o.size).bytes()) };
      }
      case Op.DeleteObject:
        return this.delete(obj(), p[1] ?? 0);
      case Op.GetDevicePropDesc:
      case Op.GetDevicePropValue:
        return this.propAnswer(this.deviceProps.get(op, p[0] ?? 0));
      case Op.SetDevicePropValue:
        return this.propAnswer(this.deviceProps.set(p[0] ?? 0, received ?? new Uint8Array(0)));
    }
    return { code: Rc.OperationNotSupported };
  }

  private deviceInfo(): Uint8Array {
    return encodeDeviceInfo({
      standardVersion: 100,
      vendorExtensionId: 6,
      vendorExtensionVersion: 100,
      vendorExtensionDesc: 'microsoft.com: 1.0',
      functionalMode: 0,
      operations: this.operations,
      events: [],
      deviceProperties: this.properties,
      captureFormats: [],
      imageFormats: [Format.Undefined, Format.Association],
      manufacturer: this.o.manufacturer ?? 'Responder',
      model: this.o.model ?? 'BodyCam PTP',
      deviceVersion: this.o.deviceVersion ?? '2.4.1',
      serialNumber: this.o.serialNumber ?? '0123456789abcdef0123456789abcdef',
    });
  }

  private storageInfo(): Uint8Array {
    return new DatasetWriter()
      .u16(0x0004)
      .u16(0x0002)
      .u16(this.o.readOnly ? 0x0001 : 0x0000)
      .u64(64 * 1024 ** 3)
      .u64(32 * 1024 ** 3)
      .u32(0xffffffff)
      .string('Internal storage')
      .string('')
      .bytes();
  }

  private async scan(): Promise<void> {
    this.objects.clear();
    let next = 1;
    const walk = async (dir: string, parent: number) => {
      const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name));
      for (const e of entries) {
        if (!e.isFile() && !e.isDirectory()) continue;
        const abs = path.join(dir, e.name);
        const rel = path.relative(this.o.root, abs).split(path.sep).join('/');
        const st = await lstat(abs);
        const handle = next++;
        const size = this.o.synthetic?.[rel] ?? this.o.sizes?.[rel] ?? st.size;
        this.objects.set(handle, {
          handle,
          parent,
          abs,
          rel,
          name: this.o.rename?.[rel] ?? e.name,
          folder: e.isDirectory(),
          size,
          mtime: st.mtime,
        });
        if (e.isDirectory()) await walk(abs, handle);
      }
    };
    await walk(this.o.root, 0);
  }

  private handles(storage: number, format: number, parent: number): Answer {
    if (storage !== STORAGE_ID && storage !== 0xffffffff) return { code: Rc.InvalidStorageID };
    if (format !== 0) return { code: Rc.SpecificationByFormatUnsupported };
    let list: DeviceObject[];
    if (parent === 0) {
      list = [...this.objects.values()];
    } else {
      const folder = parent === 0xffffffff ? 0 : parent;
      if (folder !== 0 && !this.objects.get(folder)) return { code: Rc.InvalidObjectHandle };
      if (folder !== 0 && !this.objects.get(folder)!.folder) return { code: Rc.InvalidParentObject };
      list = [...this.objects.values()].filter((o) => o.parent === folder);
    }
    return { code: Rc.OK, data: bytesSource(new DatasetWriter().u32Array(list.map((o) => o.handle)).bytes()) };
  }

  private objectInfo(o: DeviceObject): Uint8Array {
    const date = formatPtpDateTime(o.mtime);
    return encodeObjectInfo({
      storageId: STORAGE_ID,
      format: o.folder ? Format.Association : Format.Undefined,
      protectionStatus: 0,
      compressedSize: o.folder ? 0 : this.o.unknownSizes ? 0xffffffff : o.size,
      thumbFormat: 0,
      thumbCompressedSize: 0,
      thumbPixWidth: 0,
      thumbPixHeight: 0,
      imagePixWidth: 0,
      imagePixHeight: 0,
      imageBitDepth: 0,
      parent: o.parent,
      associationType: o.folder ? 1 : 0,
      associationDesc: 0,
      sequenceNumber: 0,
      filename: o.name,
      captureDate: date,
      modificationDate: date,
      keywords: '',
    });
  }

  private async partial(o: DeviceObject | undefined, offset: number, max: number): Promise<Answer> {
    if (!o || o.folder) return { code: Rc.InvalidObjectHandle };
    const size = await this.contentSize(o);
    const from = Math.min(offset, size);
    const length = Math.min(max, size - from);
    return { code: Rc.OK, params: [length], data: this.content(o, from, length) };
  }

  /** What a read sends: the file as it is now, or a synthetic recording's made-up bytes. */
  private async contentSize(o: DeviceObject): Promise<number> {
    return this.o.synthetic?.[o.rel] ?? (await lstat(o.abs)).size;
  }

  private content(o: DeviceObject, from: number, length: number): Source {
    return this.o.synthetic?.[o.rel] !== undefined ? syntheticSource(from, length) : fileSource(o.abs, from, length);
  }

  private async delete(o: DeviceObject | undefined, format: number): Promise<Answer> {
    if (this.o.readOnly) return { code: Rc.StoreReadOnly };
    if (format !== 0) return { code: Rc.SpecificationByFormatUnsupported };
    if (!o) return { code: Rc.InvalidObjectHandle };
    // Like QEMU's usb-mtp: a folder goes with everything in it.
    await rm(o.abs, { recursive: true, force: true });
    for (const x of [...this.objects.values()])
      if (x.rel === o.rel || x.rel.startsWith(`${o.rel}/`)) this.objects.delete(x.handle);
    return { code: Rc.OK };
  }

  private propAnswer(a: PropAnswer): Answer {
    return a.data ? { code: a.code, data: bytesSource(a.data) } : { code: a.code };
  }
}
