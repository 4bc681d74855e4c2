import type { DeviceInfo } from '../../drivers/types.js';

/** What a bus tells the dock about devices; keys are unique per bus and stable per attachment. */
export interface BusListener {
  attach(device: DeviceInfo): void;
  detach(bus: DeviceInfo['bus'], key: string): void;
  /** The device's state changed while attached (sim: camera.json rewritten). */
  change(device: DeviceInfo): void;
}

export interface Bus {
  readonly name: string;
  start(listener: BusListener): Promise<void>;
  stop(): Promise<void>;
}
