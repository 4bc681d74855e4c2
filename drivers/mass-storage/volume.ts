/**
 * Where a docked mass-storage camera's files are: the mount of one of its block devices. Either
 * the system automounts it (udisks, systemd) and we wait for that, bounded, or dockd mounts it
 * itself under DATA/mnt/<key> and unmounts it when the camera leaves.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rmdir } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { watch } from 'chokidar';
import { DriverError, type DriverLogger } from '../types.js';
import { findMount, parseMountinfo, type MountEntry } from './mountinfo.js';
import { findDisks, usbDevicePresent, volumeCandidates, type BlockDevice } from './sysfs.js';

export type ExecFn = (file: string, args: string[]) => Promise<void>;
/** Calls `onChange` when a folder appears or goes under the roots; returns what stops it. */
export type WatchRootsFn = (roots: string[], onChange: () => void) => () => Promise<void>;
export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface VolumeDeps {
  sysfsRoot: string;
  mountinfoPath: string;
  devDir: string;
  exec: ExecFn;
  watchRoots: WatchRootsFn;
  timers: Timers;
}

export interface Volume {
  mountPoint: string;
  dev: string;
  readOnly: boolean;
  mountedByUs: boolean;
  /** As the mount table names it: vfat, exfat, … */
  fsType: string;
}

const execFileP = promisify(execFile);

export const realExec: ExecFn = async (file, args) => {
  await execFileP(file, args, { timeout: 30_000 });
};

export const chokidarWatchRoots: WatchRootsFn = (roots, onChange) => {
  const existing = roots.filter((r) => existsSync(r));
  if (!existing.length) return async () => undefined;
  // depth 1 sees both /media/LABEL and /media/<user>/LABEL appear without reading into volumes.
  const w = watch(existing, { depth: 1, ignoreInitial: true, persistent: true });
  w.on('addDir', onChange)
    .on('unlinkDir', onChange)
    .on('error', () => undefined);
  return () => w.close();
};

export const realTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export async function readMounts(mountinfoPath: string): Promise<MountEntry[]> {
  return parseMountinfo(await readFile(mountinfoPath, 'utf8'));
}

function volumeOf(m: MountEntry, mountedByUs: boolean): Volume {
  return { mountPoint: m.mountPoint, dev: m.dev, readOnly: m.options.includes('ro'), mountedByUs, fsType: m.fsType };
}

/** One look: the block devices of the port and a mount of one of them, if any. */
export async function locate(
  deps: VolumeDeps,
  portPath: string,
): Promise<{ candidates: BlockDevice[]; mount: MountEntry | null }> {
  const candidates = volumeCandidates(await findDisks(deps.sysfsRoot, portPath));
  if (!candidates.length) return { candidates, mount: null };
  let mounts: MountEntry[];
  try {
    mounts = await readMounts(deps.mountinfoPath);
  } catch (err) {
    throw new DriverError('transient', 'mountinfo', `cannot read ${deps.mountinfoPath}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  return {
    candidates,
    mount: findMount(
      mounts,
      candidates.map((c) => c.dev),
    ),
  };
}

export interface WaitOptions {
  timeoutMs: number;
  recheckMs: number;
  roots: string[];
}

/**
 * Probes until it yields a value, the deadline passes (null) or the USB device goes (deviceGone).
 * Filesystem events under the roots wake it early; the recheck interval catches what they miss
 * (a mount lands after its folder is made, and /proc cannot be watched).
 */
async function waitFor<T>(
  deps: VolumeDeps,
  portPath: string,
  o: WaitOptions,
  probe: () => Promise<T | null>,
): Promise<T | null> {
  let wake: (() => void) | null = null;
  let expired = false;
  const deadline = deps.timers.setTimeout(() => {
    expired = true;
    wake?.();
  }, o.timeoutMs);
  const close = o.roots.length ? deps.watchRoots(o.roots, () => wake?.()) : async () => undefined;
  try {
    for (;;) {
      const found = await probe();
      if (found !== null) return found;
      if (!(await usbDevicePresent(deps.sysfsRoot, portPath)))
        throw new DriverError('deviceGone', 'unplugged', `USB device ${portPath} left before its volume was found`);
      if (expired) return null;
      await new Promise<void>((resolve) => {
        const t = deps.timers.setTimeout(() => resolve(), o.recheckMs);
        wake = () => {
          deps.timers.clearTimeout(t);
          resolve();
        };
      });
      wake = null;
    }
  } finally {
    deps.timers.clearTimeout(deadline);
    await close().catch(() => undefined);
  }
}

/** Waits for the system to mount the device. */
export async function waitForAutomount(deps: VolumeDeps, portPath: string, o: WaitOptions): Promise<Volume> {
  let seen: BlockDevice[] = [];
  const mount = await waitFor(deps, portPath, o, async () => {
    const r = await locate(deps, portPath);
    seen = r.candidates;
    return r.mount;
  });
  if (mount) return volumeOf(mount, false);
  const what = seen.length
    ? `${seen.map((c) => c.name).join(', ')} ${seen.length > 1 ? 'were' : 'was'} not mounted`
    : 'no block device appeared';
  throw new DriverError(
    'transient',
    'not-mounted',
    `USB device ${portPath}: ${what} within ${o.timeoutMs} ms; mount it, or set usb.massStorage.mount to true`,
  );
}

export interface MountOptions extends WaitOptions {
  target: string;
  fsType: string;
  uid: number;
  gid: number;
}

/** Mounts the first block device that mounts; a mount the system already made is used as it is. */
export async function mountItself(
  deps: VolumeDeps,
  portPath: string,
  o: MountOptions,
  log: DriverLogger,
): Promise<Volume> {
  // noexec/nosuid/nodev: a camera's volume is data we copy, never anything we run.
  const options = `rw,nosuid,nodev,noexec,uid=${o.uid},gid=${o.gid},umask=077`;
  let tried: BlockDevice[] = [];
  let last: unknown = null;
  let madeTarget = false;
  // The kernel adds the disk before it has read its partition table, so a first look may find
  // "sda" alone on a card whose volume is "sda1" (seen on a real kernel, 0.75 s after attach):
  // a mount that fails is tried again with what sysfs shows then, until the deadline.
  const volume = await waitFor(deps, portPath, o, async (): Promise<Volume | null> => {
    const found = await locate(deps, portPath);
    // Ours when a previous run mounted it at our target and did not get to unmount it.
    if (found.mount) return volumeOf(found.mount, found.mount.mountPoint === o.target);
    if (!found.candidates.length) return null;
    if (!madeTarget) await mkdir(o.target, { recursive: true });
    madeTarget = true;
    tried = found.candidates;
    for (const c of found.candidates) {
      try {
        await deps.exec('mount', ['-t', o.fsType, '-o', options, path.join(deps.devDir, c.name), o.target]);
        log.info(
          { event: 'mass_storage.mounted', device: c.name, mountPoint: o.target },
          `mounted ${c.name} at ${o.target}`,
        );
        // mount(8) falls back to read-only on a write-protected card without failing: the mount
        // table says what was mounted.
        const made = (await locate(deps, portPath).catch(() => null))?.mount;
        if (made?.mountPoint === o.target) return volumeOf(made, true);
        return { mountPoint: o.target, dev: c.dev, readOnly: false, mountedByUs: true, fsType: o.fsType };
      } catch (err) {
        last = err;
      }
    }
    return null;
  });
  if (volume) return volume;
  if (madeTarget) await rmdir(o.target).catch(() => undefined);
  if (!tried.length)
    throw new DriverError(
      'transient',
      'no-block-device',
      `USB device ${portPath}: no block device appeared within ${o.timeoutMs} ms`,
    );
  const msg = last instanceof Error ? last.message.trim() : String(last);
  throw new DriverError(
    'transient',
    'mount-failed',
    `USB device ${portPath}: cannot mount ${tried.map((c) => c.name).join(', ')} as ${o.fsType}: ${msg}`,
    { cause: last },
  );
}

/** Unmounts what we mounted; a lazy unmount when the device is already gone and the mount is busy. */
export async function unmount(deps: VolumeDeps, v: Volume, log: DriverLogger): Promise<void> {
  if (!v.mountedByUs) return;
  try {
    await deps.exec('umount', [v.mountPoint]);
  } catch (err) {
    try {
      await deps.exec('umount', ['-l', v.mountPoint]);
    } catch {
      log.warn(
        { event: 'mass_storage.unmount_failed', mountPoint: v.mountPoint, err: (err as Error).message },
        `cannot unmount ${v.mountPoint}`,
      );
      return;
    }
  }
  await rmdir(v.mountPoint).catch(() => undefined);
  log.info({ event: 'mass_storage.unmounted', mountPoint: v.mountPoint }, `unmounted ${v.mountPoint}`);
}
