/**
 * USB test doubles: recorded descriptors from fixtures/usb/devices.json, a fake backend that
 * behaves like node-usb (asynchronous, hot-plug optional) and a logger that keeps its lines.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { DeviceInfo, DriverLogger } from '../../drivers/types.js';
import type { UsbBackend, UsbDeviceSnapshot } from '../../src/usb/backend.js';

interface RecordedDevice {
  name: string;
  port: string;
  busnum: number;
  devnum: number;
  idVendor: string;
  idProduct: string;
  manufacturer?: string;
  product?: string;
  serial?: string;
  interfaces: Array<{
    bInterfaceNumber: string;
    bInterfaceClass: string;
    bInterfaceSubClass: string;
    bInterfaceProtocol: string;
  }>;
}

const RECORDED = (
  JSON.parse(readFileSync(path.resolve(import.meta.dirname, '../../fixtures/usb/devices.json'), 'utf8')) as {
    devices: RecordedDevice[];
  }
).devices;

export type RecordedName =
  | 'qemu-usb-storage'
  | 'qemu-usb-mtp'
  | 'ptp-still-camera'
  | 'body-camera-vendor-mtp'
  | 'usb-stick'
  | 'keyboard'
  | 'hub';

/** A recorded device as the backend reports it; `over` replugs it elsewhere or changes it. */
export function recorded(name: RecordedName, over: Partial<UsbDeviceSnapshot> = {}): UsbDeviceSnapshot {
  const r = RECORDED.find((d) => d.name === name);
  if (!r) throw new Error(`no recorded device ${name}`);
  const snap: UsbDeviceSnapshot = {
    key: r.port,
    vendorId: parseInt(r.idVendor, 16),
    productId: parseInt(r.idProduct, 16),
    busNumber: r.busnum,
    portPath: r.port,
    address: r.devnum,
    interfaces: r.interfaces.map((i) => ({
      number: parseInt(i.bInterfaceNumber, 16),
      class: parseInt(i.bInterfaceClass, 16),
      subclass: parseInt(i.bInterfaceSubClass, 16),
      protocol: parseInt(i.bInterfaceProtocol, 16),
    })),
    device: { native: r.name },
  };
  if (r.manufacturer) snap.manufacturer = r.manufacturer;
  if (r.product) snap.product = r.product;
  if (r.serial) snap.serialNumber = r.serial;
  const out = { ...snap, ...over };
  if (over.portPath && !over.key) out.key = over.portPath;
  return out;
}

export function recordedInfo(name: RecordedName): DeviceInfo {
  const s = recorded(name);
  const info: DeviceInfo = {
    bus: 'usb',
    key: s.key,
    slot: s.portPath,
    vendorId: s.vendorId,
    productId: s.productId,
    portPath: s.portPath,
    interfaces: s.interfaces,
  };
  if (s.serialNumber) info.serialNumber = s.serialNumber;
  if (s.product) info.product = s.product;
  return info;
}

export class FakeUsbBackend implements UsbBackend {
  readonly devices = new Map<string, UsbDeviceSnapshot>();
  listCalls = 0;
  listError: Error | null = null;
  /** When set, list() waits for it: lets a test slip an event in while a scan is listing. */
  gate: Promise<void> | null = null;
  watch?: UsbBackend['watch'];
  private handlers: { attach: (d: UsbDeviceSnapshot) => void; detach: (k: string) => void } | null = null;
  unwatched = false;

  constructor(opts: { hotplug?: boolean; watchError?: Error } = {}) {
    if (opts.hotplug || opts.watchError) {
      this.watch = async (attach, detach) => {
        await Promise.resolve();
        if (opts.watchError) throw opts.watchError;
        this.handlers = { attach, detach };
        return () => {
          this.handlers = null;
          this.unwatched = true;
        };
      };
    }
  }

  async list(): Promise<UsbDeviceSnapshot[]> {
    this.listCalls++;
    const snapshot = [...this.devices.values()];
    await Promise.resolve();
    if (this.gate) await this.gate;
    if (this.listError) throw this.listError;
    return snapshot;
  }

  plug(d: UsbDeviceSnapshot, { event = true } = {}): void {
    this.devices.set(d.key, d);
    if (event) this.handlers?.attach(d);
  }

  unplug(key: string, { event = true } = {}): void {
    this.devices.delete(key);
    if (event) this.handlers?.detach(key);
  }

  /** Delivers an event without changing what list() sees, as a late or duplicate event would. */
  emitAttach(d: UsbDeviceSnapshot): void {
    this.handlers?.attach(d);
  }
  emitDetach(key: string): void {
    this.handlers?.detach(key);
  }
}

export interface LogLine {
  level: 'debug' | 'info' | 'warn' | 'error';
  event?: string;
  msg?: string;
  [k: string]: unknown;
}

export class MemoryLogger implements DriverLogger {
  constructor(readonly lines: LogLine[] = []) {}
  private push(level: LogLine['level'], obj: object, msg?: string) {
    this.lines.push({ ...(obj as Record<string, unknown>), level, msg });
  }
  debug(obj: object, msg?: string) {
    this.push('debug', obj, msg);
  }
  info(obj: object, msg?: string) {
    this.push('info', obj, msg);
  }
  warn(obj: object, msg?: string) {
    this.push('warn', obj, msg);
  }
  error(obj: object, msg?: string) {
    this.push('error', obj, msg);
  }
  child(): DriverLogger {
    return this;
  }
  events(name: string): LogLine[] {
    return this.lines.filter((l) => l.event === name);
  }
}
