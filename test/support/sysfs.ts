/**
 * A dock PC's /sys and /proc/self/mountinfo for the mass-storage driver, laid out under a
 * temporary folder from the captures in fixtures/sysfs/: the USB devices and their disks as
 * sysfs has them, and mounts whose mount points are moved under that folder.
 */
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createMassStorageDriver, type MassStorageDriverOptions } from '../../drivers/mass-storage/index.js';

const FIXTURES = path.resolve(import.meta.dirname, '../../fixtures/sysfs');
export const SYSFS_TREE = readFileSync(path.join(FIXTURES, 'usb-storage.tree'), 'utf8');
export const MOUNTINFO = readFileSync(path.join(FIXTURES, 'mountinfo'), 'utf8');

/** Lays out the captured sysfs listing as real folders, files and symlinks. */
export function buildSysfs(root: string, tree: string = SYSFS_TREE): void {
  for (const raw of tree.split('\n')) {
    const line = raw.trimEnd();
    if (!line || line.startsWith('#')) continue;
    if (line.includes(' -> ')) {
      const [p, target] = line.split(' -> ') as [string, string];
      mkdirSync(path.dirname(path.join(root, p)), { recursive: true });
      symlinkSync(target, path.join(root, p));
    } else if (line.includes(' = ')) {
      const i = line.indexOf(' = ');
      mkdirSync(path.dirname(path.join(root, line.slice(0, i))), { recursive: true });
      writeFileSync(path.join(root, line.slice(0, i)), line.slice(i + 3) + '\n');
    } else {
      mkdirSync(path.join(root, line), { recursive: true });
    }
  }
}

export interface FakeDockPc {
  root: string;
  /** The fake /sys. */
  sys: string;
  /** The fake /proc/self/mountinfo; `setMounts` rewrites it. */
  mountinfo: string;
  /** The mountinfo capture with its mount points moved under `root`. */
  mounts: string;
  /** Where USB device 1-1's volume (CAM-0001, sda1) is mounted, as a folder. */
  camA: string;
  /** The automount roots under `root`. */
  automountRoots: string[];
  setMounts(text: string): void;
}

/** A fake sysfs and mountinfo under `root`, every captured volume mounted (its folders empty). */
export function fakeDockPc(root: string): FakeDockPc {
  const sys = path.join(root, 'sys');
  buildSysfs(sys);
  const mounts = MOUNTINFO.replaceAll(' /media/', ` ${root}/media/`).replaceAll(' /run/media/', ` ${root}/run/media/`);
  mkdirSync(path.join(root, 'media', 'officer'), { recursive: true });
  mkdirSync(path.join(root, 'run', 'media', 'officer'), { recursive: true });
  const mountinfo = path.join(root, 'mountinfo');
  const setMounts = (text: string) => writeFileSync(mountinfo, text);
  setMounts(mounts);
  return {
    root,
    sys,
    mountinfo,
    mounts,
    camA: path.join(root, 'media', 'officer', 'CAM A'),
    automountRoots: [path.join(root, 'media'), path.join(root, 'run', 'media')],
    setMounts,
  };
}

/** The mass-storage driver on the fake PC, with short waits; `opts` override. */
export function fakePcDriver(pc: FakeDockPc, opts: MassStorageDriverOptions = {}) {
  return createMassStorageDriver({
    sysfsRoot: pc.sys,
    mountinfoPath: pc.mountinfo,
    automountRoots: pc.automountRoots,
    dataDir: path.join(pc.root, 'data'),
    mountWaitMs: 3000,
    recheckMs: 50,
    ...opts,
  });
}

/** How long ago (ms) the kernel says USB device `port` was connected, as sysfs gives it. */
export function setConnectedDuration(pc: FakeDockPc, port: string, ms: number): void {
  writeFileSync(path.join(pc.sys, 'bus', 'usb', 'devices', port, 'power', 'connected_duration'), `${ms}\n`);
}
