/**
 * From a USB port path to the block devices the kernel made of it, through sysfs:
 *   /sys/bus/usb/devices/1-2.3 → …/1-2.3/1-2.3:1.0/host2/target2:0:0/2:0:0:0/block/sdb/dev
 * with partitions as sub-folders of the disk (sdb/sdb1/{dev,partition}). usb-storage and uas
 * build the same tree; a card reader has one LUN folder per slot.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';

export interface BlockDevice {
  /** Kernel name: "sdb", "sdb1". */
  name: string;
  /** "major:minor", as /proc/self/mountinfo names it. */
  dev: string;
}

export interface Disk extends BlockDevice {
  partitions: Array<BlockDevice & { number: number }>;
}

export function usbDeviceDir(sysfsRoot: string, portPath: string): string {
  return path.join(sysfsRoot, 'bus', 'usb', 'devices', portPath);
}

async function subdirs(dir: string, match: (name: string) => boolean): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  return entries
    .filter((e) => e.isDirectory() && match(e.name))
    .map((e) => e.name)
    .sort();
}

async function readAttr(file: string): Promise<string | undefined> {
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch {
    return undefined;
  }
}

/** A sysfs attribute of the USB device itself (serial, product, bcdDevice…), trimmed. */
export function readUsbAttr(sysfsRoot: string, portPath: string, name: string): Promise<string | undefined> {
  return readAttr(path.join(usbDeviceDir(sysfsRoot, portPath), name));
}

/** True while the kernel still has the USB device; its sysfs folder goes the moment it is unplugged. */
export async function usbDevicePresent(sysfsRoot: string, portPath: string): Promise<boolean> {
  return stat(usbDeviceDir(sysfsRoot, portPath)).then(
    () => true,
    () => false,
  );
}

const DEV = /^\d+:\d+$/;

export async function findDisks(sysfsRoot: string, portPath: string): Promise<Disk[]> {
  const base = usbDeviceDir(sysfsRoot, portPath);
  const disks: Disk[] = [];
  // Interface folders are "<port>:<config>.<interface>"; "<port>.N" would be a child behind a hub.
  for (const iface of await subdirs(base, (n) => n.startsWith(`${portPath}:`))) {
    const ifaceDir = path.join(base, iface);
    for (const host of await subdirs(ifaceDir, (n) => /^host\d+$/.test(n))) {
      for (const target of await subdirs(path.join(ifaceDir, host), (n) => /^target\d+:\d+:\d+$/.test(n))) {
        const targetDir = path.join(ifaceDir, host, target);
        for (const lun of await subdirs(targetDir, (n) => /^\d+:\d+:\d+:\d+$/.test(n))) {
          const blockDir = path.join(targetDir, lun, 'block');
          for (const name of await subdirs(blockDir, () => true)) {
            const disk = await readDisk(path.join(blockDir, name), name);
            if (disk) disks.push(disk);
          }
        }
      }
    }
  }
  return disks;
}

async function readDisk(dir: string, name: string): Promise<Disk | null> {
  const dev = await readAttr(path.join(dir, 'dev'));
  if (!dev || !DEV.test(dev)) return null;
  const partitions: Disk['partitions'] = [];
  for (const part of await subdirs(dir, (n) => n.startsWith(name))) {
    const pdev = await readAttr(path.join(dir, part, 'dev'));
    const number = Number(await readAttr(path.join(dir, part, 'partition')));
    if (pdev && DEV.test(pdev) && Number.isInteger(number)) partitions.push({ name: part, dev: pdev, number });
  }
  partitions.sort((a, b) => a.number - b.number);
  return { name, dev, partitions };
}

/**
 * Block devices in the order a volume is looked for on them: each disk's partitions, then the
 * disk itself (cameras often format the whole disk with no partition table).
 */
export function volumeCandidates(disks: readonly Disk[]): BlockDevice[] {
  return disks.flatMap((d) => [...d.partitions.map(({ name, dev }) => ({ name, dev })), { name: d.name, dev: d.dev }]);
}
