/**
 * The USB dock: devices on the machine's USB buses, seen through an injected backend. Hot-plug
 * events are used when they come, and a periodic enumeration diff finds attaches and detaches
 * anyway, because without udevd no event ever comes. Either path reports a device once.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { DeviceInfo, DriverLogger } from '../../drivers/types.js';
import type { UsbBackend, UsbDeviceSnapshot } from './backend.js';
import { createNodeUsbBackend } from './node-usb.js';
import { allowVerdict, compileAllowList, formatVidPid, slotFor, type AllowList } from './policy.js';
import type { Bus, BusListener } from '../bus/types.js';

export type { UsbBackend, UsbDeviceSnapshot } from './backend.js';
export { createNodeUsbBackend } from './node-usb.js';

/**
 * The attached, allowed devices by key, with the backend's native handle: a driver that talks
 * to the device itself (PTP) looks its device up here.
 */
export class UsbDeviceRegistry {
  private readonly devices = new Map<string, UsbDeviceSnapshot>();

  set(snapshot: UsbDeviceSnapshot): void {
    this.devices.set(snapshot.key, snapshot);
  }
  delete(key: string): void {
    this.devices.delete(key);
  }
  get(key: string): UsbDeviceSnapshot | undefined {
    return this.devices.get(key);
  }
  /** The native device object for a docked device, or undefined once it left. */
  native(device: Pick<DeviceInfo, 'key'>): unknown {
    return this.devices.get(device.key)?.device;
  }
  keys(): string[] {
    return [...this.devices.keys()];
  }
}

export interface UsbBusConfig {
  slots: Record<string, string>;
  allow: string[];
  pollIntervalMs: number;
}

export interface UsbBusDeps {
  /** Default: node-usb, loaded on first use. */
  backend?: UsbBackend;
  /** Where `bus/usb` is looked for; default `/sys`. */
  sysfsRoot?: string;
  registry?: UsbDeviceRegistry;
}

export function deviceInfoOf(snap: UsbDeviceSnapshot, slots: Record<string, string>): DeviceInfo {
  const info: DeviceInfo = {
    bus: 'usb',
    key: snap.key,
    slot: slotFor(snap.portPath, slots),
    vendorId: snap.vendorId,
    productId: snap.productId,
  };
  if (snap.manufacturer !== undefined) info.manufacturer = snap.manufacturer;
  if (snap.product !== undefined) info.product = snap.product;
  if (snap.serialNumber !== undefined) info.serialNumber = snap.serialNumber;
  if (snap.busNumber !== undefined) info.busNumber = snap.busNumber;
  info.portPath = snap.portPath;
  info.interfaces = snap.interfaces.map((i) => ({ ...i }));
  return info;
}

/** One attachment: same port, same device, same enumeration. */
function attachmentId(s: UsbDeviceSnapshot): string {
  return `${formatVidPid(s.vendorId, s.productId)}@${s.address ?? '-'}`;
}

interface Attached {
  id: string;
  /** Value of the event counter when attached; a scan started earlier must not detach it. */
  since: number;
  info: DeviceInfo;
}

export class UsbBus implements Bus {
  readonly name = 'usb';
  readonly registry: UsbDeviceRegistry;
  private readonly allow: AllowList;
  private readonly sysfsRoot: string;
  private backend: UsbBackend | null;
  private listener: BusListener | null = null;
  private readonly attached = new Map<string, Attached>();
  private readonly ignored = new Map<string, { id: string; interfacesKnown: boolean }>();
  /** Keys a detach event removed while a scan was listing; that scan's view of them is stale. */
  private readonly detachedDuringScan = new Map<string, number>();
  private counter = 0;
  private scanning = false;
  private failing = false;
  private timer: NodeJS.Timeout | null = null;
  private unwatch: (() => Promise<void> | void) | null = null;
  private stopped = false;

  constructor(
    private readonly cfg: UsbBusConfig,
    private readonly log: DriverLogger,
    deps: UsbBusDeps = {},
  ) {
    this.allow = compileAllowList(cfg.allow);
    this.sysfsRoot = deps.sysfsRoot ?? '/sys';
    this.backend = deps.backend ?? null;
    this.registry = deps.registry ?? new UsbDeviceRegistry();
  }

  async start(listener: BusListener): Promise<void> {
    this.stopped = false;
    const usbDir = path.join(this.sysfsRoot, 'bus', 'usb');
    if (!existsSync(usbDir)) {
      // node-usb cannot even be asked here without an unhandled rejection: stay idle.
      this.log.info(
        { event: 'usb.unavailable', path: usbDir },
        `this machine has no USB bus (${usbDir} is missing); running without it`,
      );
      return;
    }
    this.listener = listener;
    const backend = (this.backend ??= createNodeUsbBackend({ sysfsRoot: this.sysfsRoot }));
    if (this.allow.invalid.length) {
      this.log.warn(
        { event: 'usb.allow_invalid', entries: this.allow.invalid },
        `usb.allow entries that are neither "VID:PID" nor "class:NN" allow nothing: ${this.allow.invalid.join(', ')}`,
      );
    }
    await this.scan();
    if (backend.watch) {
      try {
        this.unwatch = await backend.watch(
          (snap) => this.event(() => this.seen(snap)),
          (key) => this.event(() => this.gone(key)),
        );
      } catch (err) {
        this.log.warn(
          { event: 'usb.hotplug_unavailable', err: (err as Error).message },
          'no USB hot-plug events; relying on polling',
        );
      }
    }
    if (this.stopped) return;
    this.timer = setInterval(() => void this.scan(), this.cfg.pollIntervalMs);
    this.timer.unref();
    this.log.info(
      {
        event: 'bus.started',
        bus: 'usb',
        pollIntervalMs: this.cfg.pollIntervalMs,
        allow: this.allow.isDefault ? 'still-image only' : this.allow.rules.map((r) => r.text),
      },
      'watching USB',
    );
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.listener = null;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    const unwatch = this.unwatch;
    this.unwatch = null;
    try {
      await unwatch?.();
    } catch {
      // Stopping must not fail because the USB library did.
    }
  }

  private event(apply: () => void): void {
    if (this.stopped || !this.listener) return;
    try {
      apply();
    } catch (err) {
      this.log.error({ event: 'usb.event_failed', err: (err as Error).message }, 'handling a USB event failed');
    }
  }

  /** Enumerates and diffs against what is attached; skipped while a previous scan still runs. */
  async scan(): Promise<void> {
    if (this.scanning || this.stopped || !this.backend) return;
    this.scanning = true;
    const started = ++this.counter;
    try {
      let list: UsbDeviceSnapshot[];
      try {
        list = await this.backend.list();
      } catch (err) {
        if (!this.failing)
          this.log.warn(
            { event: 'usb.enumerate_failed', err: (err as Error).message },
            `cannot enumerate USB devices: ${(err as Error).message}`,
          );
        this.failing = true;
        return;
      }
      if (this.failing) this.log.info({ event: 'usb.enumerate_recovered' }, 'USB enumeration works again');
      this.failing = false;
      if (this.stopped) return;
      const present = new Set<string>();
      for (const snap of list) {
        present.add(snap.key);
        if ((this.detachedDuringScan.get(snap.key) ?? 0) > started) continue;
        this.event(() => this.seen(snap));
      }
      for (const [key, a] of [...this.attached])
        if (!present.has(key) && a.since < started) this.event(() => this.gone(key));
      for (const key of [...this.ignored.keys()]) if (!present.has(key)) this.ignored.delete(key);
    } finally {
      this.detachedDuringScan.clear();
      this.scanning = false;
    }
  }

  private seen(snap: UsbDeviceSnapshot): void {
    const id = attachmentId(snap);
    const current = this.attached.get(snap.key);
    if (current?.id === id) {
      // The configuration may have been unreadable at first sight: tell the dock once it is known.
      if (!current.info.interfaces?.length && snap.interfaces.length) {
        current.info = deviceInfoOf(snap, this.cfg.slots);
        this.registry.set(snap);
        this.listener?.change(current.info);
      }
      return;
    }
    if (current) this.gone(snap.key);
    const ignored = this.ignored.get(snap.key);
    if (ignored?.id === id && (ignored.interfacesKnown || !snap.interfaces.length)) return;
    const verdict = allowVerdict(snap, this.allow);
    const vidPid = formatVidPid(snap.vendorId, snap.productId);
    if (!verdict.allowed) {
      this.ignored.set(snap.key, { id, interfacesKnown: snap.interfaces.length > 0 });
      this.log.debug(
        { event: 'usb.ignored', vidPid, portPath: snap.portPath, product: snap.product, reason: verdict.reason },
        `ignoring USB device ${vidPid} at ${snap.portPath}: ${verdict.reason}`,
      );
      return;
    }
    this.ignored.delete(snap.key);
    const info = deviceInfoOf(snap, this.cfg.slots);
    this.attached.set(snap.key, { id, since: ++this.counter, info });
    this.registry.set(snap);
    this.log.info(
      {
        event: 'usb.attached',
        vidPid,
        portPath: snap.portPath,
        slot: info.slot,
        product: snap.product,
        reason: verdict.reason,
      },
      `USB device ${vidPid} attached at ${snap.portPath} (slot ${info.slot})`,
    );
    this.listener?.attach(info);
  }

  private gone(key: string): void {
    if (this.scanning) this.detachedDuringScan.set(key, ++this.counter);
    this.ignored.delete(key);
    const a = this.attached.get(key);
    if (!a) return;
    this.attached.delete(key);
    this.registry.delete(key);
    this.log.info(
      { event: 'usb.detached', portPath: key, slot: a.info.slot },
      `USB device left ${key} (slot ${a.info.slot})`,
    );
    this.listener?.detach('usb', key);
  }
}
