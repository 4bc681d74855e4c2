import { describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { defaultConfig, type Config } from '../src/config.js';
import { registerUsbCommand, renderUsbReport, runUsbCommand, usbReport, type UsbReport } from '../src/cli/usb.js';
import { ProblemError } from '../src/cli/context.js';
import { FakeUsbBackend, recorded } from './support/usb.js';

function sysfs(withUsb: boolean): string {
  const root = mkdtempSync(path.join(os.tmpdir(), 'dockd-usbcli-'));
  if (withUsb) mkdirSync(path.join(root, 'bus', 'usb'), { recursive: true });
  return root;
}

function config(usb: Partial<Config['usb']> = {}): Config {
  const cfg = defaultConfig();
  cfg.usb = { ...cfg.usb, ...usb };
  return cfg;
}

function dock(): FakeUsbBackend {
  const b = new FakeUsbBackend();
  b.plug(recorded('usb-stick'));
  b.plug(recorded('qemu-usb-storage'));
  b.plug(recorded('qemu-usb-mtp'));
  b.plug(recorded('keyboard'));
  b.plug(recorded('qemu-usb-mtp', { portPath: '1-10', serialNumber: 'bad\u001b[2Jserial' }));
  return b;
}

describe('dockd usb', () => {
  it('reports each device with slot, allow verdict and driver choice, and why', async () => {
    const cfg = config({
      allow: ['46f4:0001', 'class:06', 'nonsense'],
      slots: { '1-1': 'Bay 1' },
      drivers: { '46f4:0004': 'ptp' },
    });
    const r = await usbReport(cfg, { backend: dock(), sysfsRoot: sysfs(true) });
    expect(r.available).toBe(true);
    expect(r.invalidAllowEntries).toEqual(['nonsense']);
    expect(r.devices.map((d) => d.portPath)).toEqual(['1-1', '1-2', '1-4', '1-10', '2-1']);
    expect(r.devices[0]).toEqual({
      portPath: '1-1',
      busNumber: 1,
      slot: 'Bay 1',
      vidPid: '46f4:0001',
      manufacturer: 'QEMU',
      product: 'QEMU USB HARDDRIVE',
      serialNumber: 'CAM-0001',
      interfaces: ['08/06/50'],
      allowed: true,
      allowReason: 'usb.allow "46f4:0001"',
      driver: 'mass-storage',
      driverReason: 'interface class 0x08 (SCSI, bulk-only transport)',
    });
    // An explicit usb.drivers rule wins over the interface class, and says so.
    expect(r.devices[1]).toMatchObject({ allowed: true, driver: 'ptp', driverReason: 'rule 46f4:0004' });
    expect(r.devices[4]).toMatchObject({
      vidPid: '0781:5581',
      allowed: false,
      allowReason: 'not in usb.allow',
      driver: 'mass-storage',
    });
  });

  it('names the mass-storage profile a camera would be configured with, and how it was matched', async () => {
    const cfg = config({ allow: ['46f4:0001'] });
    cfg.usb.massStorage = { ...cfg.usb.massStorage, profiles: { '46F4:0001': 'example-bwc-m' } };
    const r = await usbReport(cfg, { backend: dock(), sysfsRoot: sysfs(true) });
    expect(r.devices[0]).toMatchObject({
      driver: 'mass-storage',
      driverReason: 'interface class 0x08 (SCSI, bulk-only transport); profile example-bwc-m (config 46f4:0001)',
    });
    expect(renderUsbReport(r)).toContain('profile example-bwc-m (config 46f4:0001)');
    // Without the entry the QEMU disk matches no row of the table: nothing is claimed.
    const plain = await usbReport(config({ allow: ['46f4:0001'] }), { backend: dock(), sysfsRoot: sysfs(true) });
    expect(plain.devices[0]!.driverReason).toBe('interface class 0x08 (SCSI, bulk-only transport)');
  });

  it('renders a block per device that an admin can read, with camera strings escaped', async () => {
    const r = await usbReport(config(), { backend: dock(), sysfsRoot: sysfs(true) });
    const text = renderUsbReport(r);
    expect(text).toContain(
      [
        '46f4:0001  QEMU QEMU USB HARDDRIVE',
        '  port     1-1',
        '  serial   CAM-0001',
        '  classes  08/06/50',
        '  allowed  no: mass storage (class 0x08) is never offloaded unless usb.allow names it',
        '  driver   mass-storage: interface class 0x08 (SCSI, bulk-only transport) (not used: the device is not allowed)',
      ].join('\n'),
    );
    expect(text).toContain('  allowed  yes: still-image interface (class 0x06), allowed by default');
    expect(text).toContain('  driver   ptp: interface class 0x06/0x01/0x01 (PTP still image)');
    expect(text).toContain(
      '  driver   none: no driver matches interface class 0x03 (not used: the device is not allowed)',
    );
    expect(text).toContain('bad\\x1b[2Jserial');
    expect(text).not.toContain('\u001b');
  });

  it('says so and succeeds on a machine without USB', async () => {
    const out: string[] = [];
    await runUsbCommand(config(), {}, { backend: dock(), sysfsRoot: sysfs(false) }, (s) => out.push(s));
    expect(out.join('')).toMatch(
      /^this machine has no USB bus \(.*\/bus\/usb is missing\); dockd runs without USB here\.\n$/,
    );
    const json: string[] = [];
    await runUsbCommand(config({ enabled: false }), { json: true }, { sysfsRoot: sysfs(false) }, (s) => json.push(s));
    expect(JSON.parse(json.join('')) as UsbReport).toMatchObject({ available: false, enabled: false, devices: [] });
  });

  it('prints JSON with --json and fails as a problem when enumeration fails', async () => {
    const out: string[] = [];
    await runUsbCommand(config(), { json: true }, { backend: dock(), sysfsRoot: sysfs(true) }, (s) => out.push(s));
    expect((JSON.parse(out.join('')) as UsbReport).devices).toHaveLength(5);
    const broken = dock();
    broken.listError = new Error('getDevices error: Permission denied');
    await expect(usbReport(config(), { backend: broken, sysfsRoot: sysfs(true) })).rejects.toThrow(ProblemError);
  });

  it('registers `usb [--json]` on the program', () => {
    const program = new Command();
    registerUsbCommand(program, () => ({}));
    const cmd = program.commands.find((c) => c.name() === 'usb');
    expect(cmd?.options.map((o) => o.long)).toEqual(['--json']);
  });
});
