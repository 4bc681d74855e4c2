/**
 * The QEMU harness itself, judged by what the guest's kernel and Node see: a usb-storage camera
 * and a usb-mtp camera hot-plugged through QMP show up in node-usb (events with udev, enumeration
 * always), as a block device that mounts as vfat, and go away again when unplugged.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { listFatImage, makeFatImage, prepareGuest, readFatImage, startVm, type Vm } from './support/qemu.js';

/**
 * Runs in the guest from /app, so `require('usb')` loads the repository's node-usb and its
 * native binding. Prints one machine-readable line per fact: READY, ENUM (every enumeration),
 * EVENT (connect/disconnect), BLOCK / MOUNT / BLOCK-GONE (the kernel's disks, mounted as vfat).
 * Exits with code 7 once the host creates /data/stop.
 */
const WATCHER = String.raw`
const { usb } = require('usb');
const fs = require('fs');
const { execFileSync } = require('child_process');
const t = () => Number(process.uptime().toFixed(3));
const out = (tag, o) => console.log(tag + ' ' + JSON.stringify(o));
const attempt = (f) => { try { return f(); } catch { return null; } };
process.on('uncaughtException', (e) => out('ERROR', { message: String(e && e.message) }));
process.on('unhandledRejection', (e) => out('ERROR', { message: String(e && e.message) }));
const hex = (n) => n.toString(16).padStart(4, '0');
// configuration throws on a device that is already gone: read it only while it is there.
const describe = (d, present) => ({
  id: hex(d.vendorId) + ':' + hex(d.productId),
  serial: attempt(() => d.serialNumber),
  bus: d.bus,
  ports: d.ports,
  classes: present ? attempt(() => d.configuration.interfaces.map((i) => i.alternate.interfaceClass)) : undefined,
});
usb.addEventListener('connect', (e) => out('EVENT', { type: 'connect', t: t(), ...describe(e.device, true) }));
usb.addEventListener('disconnect', (e) => out('EVENT', { type: 'disconnect', t: t(), ...describe(e.device, false) }));

const disks = new Map();
function usbSerialOf(disk) {
  // /sys/block/sda/device -> …/usb2/2-1/2-1:1.0/host0/…: the USB device folder holds "serial".
  const real = attempt(() => fs.realpathSync('/sys/block/' + disk + '/device')) || '';
  const dev = real.split('/').filter((p) => /^\d+-[\d.]+$/.test(p)).pop();
  return dev ? attempt(() => fs.readFileSync('/sys/bus/usb/devices/' + dev + '/serial', 'utf8').trim()) : null;
}
function walk(dir, rel = '') {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(dir + '/' + e.name, rel + e.name + '/') : [rel + e.name]);
}
function pollDisks() {
  const now = attempt(() => fs.readdirSync('/sys/block').filter((n) => /^sd[a-z]+$/.test(n))) || [];
  for (const disk of now) {
    let d = disks.get(disk);
    if (!d) {
      d = { serial: usbSerialOf(disk), mounted: false, tries: 0 };
      disks.set(disk, d);
      out('BLOCK', { t: t(), disk, serial: d.serial });
    }
    const part = '/dev/' + disk + '1';
    if (!d.mounted && d.tries < 20 && fs.existsSync(part)) {
      d.tries++;
      const dir = '/mnt/' + disk + '1';
      fs.mkdirSync(dir, { recursive: true });
      try {
        execFileSync('mount', ['-t', 'vfat', part, dir], { stdio: 'pipe' });
        d.mounted = true;
        // devtmpfs makes /dev/sda1 before udev has linked /dev/disk/by-id to it.
        if (fs.existsSync('/run/udev/control')) attempt(() => execFileSync('udevadm', ['settle', '--timeout=5']));
        const byId = attempt(() => fs.readdirSync('/dev/disk/by-id').filter((n) => n.includes(d.serial))) || [];
        out('MOUNT', { t: t(), disk, serial: d.serial, files: walk(dir + '/DCIM', 'DCIM/'), byId });
      } catch (e) {
        out('MOUNT-FAILED', { disk, message: String(e.stderr || e.message).trim() });
      }
    }
  }
  for (const [disk, d] of disks) {
    if (now.includes(disk)) continue;
    disks.delete(disk);
    if (d.mounted) attempt(() => execFileSync('umount', ['-l', '/mnt/' + disk + '1']));
    out('BLOCK-GONE', { t: t(), disk, serial: d.serial });
  }
}

let n = 0;
(async () => {
  out('READY', { t: t() });
  for (;;) {
    const devices = await usb.getDevices();
    out('ENUM', { n: n++, t: t(), devices: devices.map((d) => describe(d, true)) });
    pollDisks();
    if (fs.existsSync('/data/stop')) process.exit(7);
    await new Promise((r) => setTimeout(r, 250));
  }
})();
`;

const GUEST_SCRIPT = `#!/bin/sh
cd /app || exit 1
exec node -e "$(cat <<'JS'
${WATCHER}
JS
)"
`;

interface UsbSeen {
  id: string;
  serial: string | null;
  bus: string;
  ports: number[];
  classes: number[] | null;
}
interface EnumLine {
  n: number;
  t: number;
  devices: UsbSeen[];
}
interface EventLine extends UsbSeen {
  type: 'connect' | 'disconnect';
  t: number;
}
interface MountLine {
  disk: string;
  serial: string | null;
  files: string[];
  byId: string[];
}

function lines<T>(vm: Vm, tag: string, from = 0): T[] {
  const prefix = `${tag} `;
  return vm.serial
    .slice(from)
    .split('\n')
    .filter((l) => l.startsWith(`[guest] ${prefix}`))
    .map((l) => JSON.parse(l.slice(`[guest] ${prefix}`.length)) as T);
}

/** Waits for the first `tag` line after `from` whose JSON satisfies `match`. */
async function waitLine<T>(vm: Vm, tag: string, match: (v: T) => boolean, timeoutMs: number, from: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let cursor = from;
  for (;;) {
    const m = await vm.waitForSerial(new RegExp(`^\\[guest\\] ${tag} (.*)$`, 'm'), Math.max(1, deadline - Date.now()), {
      from: cursor,
    });
    const value = JSON.parse(m[1] ?? 'null') as T;
    if (match(value)) return value;
    cursor = m.index + m[0].length;
  }
}

const lastEnum = (vm: Vm): EnumLine | undefined => lines<EnumLine>(vm, 'ENUM').pop();
const timings: string[] = [];
const timed = async <T>(label: string, f: () => Promise<T>): Promise<T> => {
  const start = Date.now();
  const v = await f();
  timings.push(`${label}: ${Date.now() - start} ms`);
  return v;
};

let work: string;
let vm: Vm | undefined;

beforeAll(async () => {
  // A first build downloads the kernel and udev (~75 MB) and takes a minute or two.
  await prepareGuest();
  work = mkdtempSync(path.join(os.tmpdir(), 'dockd-vm-harness-'));
}, 600_000);

afterEach(async () => {
  await vm?.stop();
  vm = undefined;
});

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
  console.log(`VM harness timings (accel ${process.env.DOCKD_VM_ACCEL ?? 'auto'}):\n  ${timings.join('\n  ')}`);
});

describe('QEMU guest with hot-plugged cameras', () => {
  it('shows a usb-storage and a usb-mtp camera to node-usb, udev and the kernel, then takes them away', async () => {
    const dataDir = path.join(work, 'udev-data');
    const footage = randomBytes(300_000);
    const image = await timed('makeFatImage 64 MB', () =>
      makeFatImage({
        path: path.join(work, 'cam1.img'),
        sizeMb: 64,
        label: 'CAM0001',
        files: [{ path: 'DCIM/100BODY/REC0001.MP4', data: footage, mtime: new Date('2024-05-01T10:20:30Z') }],
      }),
    );
    expect(await listFatImage(image)).toEqual(['DCIM/100BODY/REC0001.MP4']);
    expect((await readFatImage(image, 'DCIM/100BODY/REC0001.MP4'))?.equals(footage)).toBe(true);
    const mtpRoot = path.join(work, 'mtp-root');
    mkdirSync(path.join(mtpRoot, 'DCIM'), { recursive: true });
    writeFileSync(path.join(mtpRoot, 'DCIM', 'REC0002.MP4'), randomBytes(1000));

    const spawned = Date.now();
    vm = await startVm({ dataDir, script: GUEST_SCRIPT });
    await vm.waitForSerial(/^\[guest\] READY /m, 60_000);
    timings.push(
      `boot → init ran the command (udev settled): ${vm.bootMs} ms`,
      `boot → node-usb ready: ${Date.now() - spawned} ms`,
    );
    await vm.waitForSerial(/^\[guest\] ENUM /m, 30_000);
    expect(lastEnum(vm)?.devices).toEqual([]);

    // usb-storage
    let from = vm.serial.length;
    let plugged = Date.now();
    await vm.plugStorage({ id: 'cam1', image, serial: 'CAM-0001' });
    const connect = await waitLine<EventLine>(
      vm,
      'EVENT',
      (e) => e.type === 'connect' && e.serial === 'CAM-0001',
      20_000,
      from,
    );
    timings.push(`usb-storage plug → connect event: ${Date.now() - plugged} ms`);
    expect(connect).toMatchObject({ id: '46f4:0001', serial: 'CAM-0001' });
    expect(connect.classes).toContain(8);
    const seen = await waitLine<EnumLine>(
      vm,
      'ENUM',
      (e) => e.devices.some((d) => d.serial === 'CAM-0001'),
      20_000,
      from,
    );
    timings.push(`usb-storage plug → enumerated: ${Date.now() - plugged} ms`);
    expect(seen.devices).toContainEqual(expect.objectContaining({ id: '46f4:0001', serial: 'CAM-0001', classes: [8] }));
    const mount = await waitLine<MountLine>(vm, 'MOUNT', (m) => m.serial === 'CAM-0001', 20_000, from);
    timings.push(`usb-storage plug → vfat mounted: ${Date.now() - plugged} ms`);
    expect(mount.files).toEqual(['DCIM/100BODY/REC0001.MP4']);
    // 60-persistent-storage ran: udev named the disk after its USB serial.
    expect(mount.byId.some((n) => n.startsWith('usb-') && n.includes('CAM-0001'))).toBe(true);

    // usb-mtp
    from = vm.serial.length;
    plugged = Date.now();
    await vm.plugMtp({ id: 'mtp1', rootdir: mtpRoot, serial: 'MTP-0002' });
    const mtp = await waitLine<EventLine>(
      vm,
      'EVENT',
      (e) => e.type === 'connect' && e.serial === 'MTP-0002',
      20_000,
      from,
    );
    timings.push(`usb-mtp plug → connect event: ${Date.now() - plugged} ms`);
    expect(mtp).toMatchObject({ id: '46f4:0004', classes: [6] });
    const both = await waitLine<EnumLine>(vm, 'ENUM', (e) => e.devices.length === 2, 20_000, from);
    expect(both.devices.map((d) => d.serial).sort()).toEqual(['CAM-0001', 'MTP-0002']);
    expect(new Set(both.devices.map((d) => `${d.bus}/${d.ports.join('.')}`)).size).toBe(2);

    const info = await vm.usbInfo();
    expect(info).toMatch(/ID: cam1/);
    expect(info).toMatch(/ID: mtp1/);

    // unplug both
    from = vm.serial.length;
    plugged = Date.now();
    await vm.unplug('cam1');
    await vm.unplug('mtp1');
    timings.push(`unplug both (QMP): ${Date.now() - plugged} ms`);
    await waitLine<EventLine>(vm, 'EVENT', (e) => e.type === 'disconnect' && e.id === '46f4:0001', 20_000, from);
    await waitLine<EventLine>(vm, 'EVENT', (e) => e.type === 'disconnect' && e.id === '46f4:0004', 20_000, from);
    await waitLine<EnumLine>(vm, 'ENUM', (e) => e.devices.length === 0, 20_000, from);
    await waitLine<{ serial: string }>(vm, 'BLOCK-GONE', (b) => b.serial === 'CAM-0001', 20_000, from);
    timings.push(`unplug → disconnects, empty enumeration, disk gone: ${Date.now() - plugged} ms`);
    expect(await vm.usbInfo()).not.toMatch(/ID: (cam1|mtp1)/);
    expect(lines(vm, 'ERROR')).toEqual([]);

    // The guest mounted the image read-write; after unplug the host reads it whole again.
    expect((await readFatImage(image, 'DCIM/100BODY/REC0001.MP4'))?.equals(footage)).toBe(true);
    expect(await readFatImage(image, 'DCIM/100BODY/NOPE.MP4')).toBeNull();
  }, 150_000);

  it('without udev, enumeration alone sees a camera, and the guest exit code comes back', async () => {
    const dataDir = path.join(work, 'plain-data');
    const image = await makeFatImage({
      path: path.join(work, 'cam2.img'),
      sizeMb: 40,
      files: [{ path: 'DCIM/100BODY/REC0009.MP4', data: randomBytes(4096) }],
    });

    const spawned = Date.now();
    vm = await startVm({ dataDir, script: GUEST_SCRIPT, udev: false });
    await vm.waitForSerial(/^\[guest\] READY /m, 60_000);
    timings.push(`no udev: boot → node-usb ready: ${Date.now() - spawned} ms`);
    expect(vm.serial).toMatch(/^dockd-init: udev off$/m);

    const from = vm.serial.length;
    const plugged = Date.now();
    await vm.plugStorage({ id: 'cam2', image, serial: 'CAM-0002', port: '3' });
    const seen = await waitLine<EnumLine>(
      vm,
      'ENUM',
      (e) => e.devices.some((d) => d.serial === 'CAM-0002'),
      20_000,
      from,
    );
    timings.push(`no udev: plug → enumerated: ${Date.now() - plugged} ms`);
    expect(seen.devices).toContainEqual(expect.objectContaining({ id: '46f4:0001', classes: [8], ports: [3] }));
    // The kernel alone still makes the disk and its /dev node (devtmpfs).
    const mount = await waitLine<MountLine>(vm, 'MOUNT', (m) => m.serial === 'CAM-0002', 20_000, from);
    expect(mount.files).toEqual(['DCIM/100BODY/REC0009.MP4']);
    expect(mount.byId).toEqual([]);
    // node-usb listens for udev's messages, not the kernel's: no event without udevd.
    expect(lines(vm, 'EVENT')).toEqual([]);

    writeFileSync(path.join(dataDir, 'stop'), '');
    expect(await vm.exitCode(30_000)).toBe(7);
    expect(vm.serial).toMatch(/^dockd-init: exit 7 /m);
  }, 120_000);

  it('boots once more when QEMU itself dies of a signal before the guest prints, and only then', async () => {
    // A QEMU that dies of SIGSEGV the first time it is started, as qemu-system-x86_64 once did in CI.
    const marker = path.join(work, 'crashed-once');
    const crashing = path.join(work, 'qemu-crashing-once');
    writeFileSync(
      crashing,
      `#!/bin/sh\nif [ ! -e ${marker} ]; then : > ${marker}; kill -SEGV $$; fi\nexec qemu-system-x86_64 "$@"\n`,
      { mode: 0o755 },
    );
    vm = await startVm({
      dataDir: path.join(work, 'crash-data'),
      script: '#!/bin/sh\nexit 5\n',
      udev: false,
      qemu: crashing,
    });
    expect(existsSync(marker)).toBe(true);
    expect(await vm.exitCode(60_000)).toBe(5);

    // A QEMU that always dies is not retried for ever: the error says what happened.
    const always = path.join(work, 'qemu-crashing');
    writeFileSync(always, '#!/bin/sh\nkill -SEGV $$\n', { mode: 0o755 });
    await expect(
      startVm({ dataDir: path.join(work, 'crash-data-2'), script: '#!/bin/sh\nexit 5\n', udev: false, qemu: always }),
    ).rejects.toThrow(/QEMU died of SIGSEGV before the guest printed anything/);
  }, 120_000);
});
