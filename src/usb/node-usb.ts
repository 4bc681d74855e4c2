/**
 * The real USB backend over node-usb 3 (`usb`), loaded on first use so that machines and tests
 * without USB never load its native binding.
 *
 * node-usb 3 quirks this file exists to contain:
 * - Its WebUSB `addEventListener('connect')` starts an enumeration whose rejection nobody
 *   catches and rethrows hot-plug errors from a timer: either kills Node where /sys/bus/usb is
 *   missing. We use the native emitter underneath it instead, whose promises we can catch.
 * - `serialNumber` falls back to opening the device, and `configuration` reads descriptors;
 *   both throw on a device that is half gone. Each is read once per attachment and cached.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { boundString } from '../../drivers/types.js';
import type { UsbInterfaceDescriptor } from './policy.js';
import type { UsbBackend, UsbDeviceSnapshot } from './backend.js';

/** The parts of node-usb's native `UsbDevice` read here. */
export interface NodeUsbDevice {
  vendorId: number;
  productId: number;
  /** The bus number as node-usb reports it, e.g. "002" (seen on a real kernel under QEMU). */
  bus: string;
  /** Port numbers from the root hub down, e.g. [2, 3]. */
  ports?: number[];
  address: number;
  readonly handle?: string;
  readonly manufacturerName: string | null;
  readonly productName: string | null;
  readonly serialNumber: string | null;
  readonly configuration?: {
    interfaces: Array<{
      interfaceNumber: number;
      alternate: { interfaceClass: number; interfaceSubclass: number; interfaceProtocol: number };
    }>;
  } | null;
}

interface NativeEmitter {
  addAttach(cb: (device: NodeUsbDevice) => void): Promise<void>;
  removeAttach(): Promise<void>;
  addDetach(cb: (handle: string) => void): Promise<void>;
  removeDetach(): Promise<void>;
}

export interface NodeUsbModule {
  nativeGetDevices(): Promise<NodeUsbDevice[]>;
  Emitter: new () => NativeEmitter;
}

async function loadNodeUsb(): Promise<NodeUsbModule> {
  // The WebUSB layer adds transferIn/transferOut to the device class; drivers use those.
  await import('usb');
  return (await import('usb/index.js')) as unknown as NodeUsbModule;
}

function attempt<T>(read: () => T): T | undefined {
  try {
    return read();
  } catch {
    return undefined;
  }
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? boundString(value) : undefined;
}

function busNumberOf(portPath: string, sysfsRoot: string): number | undefined {
  const m = /^(\d+)-/.exec(portPath) ?? /^usb(\d+)$/.exec(portPath);
  if (m) return Number(m[1]);
  const raw = attempt(() => readFileSync(path.join(sysfsRoot, 'bus/usb/devices', portPath, 'busnum'), 'utf8'));
  const n = raw === undefined ? NaN : parseInt(raw, 10);
  return Number.isFinite(n) ? n : undefined;
}

function interfacesOf(dev: NodeUsbDevice): UsbInterfaceDescriptor[] {
  const ifaces = attempt(() => dev.configuration?.interfaces) ?? [];
  return ifaces.map((i) => ({
    number: i.interfaceNumber,
    class: i.alternate.interfaceClass,
    subclass: i.alternate.interfaceSubclass,
    protocol: i.alternate.interfaceProtocol,
  }));
}

/**
 * The kernel's name for where a device sits ("2-1.3": bus 2, port 1, then port 3), which is what
 * slots are configured by. node-usb gives the bus number and the port list separately; an older
 * shape with the sysfs name in `bus` is accepted too.
 */
export function portPathOf(dev: Pick<NodeUsbDevice, 'bus' | 'ports'>): string {
  const bus = String(dev.bus);
  if (/^\d+-/.test(bus)) return bus;
  const n = Number.parseInt(bus, 10);
  if (!Number.isInteger(n)) return bus;
  return dev.ports && dev.ports.length ? `${n}-${dev.ports.join('.')}` : `usb${n}`;
}

/** Maps one node-usb device; never throws, reports what could be read. */
export function snapshotOf(dev: NodeUsbDevice, sysfsRoot = '/sys'): UsbDeviceSnapshot {
  const portPath = portPathOf(dev);
  const snap: UsbDeviceSnapshot = {
    key: portPath,
    vendorId: dev.vendorId,
    productId: dev.productId,
    portPath,
    interfaces: interfacesOf(dev),
    device: dev,
  };
  const optional = {
    manufacturer: text(attempt(() => dev.manufacturerName)),
    product: text(attempt(() => dev.productName)),
    serialNumber: text(attempt(() => dev.serialNumber)),
    busNumber: busNumberOf(portPath, sysfsRoot),
    address: Number.isInteger(dev.address) ? dev.address : undefined,
  };
  for (const [k, v] of Object.entries(optional))
    if (v !== undefined) (snap as unknown as Record<string, unknown>)[k] = v;
  return snap;
}

export interface NodeUsbBackendOptions {
  sysfsRoot?: string;
  load?: () => Promise<NodeUsbModule>;
}

export function createNodeUsbBackend(opts: NodeUsbBackendOptions = {}): UsbBackend {
  const sysfsRoot = opts.sysfsRoot ?? '/sys';
  const load = opts.load ?? loadNodeUsb;
  let mod: Promise<NodeUsbModule> | null = null;
  const usb = () => (mod ??= load());
  // One read of the expensive fields per attachment (port + address), not one per poll.
  let cache = new Map<string, UsbDeviceSnapshot>();
  // node-usb names a detached device only by its handle; this maps handles back to port paths.
  let handles = new Map<string, string>();

  const snapshot = (dev: NodeUsbDevice): UsbDeviceSnapshot => {
    const id = `${portPathOf(dev)}#${dev.address}`;
    const cached = cache.get(id);
    const snap = cached && cached.interfaces.length > 0 ? { ...cached, device: dev } : snapshotOf(dev, sysfsRoot);
    const handle = attempt(() => dev.handle);
    if (typeof handle === 'string') handles.set(handle, snap.key);
    return snap;
  };

  return {
    async list() {
      const devices = await (await usb()).nativeGetDevices();
      const next = new Map<string, UsbDeviceSnapshot>();
      handles = new Map();
      const out = devices.map((dev) => {
        const snap = snapshot(dev);
        next.set(`${snap.portPath}#${dev.address}`, snap);
        return snap;
      });
      cache = next;
      return out;
    },
    async watch(onAttach, onDetach) {
      const emitter = new (await usb()).Emitter();
      const unwatch = async () => {
        await emitter.removeAttach().catch(() => undefined);
        await emitter.removeDetach().catch(() => undefined);
      };
      try {
        await emitter.addAttach((dev) => {
          const snap = attempt(() => snapshot(dev));
          if (snap) onAttach(snap);
        });
        await emitter.addDetach((handle) => {
          const key = handles.get(handle);
          handles.delete(handle);
          // A device never listed has no known handle: the next poll finds it gone instead.
          if (key !== undefined) onDetach(key);
        });
      } catch (err) {
        await unwatch();
        throw err;
      }
      return unwatch;
    },
  };
}
