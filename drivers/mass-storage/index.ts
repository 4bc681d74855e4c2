/**
 * The USB mass-storage driver (interface class 0x08): cameras that dock as a disk. The kernel
 * does the USB and SCSI part; this driver finds the disk's mount through sysfs and
 * /proc/self/mountinfo and offloads the files under the configured folders (DCIM by default).
 */
import { firstFingerprint, type Fingerprint } from '../usb-fingerprint.js';
import path from 'node:path';
import { DriverError, boundString, type CameraDriver, type DeviceInfo, type DriverLogger } from '../types.js';
import { MassStorageSession } from './session.js';
import { readUsbAttr } from './sysfs.js';
import { massStorageProfileFor } from './profiles.js';
import {
  chokidarWatchRoots,
  mountItself,
  realExec,
  realTimers,
  unmount,
  waitForAutomount,
  type ExecFn,
  type Timers,
  type VolumeDeps,
  type WatchRootsFn,
} from './volume.js';

export { MassStorageSession } from './session.js';
export { parseMountinfo, unescapeMountPath, findMount, type MountEntry } from './mountinfo.js';
export { findDisks, volumeCandidates, type Disk, type BlockDevice } from './sysfs.js';
export { MASS_STORAGE_PROFILES, massStorageProfileFor, type MassStorageProfile } from './profiles.js';
export type { ExecFn, Timers, WatchRootsFn, Volume } from './volume.js';

export const MASS_STORAGE_CLASS = 0x08;

/** Best first. A more specific match scores higher so a rule-less choice between drivers is stable. */
export const MASS_STORAGE_FINGERPRINTS: readonly Fingerprint[] = [
  { class: 0x08, subclass: 0x06, protocol: 0x50, score: 60, why: 'interface class 0x08 (SCSI, bulk-only transport)' },
  { class: 0x08, subclass: 0x06, protocol: 0x62, score: 60, why: 'interface class 0x08 (SCSI, USB attached SCSI)' },
  { class: 0x08, score: 40, why: 'interface class 0x08 (mass storage)' },
];

export function fingerprintOf(device: DeviceInfo): Fingerprint | null {
  if (device.bus !== 'usb') return null;
  return firstFingerprint(device, MASS_STORAGE_FINGERPRINTS);
}

export interface MassStorageDriverOptions {
  /** Mount the volume ourselves instead of waiting for the system's automount. */
  mount?: boolean;
  automountRoots?: string[];
  /** Folders of the volume that hold recordings, relative to its root; "" is the whole volume. */
  folders?: string[];
  /** "VID:PID" → the name of a row of the profile table, for cameras the table does not name. */
  profiles?: Record<string, string>;
  /** Our own mounts go to <dataDir>/mnt/<key>. */
  dataDir?: string;
  /** How long to wait for the block device and its mount. */
  mountWaitMs?: number;
  recheckMs?: number;
  fsType?: string;
  uid?: number;
  gid?: number;
  sysfsRoot?: string;
  mountinfoPath?: string;
  devDir?: string;
  exec?: ExecFn;
  watchRoots?: WatchRootsFn;
  timers?: Timers;
}

/** Folders as relative `/`-separated paths; anything climbing out of the volume is dropped. */
export function normalizeFolders(folders: readonly string[]): string[] {
  const out = new Set<string>();
  for (const f of folders) {
    const parts = f.split(/[\\/]+/).filter((p) => p !== '' && p !== '.');
    if (!parts.includes('..')) out.add(parts.join('/'));
  }
  return [...out];
}

/** bcdDevice "0318" → "3.18". */
export function firmwareOf(bcd: string | undefined): string | undefined {
  if (!bcd || !/^[0-9a-f]{4}$/i.test(bcd)) return undefined;
  return `${parseInt(bcd.slice(0, 2), 16)}.${bcd.slice(2)}`;
}

function mountDirName(key: string): string {
  return key.replace(/[^A-Za-z0-9._-]/g, '_');
}

/**
 * When the device was connected, on this machine's clock: the kernel counts the milliseconds
 * since (sysfs `power/connected_duration`, present with power management, as in every distribution
 * kernel). Without it, now: the camera was found moments after it was connected.
 */
async function connectedAt(sysfsRoot: string, port: string): Promise<number> {
  const now = Date.now();
  const ms = Number((await readUsbAttr(sysfsRoot, port, 'power/connected_duration')) ?? NaN);
  return Number.isSafeInteger(ms) && ms >= 0 ? now - ms : now;
}

export type MassStorageDriver = CameraDriver & { explainMatch(device: DeviceInfo): string };

export function createMassStorageDriver(opts: MassStorageDriverOptions = {}): MassStorageDriver {
  const sysfsRoot = opts.sysfsRoot ?? '/sys';
  const deps: VolumeDeps = {
    sysfsRoot,
    mountinfoPath: opts.mountinfoPath ?? '/proc/self/mountinfo',
    devDir: opts.devDir ?? '/dev',
    exec: opts.exec ?? realExec,
    watchRoots: opts.watchRoots ?? chokidarWatchRoots,
    timers: opts.timers ?? realTimers,
  };
  const folders = normalizeFolders(opts.folders ?? ['DCIM']);
  const wait = {
    timeoutMs: opts.mountWaitMs ?? 20_000,
    recheckMs: opts.recheckMs ?? 250,
    roots: opts.automountRoots ?? ['/media', '/run/media'],
  };

  return {
    name: 'mass-storage',
    matches: (device) => fingerprintOf(device)?.score ?? 0,
    explainMatch: (device) => {
      const fingerprint = fingerprintOf(device);
      if (!fingerprint) return 'not mass storage';
      // The model is the USB product string here, as open() takes it when the device has one.
      const match = massStorageProfileFor(
        { vendorId: device.vendorId, productId: device.productId, model: device.product ?? '' },
        opts.profiles,
      );
      return match ? `${fingerprint.why}; profile ${match.profile.name} (${match.matchedBy})` : fingerprint.why;
    },
    async open(device: DeviceInfo, log: DriverLogger) {
      if (device.bus !== 'usb')
        throw new DriverError('permanent', 'not-usb', 'the mass-storage driver only opens USB devices');
      const port = device.portPath ?? device.key;
      const attr = async (name: string) => (await readUsbAttr(sysfsRoot, port, name)) || undefined;
      // The USB serial string is the camera's identity: without it two cameras would be one.
      const serial = device.serialNumber?.trim() || (await attr('serial'));
      if (!serial) {
        throw new DriverError(
          'permanent',
          'no-serial',
          `USB mass-storage device at ${port} reports no serial number; without one dockd cannot tell cameras apart`,
        );
      }
      const identity = {
        serial: boundString(serial),
        model: boundString(device.product ?? (await attr('product')) ?? 'USB mass storage'),
        firmware: firmwareOf(await attr('bcdDevice')) ?? 'unknown',
      };
      const match = massStorageProfileFor(
        { vendorId: device.vendorId, productId: device.productId, model: identity.model },
        opts.profiles,
      );
      const volume = opts.mount
        ? await mountItself(
            deps,
            port,
            {
              ...wait,
              roots: [],
              target: path.resolve(opts.dataDir ?? '.', 'mnt', mountDirName(device.key)),
              fsType: opts.fsType ?? 'vfat',
              uid: opts.uid ?? process.getuid?.() ?? 0,
              gid: opts.gid ?? process.getgid?.() ?? 0,
            },
            log,
          )
        : await waitForAutomount(deps, port, wait);
      if (volume.readOnly)
        log.warn(
          { event: 'mass_storage.read_only', mountPoint: volume.mountPoint },
          `${volume.mountPoint} is mounted read-only: recordings can be copied but not deleted`,
        );
      log.info(
        {
          event: 'mass_storage.volume',
          mountPoint: volume.mountPoint,
          dev: volume.dev,
          mountedByUs: volume.mountedByUs,
        },
        `camera volume at ${volume.mountPoint}`,
      );
      if (match)
        log.info(
          { event: 'mass_storage.profile', profile: match.profile.name, matchedBy: match.matchedBy },
          `camera files of profile ${match.profile.name} (matched by ${match.matchedBy})`,
        );
      const release = () => unmount(deps, volume, log);
      try {
        return await MassStorageSession.open({
          portPath: port,
          volume,
          identity,
          folders,
          sysfsRoot,
          mountinfoPath: deps.mountinfoPath,
          log,
          release,
          profile: match?.profile,
          connectedAt: match ? await connectedAt(sysfsRoot, port) : undefined,
        });
      } catch (err) {
        await release();
        throw err;
      }
    },
  };
}
