/**
 * The one registry of camera driver families, and how a device is given to one of them. To add a
 * family, add it to `cameraDrivers` (docs/ARCHITECTURE.md, "Adding a driver").
 */
import type { CameraDriver, DeviceInfo } from '../../drivers/types.js';
import { createMassStorageDriver } from '../../drivers/mass-storage/index.js';
import { createPtpDriver } from '../../drivers/ptp/driver.js';
import { usbTransportOpener } from '../../drivers/ptp/usb-transport.js';
import { simulatedDriver } from '../../drivers/simulated/index.js';
import type { Config } from '../config.js';
import { classHex, formatVidPid, parseVidPid } from '../usb/policy.js';

/** `usb.drivers`: "VID:PID" → driver name, for devices whose descriptors mislead the scores. */
export type DriverRules = Readonly<Record<string, string>>;

/** A driver may say in words why it scored a device, for `dockd usb` and the logs. */
export interface ExplainingDriver extends CameraDriver {
  explainMatch?(device: DeviceInfo): string;
}

export interface DriverChoice {
  driver: CameraDriver | null;
  reason: string;
}

/**
 * An explicit rule for the device's VID:PID wins; otherwise the driver with the highest score,
 * ties going to the earlier one. A rule naming a driver that is not loaded picks none rather
 * than letting the scores hand the device to a driver the admin did not choose.
 */
export function chooseDriver(
  drivers: readonly CameraDriver[],
  device: DeviceInfo,
  rules: DriverRules = {},
): DriverChoice {
  if (device.vendorId !== undefined && device.productId !== undefined) {
    for (const [pattern, name] of Object.entries(rules)) {
      const id = parseVidPid(pattern);
      if (!id || id.vendorId !== device.vendorId || id.productId !== device.productId) continue;
      const rule = formatVidPid(id.vendorId, id.productId);
      const driver = drivers.find((d) => d.name === name) ?? null;
      return driver
        ? { driver, reason: `rule ${rule}` }
        : { driver: null, reason: `rule ${rule} names driver "${name}", which is not loaded` };
    }
  }
  let best: CameraDriver | null = null;
  let bestScore = 0;
  for (const d of drivers) {
    const s = d.matches(device);
    if (s > bestScore) {
      best = d;
      bestScore = s;
    }
  }
  if (best) return { driver: best, reason: (best as ExplainingDriver).explainMatch?.(device) ?? `score ${bestScore}` };
  const classes = [...new Set((device.interfaces ?? []).map((i) => classHex(i.class)))];
  return {
    driver: null,
    reason: classes.length ? `no driver matches interface class ${classes.join(', ')}` : 'no driver matches',
  };
}

/** The driver `chooseDriver` picks, or null. */
export function selectDriver(
  drivers: readonly CameraDriver[],
  device: DeviceInfo,
  rules?: DriverRules,
): CameraDriver | null {
  return chooseDriver(drivers, device, rules).driver;
}

/** How a driver reaches the native node-usb device of a DeviceInfo (the bus's registry). */
export type NativeDeviceLookup = (device: DeviceInfo) => unknown;

/**
 * The USB drivers with their settings from the config: one list for the daemon and for
 * `dockd usb`, so what the command explains is what the daemon does.
 */
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
      profiles: ms.profiles,
      dataDir: cfg.dataDir,
    }),
  ];
}

/** Every driver family the daemon offers a device to: the simulated dock's and the USB ones. */
export function cameraDrivers(
  cfg: Pick<Config, 'dataDir' | 'usb'>,
  native: NativeDeviceLookup = () => undefined,
): CameraDriver[] {
  return [simulatedDriver, ...usbDrivers(cfg, native)];
}
