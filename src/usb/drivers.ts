/**
 * The USB drivers with their settings from the config: one list for the daemon and for
 * `dockd usb`, so what the command explains is what the daemon does.
 */
import type { CameraDriver } from '../../drivers/types.js';
import { createMassStorageDriver } from '../../drivers/mass-storage/index.js';
import type { Config } from '../config.js';

export function usbDrivers(cfg: Pick<Config, 'dataDir' | 'usb'>): CameraDriver[] {
  const ms = cfg.usb.massStorage;
  return [createMassStorageDriver({ mount: ms.mount, automountRoots: ms.automountRoots, folders: ms.folders, dataDir: cfg.dataDir })];
}
