/**
 * A PtpTransport over node-usb 3 (`usb`). The device object comes in as a parameter (the USB
 * bus already enumerated it), so this module never loads node-usb itself and imports nothing
 * from it at run time: on a machine without /sys/bus/usb it loads fine and is simply not used.
 *
 * node-usb 3 facts relied on here: transfers take endpoint numbers without the direction bit;
 * `nativeTransferIn` rounds the request up to the max packet size and takes a timeout; an
 * expired timeout surfaces as `transferIn error: Cancelled`; one transfer per endpoint at once.
 */
import type { UsbDevice } from 'usb/index.js';
import { DriverError, type DeviceInfo, type DriverLogger } from '../types.js';
import { STILL_IMAGE_CLASS } from './constants.js';
import { TransportCode, type PtpTransport, type UsbDirection } from './transport.js';

interface ControlSetup {
  requestType: 'class';
  recipient: 'interface';
  request: number;
  value: number;
  index: number;
}

export interface UsbEndpointLike {
  endpointNumber: number;
  direction: string;
  type: string;
  packetSize: number;
}

export interface UsbConfigurationLike {
  interfaces: Array<{
    interfaceNumber: number;
    alternate: {
      interfaceClass: number;
      interfaceSubclass: number;
      interfaceProtocol: number;
      endpoints: UsbEndpointLike[];
    };
  }>;
}

/** The parts of node-usb 3's `UsbDevice` used here. */
export interface UsbStillImageDevice {
  readonly opened: boolean;
  readonly configuration: UsbConfigurationLike | null | undefined;
  open(): Promise<void>;
  close(): Promise<void>;
  claimInterface(interfaceNumber: number): Promise<void>;
  releaseInterface(interfaceNumber: number): Promise<void>;
  detachKernelDriver?(interfaceNumber: number): Promise<void>;
  nativeTransferIn(endpointNumber: number, timeout: number, length: number): Promise<Uint8Array | null>;
  nativeTransferOut(endpointNumber: number, timeout: number, data: Uint8Array): Promise<number>;
  nativeControlTransferIn(setup: ControlSetup, timeout: number, length: number): Promise<Uint8Array | null>;
  nativeControlTransferOut(setup: ControlSetup, timeout: number, data?: Uint8Array | null): Promise<number>;
  clearHalt(direction: UsbDirection, endpointNumber: number): Promise<void>;
}

/** node-usb's own device type; naming it here fails the build if node-usb's shape drifts from ours. */
type Fits<T extends UsbStillImageDevice> = T;
export type NodeUsbDevice = Fits<UsbDevice>;

/** node-usb's error strings, translated once into what the session branches on. */
export function usbError(err: unknown, what: string): DriverError {
  if (err instanceof DriverError) return err;
  const msg = (err as Error | undefined)?.message ?? String(err);
  const text = `${what}: ${msg}`;
  if (/disconnect|no such device|enodev|not found|invalid state/i.test(msg))
    return new DriverError('deviceGone', TransportCode.Gone, text, { cause: err });
  if (/stall/i.test(msg)) return new DriverError('transient', TransportCode.Stall, text, { cause: err });
  if (/cancel|timed? ?out/i.test(msg)) return new DriverError('transient', TransportCode.Timeout, text, { cause: err });
  if (/busy/i.test(msg))
    return new DriverError(
      'transient',
      'usb-busy',
      `${text} (another program, e.g. gvfs or gphoto2, may hold the camera)`,
      { cause: err },
    );
  return new DriverError('transient', TransportCode.Io, text, { cause: err });
}

export interface StillImageInterface {
  number: number;
  bulkIn: number;
  bulkOut: number;
  interruptIn?: number;
  maxPacketSize: number;
}

/**
 * The still-image interface and its endpoints. Without a class 0x06 interface, one with the
 * PTP endpoint set (bulk in, bulk out, interrupt in) is taken: MTP devices often report class 0xff.
 */
export function findStillImageInterface(
  config: UsbConfigurationLike,
  interfaceNumber?: number,
): StillImageInterface | null {
  const shaped = config.interfaces.map((i) => {
    const eps = i.alternate.endpoints;
    const find = (dir: string, type: string) => eps.find((e) => e.direction === dir && e.type === type);
    return { i, bulkIn: find('in', 'bulk'), bulkOut: find('out', 'bulk'), interruptIn: find('in', 'interrupt') };
  });
  const usable = shaped.filter((s) => s.bulkIn && s.bulkOut);
  const pick =
    interfaceNumber !== undefined
      ? usable.find((s) => s.i.interfaceNumber === interfaceNumber)
      : (usable.find((s) => s.i.alternate.interfaceClass === STILL_IMAGE_CLASS) ?? usable.find((s) => s.interruptIn));
  if (!pick?.bulkIn || !pick.bulkOut) return null;
  return {
    number: pick.i.interfaceNumber,
    bulkIn: pick.bulkIn.endpointNumber,
    bulkOut: pick.bulkOut.endpointNumber,
    ...(pick.interruptIn ? { interruptIn: pick.interruptIn.endpointNumber } : {}),
    maxPacketSize: pick.bulkIn.packetSize || 512,
  };
}

export interface UsbTransportOptions {
  log?: DriverLogger;
  /** Claim this interface instead of looking for the still-image one. */
  interfaceNumber?: number;
  outTimeoutMs?: number;
  controlTimeoutMs?: number;
}

class UsbTransport implements PtpTransport {
  readonly maxPacketSize: number;
  readonly interruptIn?: (maxLength: number, timeoutMs: number) => Promise<Uint8Array>;
  private closed = false;

  constructor(
    private readonly device: UsbStillImageDevice,
    private readonly iface: StillImageInterface,
    private readonly outTimeoutMs: number,
    private readonly controlTimeoutMs: number,
  ) {
    this.maxPacketSize = iface.maxPacketSize;
    const ep = iface.interruptIn;
    if (ep !== undefined)
      this.interruptIn = (max, timeoutMs) =>
        this.call('interrupt-in', async () => this.received(await device.nativeTransferIn(ep, timeoutMs, max)));
  }

  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    if (this.closed) throw new DriverError('deviceGone', TransportCode.Gone, `${what}: transport is closed`);
    try {
      return await fn();
    } catch (err) {
      throw usbError(err, what);
    }
  }

  /** node-usb resolves a transfer without data only for a stalled endpoint. */
  private received(data: Uint8Array | null): Uint8Array {
    if (!data) throw new DriverError('transient', TransportCode.Stall, 'endpoint stalled');
    return data;
  }

  private setup(request: number, value: number): ControlSetup {
    return { requestType: 'class', recipient: 'interface', request, value, index: this.iface.number };
  }

  bulkOut(data: Uint8Array): Promise<void> {
    return this.call('bulk-out', async () => {
      const written = await this.device.nativeTransferOut(this.iface.bulkOut, this.outTimeoutMs, data);
      if (written !== data.length)
        throw new DriverError('transient', TransportCode.Io, `bulk-out wrote ${written} of ${data.length} bytes`);
    });
  }

  bulkIn(maxLength: number, timeoutMs: number): Promise<Uint8Array> {
    return this.call('bulk-in', async () =>
      this.received(await this.device.nativeTransferIn(this.iface.bulkIn, timeoutMs, maxLength)),
    );
  }

  controlIn(request: number, value: number, length: number): Promise<Uint8Array> {
    return this.call('control-in', async () =>
      this.received(
        await this.device.nativeControlTransferIn(this.setup(request, value), this.controlTimeoutMs, length),
      ),
    );
  }

  controlOut(request: number, value: number, data: Uint8Array): Promise<void> {
    return this.call('control-out', async () => {
      await this.device.nativeControlTransferOut(this.setup(request, value), this.controlTimeoutMs, data);
    });
  }

  clearHalt(direction: UsbDirection): Promise<void> {
    return this.call('clear halt', () =>
      this.device.clearHalt(direction, direction === 'in' ? this.iface.bulkIn : this.iface.bulkOut),
    );
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.device.releaseInterface(this.iface.number).catch(() => undefined);
    await this.device.close().catch(() => undefined);
  }
}

/** Opens the device, claims its still-image interface and returns the transport over it. */
export async function openUsbTransport(
  device: UsbStillImageDevice,
  opts: UsbTransportOptions = {},
): Promise<PtpTransport> {
  try {
    if (!device.opened) await device.open();
  } catch (err) {
    throw usbError(err, 'open');
  }
  let config: UsbConfigurationLike | null | undefined;
  try {
    config = device.configuration;
  } catch (err) {
    throw usbError(err, 'reading the configuration');
  }
  const iface = config ? findStillImageInterface(config, opts.interfaceNumber) : null;
  if (!iface) {
    await device.close().catch(() => undefined);
    throw new DriverError(
      'permanent',
      'no-still-image-interface',
      'device has no interface with bulk-in and bulk-out endpoints for PTP',
    );
  }
  // No kernel driver binds class 0x06 on Linux; a vendor-class interface may have one.
  await device.detachKernelDriver?.(iface.number).catch(() => undefined);
  try {
    await device.claimInterface(iface.number);
  } catch (err) {
    await device.close().catch(() => undefined);
    throw usbError(err, `claiming interface ${iface.number}`);
  }
  opts.log?.debug({ event: 'ptp.usb_claimed', ...iface }, `claimed interface ${iface.number}`);
  return new UsbTransport(device, iface, opts.outTimeoutMs ?? 5_000, opts.controlTimeoutMs ?? 1_000);
}

/**
 * `openTransport` for createPtpDriver: `native` looks up the node-usb device object the USB bus
 * holds for a docked device (UsbDeviceRegistry.native).
 */
export function usbTransportOpener(
  native: (device: DeviceInfo) => unknown,
  opts: Omit<UsbTransportOptions, 'log'> = {},
): (device: DeviceInfo, log: DriverLogger) => Promise<PtpTransport> {
  return async (device, log) => {
    const dev = native(device) as UsbStillImageDevice | undefined;
    if (!dev) throw new DriverError('deviceGone', TransportCode.Gone, `USB device ${device.key} is no longer attached`);
    if (typeof dev.nativeTransferIn !== 'function')
      throw new DriverError('permanent', 'not-node-usb', 'the USB backend gave no node-usb device to open');
    return openUsbTransport(dev, { ...opts, log });
  };
}
