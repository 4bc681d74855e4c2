/**
 * `dockd usb [--json]`: the USB devices this machine has, enumerated directly (the daemon need
 * not run), with what dockd would do with each and why: allowed or not, slot, driver.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import type { CameraDriver } from '../../drivers/types.js';
import type { Config } from '../config.js';
import { deviceInfoOf } from '../usb/bus.js';
import { chooseDriver } from '../dock/drivers.js';
import type { UsbBackend, UsbDeviceSnapshot } from '../usb/backend.js';
import { usbDrivers } from '../dock/drivers.js';
import { createNodeUsbBackend } from '../usb/node-usb.js';
import { allowVerdict, compileAllowList, formatVidPid, interfaceTriple } from '../usb/policy.js';
import { ProblemError, resolveConfig, type GlobalOptions } from './context.js';
import { printable } from '../lib/format.js';

export interface UsbDeviceReport {
  portPath: string;
  busNumber: number | null;
  slot: string;
  vidPid: string;
  manufacturer: string | null;
  product: string | null;
  serialNumber: string | null;
  /** class/subclass/protocol of each interface, hex: "08/06/50". */
  interfaces: string[];
  allowed: boolean;
  allowReason: string;
  driver: string | null;
  driverReason: string;
}

export interface UsbReport {
  available: boolean;
  /** usb.enabled: whether the daemon watches USB at all. */
  enabled: boolean;
  message: string | null;
  invalidAllowEntries: string[];
  devices: UsbDeviceReport[];
}

export interface UsbReportDeps {
  backend?: UsbBackend;
  sysfsRoot?: string;
  drivers?: CameraDriver[];
}

function byPort(a: UsbDeviceSnapshot, b: UsbDeviceSnapshot): number {
  return (a.busNumber ?? 0) - (b.busNumber ?? 0) || a.portPath.localeCompare(b.portPath, 'en', { numeric: true });
}

export async function usbReport(cfg: Pick<Config, 'dataDir' | 'usb'>, deps: UsbReportDeps = {}): Promise<UsbReport> {
  const sysfsRoot = deps.sysfsRoot ?? '/sys';
  const allow = compileAllowList(cfg.usb.allow);
  const base = { enabled: cfg.usb.enabled, invalidAllowEntries: allow.invalid };
  const usbDir = path.join(sysfsRoot, 'bus', 'usb');
  if (!existsSync(usbDir))
    return { ...base, available: false, message: `this machine has no USB bus (${usbDir} is missing)`, devices: [] };
  const backend = deps.backend ?? createNodeUsbBackend({ sysfsRoot });
  let list: UsbDeviceSnapshot[];
  try {
    list = await backend.list();
  } catch (err) {
    throw new ProblemError(`cannot enumerate USB devices: ${(err as Error).message}`);
  }
  const drivers = deps.drivers ?? usbDrivers(cfg);
  const devices = [...list].sort(byPort).map((snap): UsbDeviceReport => {
    const info = deviceInfoOf(snap, cfg.usb.slots);
    const verdict = allowVerdict(snap, allow);
    const choice = chooseDriver(drivers, info, cfg.usb.drivers);
    return {
      portPath: snap.portPath,
      busNumber: snap.busNumber ?? null,
      slot: info.slot,
      vidPid: formatVidPid(snap.vendorId, snap.productId),
      manufacturer: snap.manufacturer ?? null,
      product: snap.product ?? null,
      serialNumber: snap.serialNumber ?? null,
      interfaces: snap.interfaces.map(interfaceTriple),
      allowed: verdict.allowed,
      allowReason: verdict.reason,
      driver: choice.driver?.name ?? null,
      driverReason: choice.reason,
    };
  });
  return { ...base, available: true, message: null, devices };
}

export function renderUsbReport(r: UsbReport): string {
  const out: string[] = [];
  if (!r.enabled) out.push('usb.enabled is false: the daemon does not watch USB.');
  if (r.invalidAllowEntries.length)
    out.push(
      `usb.allow entries that allow nothing (neither "VID:PID" nor "class:NN"): ${r.invalidAllowEntries.map((e) => printable(e)).join(', ')}`,
    );
  if (!r.available) {
    out.push(`${r.message ?? 'no USB'}; dockd runs without USB here.`);
    return out.join('\n');
  }
  if (!r.devices.length) out.push('no USB devices found');
  for (const d of r.devices) {
    const name =
      [d.manufacturer, d.product]
        .filter((s): s is string => !!s)
        .map(printable)
        .join(' ') || '(no name)';
    if (out.length) out.push('');
    out.push(`${d.vidPid}  ${name}`);
    out.push(`  port     ${d.portPath}${d.slot !== d.portPath ? `  (slot ${printable(d.slot)})` : ''}`);
    out.push(`  serial   ${printable(d.serialNumber)}`);
    out.push(`  classes  ${d.interfaces.join(' ') || 'unknown'}`);
    out.push(`  allowed  ${d.allowed ? 'yes' : 'no'}: ${d.allowReason}`);
    out.push(
      `  driver   ${d.driver ?? 'none'}: ${d.driverReason}${d.allowed ? '' : ' (not used: the device is not allowed)'}`,
    );
  }
  return out.join('\n');
}

export async function runUsbCommand(
  cfg: Pick<Config, 'dataDir' | 'usb'>,
  o: { json?: boolean },
  deps: UsbReportDeps = {},
  write: (s: string) => void = (s) => process.stdout.write(s),
): Promise<void> {
  const report = await usbReport(cfg, deps);
  write(o.json ? JSON.stringify(report, null, 2) + '\n' : renderUsbReport(report) + '\n');
}

export function registerUsbCommand(program: Command, g: () => GlobalOptions): void {
  program
    .command('usb')
    .description(
      'list the USB devices this machine sees and what dockd would do with each (allowed, slot, driver, why)',
    )
    .option('--json', 'machine-readable output')
    .action(async (o: { json?: boolean }) => {
      await runUsbCommand(resolveConfig(g()), o);
    });
}
