import { afterEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import {
  DriverError,
  type CameraSession,
  type DeviceInfo,
  type RecordingEntry,
  type UnreadableEntry,
} from '../drivers/types.js';
import {
  createMassStorageDriver,
  findDisks,
  findMount,
  parseMountinfo,
  type MassStorageDriverOptions,
} from '../drivers/mass-storage/index.js';
import { MemoryLogger, recordedInfo } from './support/usb.js';
import { fakeDockPc, fakePcDriver, MOUNTINFO } from './support/sysfs.js';
import { rejection } from './support/driver-error.js';

interface World {
  root: string;
  sys: string;
  mountinfo: string;
  camA: string;
  /** mountinfo as the fixture has it, with mount points moved under `root`. */
  mounts: string;
  log: MemoryLogger;
  driver(opts?: MassStorageDriverOptions): ReturnType<typeof createMassStorageDriver>;
  setMounts(text: string): void;
}

const roots: string[] = [];
const sessions: CameraSession[] = [];
afterEach(async () => {
  for (const s of sessions.splice(0)) await s.close().catch(() => undefined);
  for (const r of roots.splice(0)) rmSync(r, { recursive: true, force: true });
});

const BIG = randomBytes(5 * 1024 * 1024 + 123);
const SMALL = randomBytes(1000);

function world(opts: { mounted?: boolean } = {}): World {
  const root = mkdtempSync(path.join(os.tmpdir(), 'dockd-ms-'));
  roots.push(root);
  const pc = fakeDockPc(root);
  const w: World = {
    root,
    sys: pc.sys,
    mountinfo: pc.mountinfo,
    camA: pc.camA,
    mounts: pc.mounts,
    log: new MemoryLogger(),
    driver: (o = {}) => fakePcDriver(pc, o),
    setMounts: pc.setMounts,
  };
  if (opts.mounted === false) w.setMounts(withoutCamA(pc.mounts));
  else fillVolume(pc.camA);
  return w;
}

function withoutCamA(mounts: string): string {
  return mounts
    .split('\n')
    .filter((l) => !l.includes('CAM\\040A'))
    .join('\n');
}

function fillVolume(dir: string): void {
  const put = (rel: string, data: Buffer | string) => {
    mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    writeFileSync(path.join(dir, rel), data);
  };
  put('DCIM/100MEDIA/A0001.MP4', BIG);
  put('DCIM/100MEDIA/A0002.MP4', SMALL);
  put('DCIM/100MEDIA/.A0003.MP4.tmp', 'partial');
  put('DCIM/.Trashes/old.MP4', 'deleted');
  put('DCIM/101MEDIA/night/B0001.MP4', 'night');
  put('notes.txt', 'outside the configured folders');
  symlinkSync('/etc/passwd', path.join(dir, 'DCIM', 'passwd.MP4'));
  symlinkSync('../..', path.join(dir, 'DCIM', 'up'));
}

async function all(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function collect(session: CameraSession): Promise<RecordingEntry[]> {
  const out: RecordingEntry[] = [];
  for await (const e of session.list()) out.push(e);
  return out.sort((a, b) => a.id.localeCompare(b.id));
}

async function open(
  w: World,
  device: DeviceInfo = recordedInfo('qemu-usb-storage'),
  o?: MassStorageDriverOptions,
): Promise<CameraSession> {
  const s = await w.driver(o).open(device, w.log);
  sessions.push(s);
  return s;
}

describe('sysfs and mountinfo', () => {
  it('finds each USB disk and its partitions by port path', async () => {
    const w = world();
    expect(await findDisks(w.sys, '1-1')).toEqual([
      { name: 'sda', dev: '8:0', partitions: [{ name: 'sda1', dev: '8:1', number: 1 }] },
    ]);
    expect(await findDisks(w.sys, '2-1')).toEqual([
      { name: 'sdb', dev: '8:16', partitions: [{ name: 'sdb1', dev: '8:17', number: 1 }] },
    ]);
    expect(await findDisks(w.sys, '1-4')).toEqual([{ name: 'sdd', dev: '8:48', partitions: [] }]);
    expect(await findDisks(w.sys, '1-9')).toEqual([]);
  });

  it('reads mountinfo, unescaping octal and skipping bind mounts of a sub-folder', () => {
    const entries = parseMountinfo(MOUNTINFO);
    expect(entries).toHaveLength(13);
    expect(findMount(entries, ['8:1'])).toMatchObject({
      mountPoint: '/media/officer/CAM A',
      fsType: 'vfat',
      source: '/dev/sda1',
      root: '/',
    });
    expect(findMount(entries, ['8:99', '8:48'])?.mountPoint).toBe('/run/media/officer/BODYCAM');
    expect(findMount(entries, ['8:0'])).toBeNull();
  });
});

describe('mass-storage driver', () => {
  it('matches interface class 0x08 on USB only', () => {
    const d = createMassStorageDriver();
    expect(d.matches(recordedInfo('qemu-usb-storage'))).toBe(60);
    expect(d.matches(recordedInfo('qemu-usb-mtp'))).toBe(0);
    expect(
      d.matches({
        bus: 'sim',
        key: 'A',
        slot: 'A',
        interfaces: [{ number: 0, class: 8, subclass: 6, protocol: 0x50 }],
      }),
    ).toBe(0);
  });

  it('resolves the camera to its own mount point, not the stick’s or a bind mount’s', async () => {
    const w = world();
    const s = await open(w);
    expect(await s.identity()).toEqual({ serial: 'CAM-0001', model: 'QEMU USB HARDDRIVE', firmware: '0.00' });
    expect(await s.battery()).toBeNull();
    expect(s.clock).toBeUndefined();
    expect(w.log.events('mass_storage.volume')[0]).toMatchObject({
      mountPoint: w.camA,
      dev: '8:1',
      mountedByUs: false,
    });
  });

  it('finds a volume on a disk without a partition table and reads identity from sysfs', async () => {
    const w = world();
    fillVolume(path.join(w.root, 'run', 'media', 'officer', 'BODYCAM'));
    const device: DeviceInfo = {
      bus: 'usb',
      key: '1-4',
      slot: '1-4',
      portPath: '1-4',
      vendorId: 0x2e1a,
      productId: 0x0202,
      interfaces: [{ number: 0, class: 8, subclass: 6, protocol: 0x50 }],
    };
    const s = await open(w, device);
    expect(await s.identity()).toEqual({ serial: 'X81024731', model: 'BodyCam 3', firmware: '3.18' });
    expect((await collect(s)).length).toBe(3);
  });

  it('waits for an automount that appears later', async () => {
    const w = world({ mounted: false });
    const t0 = Date.now();
    // Rechecks and deadline far beyond the test: only the watch on the automount roots can wake it.
    const opening = open(w, undefined, { recheckMs: 60_000, mountWaitMs: 30_000 });
    await new Promise((r) => setTimeout(r, 400));
    w.setMounts(w.mounts);
    fillVolume(w.camA);
    const s = await opening;
    expect(Date.now() - t0).toBeGreaterThanOrEqual(400);
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect((await s.identity()).serial).toBe('CAM-0001');
  });

  it('gives up on a volume that is never mounted with an error that says what to do', async () => {
    const w = world({ mounted: false });
    const err = await rejection(open(w, undefined, { mountWaitMs: 300 }));
    expect(err.code).toBe('not-mounted');
    expect(err.message).toBe(
      'USB device 1-1: sda1, sda were not mounted within 300 ms; mount it, or set usb.massStorage.mount to true',
    );
  });

  it('stops waiting when the device is unplugged meanwhile', async () => {
    const w = world({ mounted: false });
    const opening = open(w);
    await new Promise((r) => setTimeout(r, 100));
    rmSync(path.join(w.sys, 'bus/usb/devices/1-1'));
    expect((await rejection(opening)).kind).toBe('deviceGone');
  });

  it('rejects a device without a USB serial at once', async () => {
    const w = world();
    const device: DeviceInfo = {
      bus: 'usb',
      key: '1-3',
      slot: '1-3',
      portPath: '1-3',
      vendorId: 0x2e1a,
      productId: 0x0201,
      product: 'BodyCam 2',
      interfaces: [{ number: 0, class: 8, subclass: 6, protocol: 0x50 }],
    };
    const t0 = Date.now();
    const err = await rejection(open(w, device));
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(err).toMatchObject({ kind: 'permanent', code: 'no-serial' });
    expect(err.message).toMatch(/at 1-3 reports no serial number/);
  });

  it('lists the configured folders lazily, skipping dotfiles and symlinks', async () => {
    const w = world();
    const s = await open(w);
    const list = await collect(s);
    expect(list.map((e) => [e.id, e.bytes])).toEqual([
      ['DCIM/100MEDIA/A0001.MP4', BIG.length],
      ['DCIM/100MEDIA/A0002.MP4', SMALL.length],
      ['DCIM/101MEDIA/night/B0001.MP4', 5],
    ]);
    expect(list[0]!.path).toBe(list[0]!.id);
    expect(list[0]!.modifiedAt).toBeInstanceOf(Date);
    const wide = await open(w, undefined, { folders: ['', '../etc'] });
    expect((await collect(wide)).map((e) => e.id)).toContain('notes.txt');
  });

  it('reads from an offset', async () => {
    const w = world();
    const s = await open(w);
    expect(s.capabilities).toEqual({ resume: true, delete: true });
    expect((await all(await s.read('DCIM/100MEDIA/A0001.MP4', 0))).equals(BIG)).toBe(true);
    expect((await all(await s.read('DCIM/100MEDIA/A0001.MP4', 3_000_001))).equals(BIG.subarray(3_000_001))).toBe(true);
    expect((await all(await s.read('DCIM/100MEDIA/A0002.MP4', SMALL.length))).length).toBe(0);
    expect(await rejection(s.read('DCIM/100MEDIA/A0002.MP4', SMALL.length + 1))).toMatchObject({
      kind: 'permanent',
      code: 'bad-offset',
    });
  });

  it('calls a missing recording permanent and never leaves the volume', async () => {
    const w = world();
    const s = await open(w);
    expect(await rejection(s.read('DCIM/100MEDIA/NOPE.MP4', 0))).toMatchObject({ kind: 'permanent', code: 'ENOENT' });
    for (const id of ['../mountinfo', 'DCIM/../../mountinfo', '/etc/passwd', 'DCIM//x', 'DCIM/up/mountinfo']) {
      expect(await rejection(s.read(id, 0))).toMatchObject({ kind: 'permanent' });
    }
    expect(await rejection(s.read('DCIM/passwd.MP4', 0))).toMatchObject({ kind: 'permanent', code: 'ELOOP' });
    expect(await rejection(s.delete('DCIM/passwd.MP4'))).toMatchObject({ kind: 'permanent', code: 'not-a-file' });
    expect(existsSync('/etc/passwd')).toBe(true);
  });

  it('deletes, and deleting again is not an error', async () => {
    const w = world();
    const s = await open(w);
    await s.delete('DCIM/100MEDIA/A0002.MP4');
    expect(existsSync(path.join(w.camA, 'DCIM/100MEDIA/A0002.MP4'))).toBe(false);
    await s.delete('DCIM/100MEDIA/A0002.MP4');
    expect((await collect(s)).map((e) => e.id)).not.toContain('DCIM/100MEDIA/A0002.MP4');
  });

  it('lists, reads and deletes a file whose name is not UTF-8 by its raw bytes', async () => {
    const w = world();
    const folder = path.join(w.camA, 'DCIM', '100MEDIA');
    const latin1 = Buffer.concat([Buffer.from(`${folder}/caf`), Buffer.of(0xe9), Buffer.from('.MP4')]);
    writeFileSync(latin1, 'latin-1 name');
    // Valid UTF-8 that spells what the Latin-1 name is kept as: it must stay a different recording.
    writeFileSync(path.join(folder, 'caf\uf7e9.MP4'), 'crafted name');
    mkdirSync(Buffer.concat([Buffer.from(`${w.camA}/DCIM/`), Buffer.of(0xff)]));
    writeFileSync(
      Buffer.concat([Buffer.from(`${w.camA}/DCIM/`), Buffer.of(0xff), Buffer.from('/x.MP4')]),
      'in a folder',
    );
    const s = await open(w);
    const ids = (await collect(s)).map((e) => e.id);
    expect(ids).toEqual(
      expect.arrayContaining([
        'DCIM/100MEDIA/caf\uf7e9.MP4',
        'DCIM/100MEDIA/caf\uf7ef\uf79f\uf7a9.MP4',
        'DCIM/\uf7ff/x.MP4',
      ]),
    );
    expect((await all(await s.read('DCIM/100MEDIA/caf\uf7e9.MP4', 0))).toString()).toBe('latin-1 name');
    expect((await all(await s.read('DCIM/100MEDIA/caf\uf7ef\uf79f\uf7a9.MP4', 0))).toString()).toBe('crafted name');
    expect((await all(await s.read('DCIM/\uf7ff/x.MP4', 3))).toString()).toBe('a folder');
    await s.delete('DCIM/100MEDIA/caf\uf7e9.MP4');
    expect(existsSync(latin1)).toBe(false);
    expect(readFileSync(path.join(folder, 'caf\uf7e9.MP4'), 'utf8')).toBe('crafted name');
    // The escape of bytes that are UTF-8 is no name's id: it names nothing rather than é.
    expect(await rejection(s.read('DCIM/100MEDIA/caf\uf7c3\uf7a9.MP4', 0))).toMatchObject({
      kind: 'permanent',
      code: 'bad-id',
    });
  });

  it('reports links, device nodes, vanished files and folders too deep, and skips only dotfiles', async () => {
    const w = world();
    execFileSync('mkfifo', [path.join(w.camA, 'DCIM', '100MEDIA', 'pipe.MP4')]);
    mkdirSync(path.join(w.camA, 'DCIM', ...Array.from({ length: 9 }, (_, i) => `d${i}`)), { recursive: true });
    symlinkSync('/etc', Buffer.concat([Buffer.from(`${w.camA}/DCIM/l`), Buffer.of(0xe9)]));
    const s = await open(w);
    const reported: UnreadableEntry[] = [];
    const listed: string[] = [];
    for await (const e of s.list({ onUnreadable: (u) => reported.push(u) })) {
      listed.push(e.id);
      // Gone between the listing of its folder and its stat: reported, not skipped.
      if (e.id === 'DCIM/100MEDIA/A0001.MP4')
        rmSync(path.join(w.camA, 'DCIM', '100MEDIA', 'A0002.MP4'), { force: true });
      if (e.id === 'DCIM/100MEDIA/A0002.MP4')
        rmSync(path.join(w.camA, 'DCIM', '100MEDIA', 'A0001.MP4'), { force: true });
    }
    expect(listed).toHaveLength(2);
    const gone = listed.includes('DCIM/100MEDIA/A0001.MP4') ? 'DCIM/100MEDIA/A0002.MP4' : 'DCIM/100MEDIA/A0001.MP4';
    expect(reported.sort((a, b) => a.path.localeCompare(b.path))).toEqual(
      [
        { path: 'DCIM/d0/d1/d2/d3/d4/d5/d6/d7/d8', reason: 'too-deep' },
        { path: 'DCIM/l\uf7e9', reason: 'symlink' },
        { path: 'DCIM/passwd.MP4', reason: 'symlink' },
        { path: 'DCIM/up', reason: 'symlink' },
        { path: 'DCIM/100MEDIA/pipe.MP4', reason: 'not-a-file' },
        { path: gone, reason: 'vanished', code: 'ENOENT' },
      ].sort((a, b) => a.path.localeCompare(b.path)),
    );
    // A FIFO swapped in under a recording's name neither blocks the read nor is read.
    expect(await rejection(s.read('DCIM/100MEDIA/pipe.MP4', 0))).toMatchObject({
      kind: 'permanent',
      code: 'not-a-file',
    });
  });

  it('never reads or deletes through a folder replaced by a link after the listing', async () => {
    const w = world();
    const outside = path.join(w.root, 'outside');
    mkdirSync(outside);
    writeFileSync(path.join(outside, 'A0002.MP4'), 'not the camera’s');
    const s = await open(w);
    expect((await collect(s)).map((e) => e.id)).toContain('DCIM/100MEDIA/A0002.MP4');
    renameSync(path.join(w.camA, 'DCIM', '100MEDIA'), path.join(w.camA, 'DCIM', '.moved'));
    symlinkSync(outside, path.join(w.camA, 'DCIM', '100MEDIA'));
    expect(await rejection(s.read('DCIM/100MEDIA/A0002.MP4', 0))).toMatchObject({ kind: 'permanent', code: 'bad-id' });
    expect(await rejection(s.delete('DCIM/100MEDIA/A0002.MP4'))).toMatchObject({ kind: 'permanent', code: 'bad-id' });
    expect(readFileSync(path.join(outside, 'A0002.MP4'), 'utf8')).toBe('not the camera’s');
    expect(readFileSync(path.join(w.camA, 'DCIM', '.moved', 'A0002.MP4')).equals(SMALL)).toBe(true);
  });

  it('ends a read with deviceGone when the camera is unplugged mid-read', async () => {
    const w = world();
    const s = await open(w);
    const stream = await s.read('DCIM/100MEDIA/A0001.MP4', 0);
    let got = 0;
    const err = await (async () => {
      try {
        for await (const c of stream) {
          got += (c as Buffer).length;
          if (existsSync(path.join(w.sys, 'bus/usb/devices/1-1'))) rmSync(path.join(w.sys, 'bus/usb/devices/1-1'));
        }
      } catch (e) {
        return e as DriverError;
      }
      return null;
    })();
    expect(err).toBeInstanceOf(DriverError);
    expect(err).toMatchObject({ kind: 'deviceGone', code: 'unplugged' });
    expect(got).toBeLessThan(BIG.length);
    expect(await rejection(s.list()[Symbol.asyncIterator]().next())).toMatchObject({ kind: 'deviceGone' });
  });

  it('calls the camera gone when its volume was unmounted', async () => {
    const w = world();
    const s = await open(w);
    w.setMounts(withoutCamA(w.mounts));
    expect(await rejection(s.read('DCIM/100MEDIA/A0002.MP4', 0))).toMatchObject({
      kind: 'deviceGone',
      code: 'unmounted',
    });
    expect(await rejection(s.delete('DCIM/100MEDIA/A0002.MP4'))).toMatchObject({ kind: 'deviceGone' });
  });

  it('honours the abort signal and closes everything on close()', async () => {
    const w = world();
    const s = await open(w);
    const ac = new AbortController();
    const stream = await s.read('DCIM/100MEDIA/A0001.MP4', 0, { signal: ac.signal });
    ac.abort();
    expect(await rejection(all(stream))).toMatchObject({ kind: 'transient', code: 'aborted' });
    expect(await rejection(s.read('DCIM/100MEDIA/A0001.MP4', 0, { signal: ac.signal }))).toMatchObject({
      code: 'aborted',
    });
    // Aborted while the file is being opened: the stream it returns ends at once, aborted.
    const late = new AbortController();
    const opening = s.read('DCIM/100MEDIA/A0001.MP4', 0, { signal: late.signal });
    late.abort();
    expect(await rejection(all(await opening))).toMatchObject({ kind: 'transient', code: 'aborted' });

    const open1 = await s.read('DCIM/100MEDIA/A0001.MP4', 0);
    const closedWith = new Promise<unknown>((r) => open1.once('error', r));
    await s.close();
    expect(await closedWith).toMatchObject({ kind: 'deviceGone' });
    expect(await rejection(s.identity())).toMatchObject({ kind: 'deviceGone', code: 'closed' });
  });

  it('mounts the volume itself under DATA/mnt/<key> when told to, and unmounts it on close', async () => {
    const w = world({ mounted: false });
    const calls: string[][] = [];
    const exec = async (file: string, args: string[]) => {
      calls.push([file, ...args]);
      const target = args[args.length - 1]!;
      if (file === 'mount') {
        fillVolume(target);
        w.setMounts(
          withoutCamA(w.mounts) +
            `\n901 28 8:1 / ${target} rw,nosuid,nodev,noexec,relatime - vfat /dev/sda1 rw,uid=0,gid=0\n`,
        );
      } else {
        for (const f of ['DCIM', 'notes.txt']) rmSync(path.join(target, f), { recursive: true, force: true });
        w.setMounts(withoutCamA(w.mounts));
      }
    };
    const s = await open(w, undefined, { mount: true, exec, uid: 1000, gid: 1000, fsType: 'vfat' });
    const target = path.join(w.root, 'data', 'mnt', '1-1');
    expect(calls).toEqual([
      ['mount', '-t', 'vfat', '-o', 'rw,nosuid,nodev,noexec,uid=1000,gid=1000,umask=077', '/dev/sda1', target],
    ]);
    expect((await collect(s)).length).toBe(3);
    await s.close();
    expect(calls[1]).toEqual(['umount', target]);
    expect(existsSync(target)).toBe(false);
  });

  it('says so when the system mounted a write-protected card read-only instead', async () => {
    const w = world({ mounted: false });
    const exec = async (file: string, args: string[]) => {
      const target = args[args.length - 1]!;
      if (file !== 'mount') return;
      fillVolume(target);
      // What mount(8) does on a write-protected device: "mounting read-only", and exit 0.
      w.setMounts(
        withoutCamA(w.mounts) +
          `\n901 28 8:1 / ${target} ro,nosuid,nodev,noexec,relatime - vfat /dev/sda1 ro,uid=0,gid=0\n`,
      );
    };
    await open(w, undefined, { mount: true, exec, uid: 1000, gid: 1000, fsType: 'vfat' });
    expect(w.log.events('mass_storage.read_only')).toHaveLength(1);
  });

  it('uses an existing mount rather than mounting twice', async () => {
    const w = world();
    const calls: string[][] = [];
    const s = await open(w, undefined, { mount: true, exec: async (f, a) => void calls.push([f, ...a]) });
    expect((await collect(s)).length).toBe(3);
    await s.close();
    expect(calls).toEqual([]);
  });

  it('mounts the partition the kernel adds after the disk, though the whole disk failed first', async () => {
    const w = world({ mounted: false });
    // The disk's partition folder, as the kernel adds it once it has read the partition table.
    const partition = path.join(w.sys, 'bus/usb/devices/1-1/1-1:1.0/host0/target0:0:0/0:0:0:0/block/sda/sda1');
    const later = path.join(w.root, 'sda1-not-yet');
    renameSync(partition, later);
    const calls: string[] = [];
    const exec = async (file: string, args: string[]) => {
      const device = args.at(-2)!;
      calls.push(`${file} ${device}`);
      if (file !== 'mount') return;
      if (device === '/dev/sda') {
        renameSync(later, partition);
        throw new Error('mount: mounting /dev/sda failed: Invalid argument');
      }
      const target = args.at(-1)!;
      fillVolume(target);
      w.setMounts(
        withoutCamA(w.mounts) + `\n901 28 8:1 / ${target} rw,nosuid,nodev,noexec,relatime - vfat /dev/sda1 rw\n`,
      );
    };
    const s = await open(w, undefined, { mount: true, exec });
    expect(calls).toEqual(['mount /dev/sda', 'mount /dev/sda1']);
    expect((await collect(s)).length).toBe(3);
  });

  it('says which devices it could not mount and why', async () => {
    const w = world({ mounted: false });
    const exec = async () => {
      throw new Error('mount: /dev/sda1: wrong fs type, bad option, bad superblock');
    };
    const err = await rejection(open(w, undefined, { mount: true, exec, mountWaitMs: 300 }));
    expect(err.code).toBe('mount-failed');
    expect(err.message).toMatch(/cannot mount sda1, sda as vfat: mount: \/dev\/sda1: wrong fs type/);
  });
});
