import { afterEach, describe, expect, it, vi } from 'vitest';
import { mkdirSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { DeviceInfo } from '../drivers/types.js';
import type { BusListener } from '../src/bus/types.js';
import { UsbBus, UsbDeviceRegistry, type UsbBusConfig } from '../src/usb/bus.js';
import {
  createNodeUsbBackend,
  portPathOf,
  snapshotOf,
  type NodeUsbDevice,
  type NodeUsbModule,
} from '../src/usb/node-usb.js';
import { FakeUsbBackend, MemoryLogger, recorded } from './support/usb.js';

class Recorder implements BusListener {
  readonly events: Array<{ type: 'attach' | 'detach' | 'change'; key: string; device?: DeviceInfo }> = [];
  attach(device: DeviceInfo): void {
    this.events.push({ type: 'attach', key: device.key, device });
  }
  detach(_bus: DeviceInfo['bus'], key: string): void {
    this.events.push({ type: 'detach', key });
  }
  change(device: DeviceInfo): void {
    this.events.push({ type: 'change', key: device.key, device });
  }
  of(type: 'attach' | 'detach' | 'change'): string[] {
    return this.events.filter((e) => e.type === type).map((e) => e.key);
  }
}

function sysfsWithUsb(): string {
  const root = mkdtempSync(path.join(os.tmpdir(), 'dockd-usbbus-'));
  mkdirSync(path.join(root, 'bus', 'usb', 'devices'), { recursive: true });
  return root;
}

const buses: UsbBus[] = [];
afterEach(async () => {
  for (const b of buses.splice(0)) await b.stop();
});

function setup(opts: { hotplug?: boolean; cfg?: Partial<UsbBusConfig>; backend?: FakeUsbBackend } = {}) {
  const backend = opts.backend ?? new FakeUsbBackend({ hotplug: opts.hotplug });
  const log = new MemoryLogger();
  const registry = new UsbDeviceRegistry();
  const bus = new UsbBus({ slots: {}, allow: [], pollIntervalMs: 60_000, ...opts.cfg }, log, {
    backend,
    sysfsRoot: sysfsWithUsb(),
    registry,
  });
  buses.push(bus);
  return { backend, log, registry, bus, listener: new Recorder() };
}

describe('UsbBus', () => {
  it('attaches the allowed devices present at start, with their descriptors and native handle', async () => {
    const { backend, bus, listener, registry } = setup({ cfg: { slots: { '1-2': 'A' } } });
    backend.plug(recorded('qemu-usb-mtp'));
    backend.plug(recorded('keyboard'));
    await bus.start(listener);
    expect(listener.events).toHaveLength(1);
    expect(listener.events[0]!.device).toEqual({
      bus: 'usb',
      key: '1-2',
      slot: 'A',
      vendorId: 0x46f4,
      productId: 0x0004,
      manufacturer: 'QEMU',
      product: 'QEMU USB MTP',
      serialNumber: 'MTP-0002',
      busNumber: 1,
      portPath: '1-2',
      interfaces: [{ number: 0, class: 6, subclass: 1, protocol: 1 }],
    });
    expect(registry.native({ key: '1-2' })).toEqual({ native: 'qemu-usb-mtp' });
    expect(registry.native({ key: '1-4' })).toBeUndefined();
  });

  it('names the slot by the port path when usb.slots does not map it', async () => {
    const { backend, bus, listener } = setup({ cfg: { slots: { '1-9': 'Z' } } });
    backend.plug(recorded('ptp-still-camera'));
    await bus.start(listener);
    expect(listener.events[0]!.device!.slot).toBe('1-3.1');
  });

  it('reports a hot-plugged device at once, without waiting for the poll', async () => {
    const { backend, bus, listener } = setup({ hotplug: true });
    await bus.start(listener);
    expect(listener.events).toEqual([]);
    backend.plug(recorded('qemu-usb-mtp'));
    expect(listener.of('attach')).toEqual(['1-2']);
    backend.unplug('1-2');
    expect(listener.of('detach')).toEqual(['1-2']);
  });

  it('finds attaches and detaches by polling when the backend has no hot-plug events', async () => {
    const { backend, bus, listener, registry } = setup({ cfg: { pollIntervalMs: 20 } });
    await bus.start(listener);
    backend.plug(recorded('qemu-usb-mtp'));
    await vi.waitFor(() => expect(listener.of('attach')).toEqual(['1-2']));
    backend.unplug('1-2');
    await vi.waitFor(() => expect(listener.of('detach')).toEqual(['1-2']));
    expect(registry.keys()).toEqual([]);
  });

  it('finds a detach by polling when hot-plug events exist but this one never came (no udevd)', async () => {
    const { backend, bus, listener } = setup({ hotplug: true, cfg: { pollIntervalMs: 20 } });
    backend.plug(recorded('qemu-usb-mtp'));
    await bus.start(listener);
    backend.unplug('1-2', { event: false });
    await vi.waitFor(() => expect(listener.of('detach')).toEqual(['1-2']));
  });

  it('reports an attach once whether it came from an event, the poll, or both', async () => {
    const { backend, bus, listener } = setup({ hotplug: true, cfg: { pollIntervalMs: 20 } });
    await bus.start(listener);
    const d = recorded('qemu-usb-mtp');
    backend.plug(d);
    backend.emitAttach(d);
    const calls = backend.listCalls;
    await vi.waitFor(() => expect(backend.listCalls).toBeGreaterThan(calls + 3));
    expect(listener.events.map((e) => e.type)).toEqual(['attach']);
  });

  it('does not resurrect a device whose detach event arrived while a scan was listing', async () => {
    const { backend, bus, listener } = setup({ hotplug: true });
    backend.plug(recorded('qemu-usb-mtp'));
    await bus.start(listener);
    let open!: () => void;
    backend.gate = new Promise<void>((r) => (open = r));
    const scan = bus.scan(); // lists while the device is still there
    await Promise.resolve();
    backend.unplug('1-2');
    open();
    await scan;
    expect(listener.events.map((e) => `${e.type} ${e.key}`)).toEqual(['attach 1-2', 'detach 1-2']);
  });

  it('does not detach a device a hot-plug event attached while an older scan was listing', async () => {
    const { backend, bus, listener } = setup({ hotplug: true });
    await bus.start(listener);
    let open!: () => void;
    backend.gate = new Promise<void>((r) => (open = r));
    const scan = bus.scan(); // lists before the device arrives
    await Promise.resolve();
    backend.plug(recorded('qemu-usb-mtp'));
    open();
    await scan;
    expect(listener.events.map((e) => `${e.type} ${e.key}`)).toEqual(['attach 1-2']);
  });

  it('sees a replug between two polls as a detach and a new attach', async () => {
    const { backend, bus, listener } = setup();
    backend.plug(recorded('qemu-usb-mtp'));
    await bus.start(listener);
    backend.plug(recorded('qemu-usb-mtp', { address: 9 }), { event: false });
    await bus.scan();
    expect(listener.events.map((e) => `${e.type} ${e.key}`)).toEqual(['attach 1-2', 'detach 1-2', 'attach 1-2']);
  });

  it('ignores what is not allowed with one debug line per attachment, however often it polls', async () => {
    const { backend, bus, listener, log } = setup({ cfg: { pollIntervalMs: 20 } });
    backend.plug(recorded('usb-stick'));
    backend.plug(recorded('keyboard'));
    await bus.start(listener);
    const calls = backend.listCalls;
    await vi.waitFor(() => expect(backend.listCalls).toBeGreaterThan(calls + 3));
    expect(listener.events).toEqual([]);
    const ignored = log.events('usb.ignored');
    expect(ignored.map((l) => [l.level, l.vidPid])).toEqual([
      ['debug', '0781:5581'],
      ['debug', '046d:c31c'],
    ]);
    expect(ignored[0]!.reason).toMatch(/mass storage/);
    // Unplugged and plugged again: a new attachment, a new line.
    backend.unplug('2-1', { event: false });
    await vi.waitFor(() => expect(backend.listCalls).toBeGreaterThan(calls + 6));
    backend.plug(recorded('usb-stick', { address: 12 }), { event: false });
    await vi.waitFor(() => expect(log.events('usb.ignored')).toHaveLength(3));
  });

  it('attaches mass storage when usb.allow names it', async () => {
    const { backend, bus, listener } = setup({ cfg: { allow: ['46f4:0001'] } });
    backend.plug(recorded('qemu-usb-storage'));
    backend.plug(recorded('qemu-usb-mtp'));
    await bus.start(listener);
    expect(listener.of('attach')).toEqual(['1-1']);
  });

  it('tells the dock again once an attached device’s configuration becomes readable', async () => {
    const { backend, bus, listener } = setup({ cfg: { allow: ['46f4:0004'] } });
    backend.plug(recorded('qemu-usb-mtp', { interfaces: [] }));
    await bus.start(listener);
    backend.plug(recorded('qemu-usb-mtp'), { event: false });
    await bus.scan();
    expect(listener.events.map((e) => `${e.type} ${e.device?.interfaces?.length}`)).toEqual(['attach 0', 'change 1']);
  });

  it('survives an enumeration that fails, warning once until it works again', async () => {
    const { backend, bus, listener, log } = setup({ cfg: { pollIntervalMs: 20 } });
    backend.listError = new Error('getDevices error: Permission denied');
    backend.plug(recorded('qemu-usb-mtp'));
    await bus.start(listener);
    const calls = backend.listCalls;
    await vi.waitFor(() => expect(backend.listCalls).toBeGreaterThan(calls + 3));
    expect(log.events('usb.enumerate_failed')).toHaveLength(1);
    backend.listError = null;
    await vi.waitFor(() => expect(listener.of('attach')).toEqual(['1-2']));
    expect(log.events('usb.enumerate_recovered')).toHaveLength(1);
  });

  it('falls back to polling when hot-plug registration fails', async () => {
    const backend = new FakeUsbBackend({ watchError: new Error('netlink: Operation not permitted') });
    const { bus, listener, log } = setup({ backend, cfg: { pollIntervalMs: 20 } });
    await bus.start(listener);
    expect(log.events('usb.hotplug_unavailable')).toHaveLength(1);
    backend.plug(recorded('qemu-usb-mtp'));
    await vi.waitFor(() => expect(listener.of('attach')).toEqual(['1-2']));
  });

  it('stops listening on stop and reports nothing after', async () => {
    const { backend, bus, listener } = setup({ hotplug: true, cfg: { pollIntervalMs: 20 } });
    await bus.start(listener);
    await bus.stop();
    expect(backend.unwatched).toBe(true);
    backend.plug(recorded('qemu-usb-mtp'), { event: false });
    await new Promise((r) => setTimeout(r, 80));
    expect(listener.events).toEqual([]);
  });

  it('on a machine without /sys/bus/usb logs one line, never touches the backend and never throws', async () => {
    const backend = new FakeUsbBackend({ hotplug: true });
    const log = new MemoryLogger();
    const root = mkdtempSync(path.join(os.tmpdir(), 'dockd-nousb-'));
    const bus = new UsbBus({ slots: {}, allow: [], pollIntervalMs: 20 }, log, { backend, sysfsRoot: root });
    await expect(bus.start(new Recorder())).resolves.toBeUndefined();
    await new Promise((r) => setTimeout(r, 60));
    expect(log.lines).toEqual([expect.objectContaining({ level: 'info', event: 'usb.unavailable' })]);
    expect(backend.listCalls).toBe(0);
    await expect(bus.stop()).resolves.toBeUndefined();
    // The real backend is never loaded either.
    const real = new UsbBus({ slots: {}, allow: [], pollIntervalMs: 20 }, new MemoryLogger(), { sysfsRoot: root });
    await expect(real.start(new Recorder())).resolves.toBeUndefined();
    await real.stop();
  });
});

describe('node-usb backend', () => {
  function fakeDevice(
    over: Partial<Record<keyof NodeUsbDevice, unknown>> = {},
    throwing: string[] = [],
  ): NodeUsbDevice {
    const dev: Record<string, unknown> = {
      vendorId: 0x46f4,
      productId: 0x0001,
      bus: '1-2.3',
      address: 7,
      handle: 'h7',
      manufacturerName: 'QEMU',
      productName: 'QEMU USB HARDDRIVE',
      serialNumber: 'CAM-0001',
      configuration: {
        interfaces: [
          { interfaceNumber: 0, alternate: { interfaceClass: 8, interfaceSubclass: 6, interfaceProtocol: 0x50 } },
        ],
      },
      ...over,
    };
    for (const k of throwing) {
      Object.defineProperty(dev, k, {
        get() {
          throw new Error(`${k}: device disconnected`);
        },
      });
    }
    return dev as unknown as NodeUsbDevice;
  }

  it('maps a device, taking the port path from `bus` and the bus number from it', () => {
    const dev = fakeDevice();
    expect(snapshotOf(dev)).toEqual({
      key: '1-2.3',
      portPath: '1-2.3',
      busNumber: 1,
      address: 7,
      vendorId: 0x46f4,
      productId: 1,
      manufacturer: 'QEMU',
      product: 'QEMU USB HARDDRIVE',
      serialNumber: 'CAM-0001',
      interfaces: [{ number: 0, class: 8, subclass: 6, protocol: 0x50 }],
      device: dev,
    });
  });

  it('still reports what it can when the serial and configuration reads throw', () => {
    const snap = snapshotOf(fakeDevice({}, ['serialNumber', 'configuration']));
    expect(snap).toMatchObject({ key: '1-2.3', vendorId: 0x46f4, interfaces: [] });
    expect(snap.serialNumber).toBeUndefined();
  });

  it('lists through the native module and maps detach handles back to port paths', async () => {
    let attach: ((d: NodeUsbDevice) => void) | null = null;
    let detach: ((h: string) => void) | null = null;
    const devices = [fakeDevice()];
    const mod: NodeUsbModule = {
      nativeGetDevices: async () => devices,
      Emitter: class {
        async addAttach(cb: (d: NodeUsbDevice) => void) {
          attach = cb;
        }
        async addDetach(cb: (h: string) => void) {
          detach = cb;
        }
        async removeAttach() {
          attach = null;
        }
        async removeDetach() {
          detach = null;
        }
      },
    };
    const backend = createNodeUsbBackend({ load: async () => mod });
    expect((await backend.list()).map((s) => s.key)).toEqual(['1-2.3']);
    const seen: string[] = [];
    const unwatch = await backend.watch!(
      (s) => seen.push(`attach ${s.key}`),
      (k) => seen.push(`detach ${k}`),
    );
    attach!(fakeDevice({ bus: '1-4', address: 9, handle: 'h9' }, ['serialNumber']));
    detach!('h7');
    detach!('unknown-handle');
    expect(seen).toEqual(['attach 1-4', 'detach 1-2.3']);
    await unwatch();
    expect(attach).toBeNull();
    expect(detach).toBeNull();
  });
});

describe('port paths from node-usb', () => {
  it('builds the kernel name from the bus number and the ports, as usb@3 reports them on a real kernel', () => {
    expect(portPathOf({ bus: '002', ports: [1, 3] })).toBe('2-1.3');
    expect(portPathOf({ bus: '001', ports: [4] })).toBe('1-4');
    expect(portPathOf({ bus: '003', ports: [] })).toBe('usb3');
    expect(portPathOf({ bus: '1-2.3' })).toBe('1-2.3');
  });
});
