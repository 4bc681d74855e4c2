/**
 * The USB backend contract: what the bus and `dockd usb` need from a USB library. The real one
 * wraps node-usb (./node-usb.ts); tests hand in a fake so they never load native code.
 */
import type { UsbInterfaceDescriptor } from './policy.js';

export interface UsbDeviceSnapshot {
  /** The port path ("1-2.3"): stable for as long as the device stays plugged into that port. */
  key: string;
  vendorId: number;
  productId: number;
  manufacturer?: string;
  product?: string;
  serialNumber?: string;
  busNumber?: number;
  portPath: string;
  /**
   * The device address on its bus. The kernel assigns a new one on every enumeration, so a
   * different address on the same port means the device was replugged between two looks.
   */
  address?: number;
  /** Interfaces of the active configuration; empty when the configuration could not be read. */
  interfaces: UsbInterfaceDescriptor[];
  /** The library's own device object, for a driver to open. */
  device: unknown;
}

export type UsbAttachHandler = (device: UsbDeviceSnapshot) => void;
export type UsbDetachHandler = (key: string) => void;

export interface UsbBackend {
  /** Every device on every bus now. Rejects when the machine's USB cannot be enumerated. */
  list(): Promise<UsbDeviceSnapshot[]>;
  /**
   * Hot-plug notifications; resolves to a function that stops them. Optional, and never to be
   * trusted alone: without udevd the registration succeeds and no event ever arrives.
   */
  watch?(onAttach: UsbAttachHandler, onDetach: UsbDetachHandler): Promise<() => Promise<void> | void>;
}
