/**
 * The USB drivers with their settings from the config: one list for the daemon and for
 * `dockd usb`, so what the command explains is what the daemon does.
 */
import type { CameraDriver, DeviceInfo } from '../../drivers/types.js';
import { createMassStorageDriver } from '../../drivers/mass-storage/index.js';
import { createPtpDriver } from '../../drivers/ptp/driver.js';
import { usbTransportOpener } from '../../drivers/ptp/usb-transport.js';
import type { Config } from '../config.js';

/** How a driver reaches the native node-usb device of a DeviceInfo (the bus's registry). */
export type NativeDeviceLookup = (device: DeviceInfo) => unknown;

export function usbDrivers(
  cfg: Pick<Config, 'dataDir' | 'usb'>,
  native: NativeDeviceLookup = () => undefined,
): CameraDriver[] {
  const ms = cfg.usb.massStorage;
  return [
    createPtpDriver({ openTransport: usbTransportOpener(native) }),
    createMassStorageDriver({
      mount: ms.mount,
      automountRoots: ms.automountRoots,
      folders: ms.folders,
      dataDir: cfg.dataDir,
    }),
  ];
}
