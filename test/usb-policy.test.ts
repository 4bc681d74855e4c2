import { describe, expect, it } from 'vitest';
import type { CameraDriver, DeviceInfo } from '../drivers/types.js';
import { createMassStorageDriver } from '../drivers/mass-storage/index.js';
import { simulatedDriver } from '../drivers/simulated/index.js';
import { chooseDriver, selectDriver } from '../src/dock/drivers.js';
import { allowVerdict, compileAllowList, formatVidPid, parseVidPid, slotFor } from '../src/usb/policy.js';
import { recorded, recordedInfo, type RecordedName } from './support/usb.js';

const ALL: RecordedName[] = [
  'qemu-usb-storage',
  'qemu-usb-mtp',
  'ptp-still-camera',
  'body-camera-vendor-mtp',
  'usb-stick',
  'keyboard',
  'hub',
];

function allowed(entries: string[]): RecordedName[] {
  const list = compileAllowList(entries);
  return ALL.filter((n) => allowVerdict(recorded(n), list).allowed);
}

/** Stands in for the PTP driver: claims still-image interfaces, as that driver's own table does. */
const ptpStandIn: CameraDriver = {
  name: 'ptp',
  matches: (d) => (d.bus === 'usb' && d.interfaces?.some((i) => i.class === 0x06) ? 50 : 0),
  open: () => Promise.reject(new Error('not in this test')),
};

describe('usb allow policy', () => {
  it('allows only still-image devices when usb.allow is empty: never a stick, never the QEMU disk', () => {
    expect(allowed([])).toEqual(['qemu-usb-mtp', 'ptp-still-camera']);
    expect(allowVerdict(recorded('usb-stick'), compileAllowList([])).reason).toMatch(
      /mass storage \(class 0x08\) is never offloaded unless usb\.allow names it/,
    );
    expect(allowVerdict(recorded('keyboard'), compileAllowList([])).reason).toMatch(/not a still-image device/);
  });

  it('takes VID:PID entries in either case, and the list then replaces the default', () => {
    expect(allowed(['46F4:0001'])).toEqual(['qemu-usb-storage']);
    expect(allowVerdict(recorded('qemu-usb-storage'), compileAllowList(['46f4:0001'])).reason).toBe(
      'usb.allow "46f4:0001"',
    );
    expect(allowed(['46f4:0001', 'class:06'])).toEqual(['qemu-usb-storage', 'qemu-usb-mtp', 'ptp-still-camera']);
  });

  it('takes class entries, which match any interface', () => {
    expect(allowed(['class:08'])).toEqual(['qemu-usb-storage', 'usb-stick']);
    expect(allowed(['class:0x06'])).toEqual(['qemu-usb-mtp', 'ptp-still-camera']);
    expect(allowed(['class:ff', '2e1a:0102'])).toEqual(['body-camera-vendor-mtp']);
  });

  it('reports entries it cannot read and lets them allow nothing', () => {
    const list = compileAllowList(['46f4-0001', 'class:mass', '46f4:0001']);
    expect(list.invalid).toEqual(['46f4-0001', 'class:mass']);
    expect(allowed(['46f4-0001'])).toEqual([]);
  });

  it('refuses a device whose configuration could not be read unless its VID:PID is allowed', () => {
    const blind = recorded('qemu-usb-mtp', { interfaces: [] });
    expect(allowVerdict(blind, compileAllowList([]))).toEqual({
      allowed: false,
      reason: expect.stringMatching(/interfaces unknown/),
    });
    expect(allowVerdict(blind, compileAllowList(['46f4:0004'])).allowed).toBe(true);
  });

  it('names slots from usb.slots and falls back to the port path', () => {
    expect(slotFor('1-2.3', { '1-2.3': 'A', '1-2.4': 'B' })).toBe('A');
    expect(slotFor('1-2.5', { '1-2.3': 'A' })).toBe('1-2.5');
    expect(slotFor('constructor', {})).toBe('constructor');
  });

  it('parses and prints VID:PID', () => {
    expect(parseVidPid('054C:0994')).toEqual({ vendorId: 0x054c, productId: 0x0994 });
    expect(parseVidPid('54c:994')).toBeNull();
    expect(formatVidPid(0x46f4, 1)).toBe('46f4:0001');
    expect(formatVidPid(undefined, 1)).toBe('????:0001');
  });
});

describe('driver selection', () => {
  const drivers = [simulatedDriver, createMassStorageDriver(), ptpStandIn];

  it('gives mass storage to mass-storage and still-image devices to ptp, saying why', () => {
    expect(chooseDriver(drivers, recordedInfo('qemu-usb-storage'))).toEqual({
      driver: drivers[1],
      reason: 'interface class 0x08 (SCSI, bulk-only transport)',
    });
    expect(chooseDriver(drivers, recordedInfo('usb-stick')).driver?.name).toBe('mass-storage');
    expect(chooseDriver(drivers, recordedInfo('qemu-usb-mtp')).driver?.name).toBe('ptp');
    expect(chooseDriver(drivers, recordedInfo('ptp-still-camera'))).toMatchObject({ reason: 'score 50' });
  });

  it('lets a usb.drivers rule win over the scores', () => {
    const rules = { '46F4:0001': 'ptp', '2e1a:0102': 'ptp' };
    expect(chooseDriver(drivers, recordedInfo('qemu-usb-storage'), rules)).toEqual({
      driver: ptpStandIn,
      reason: 'rule 46f4:0001',
    });
    expect(chooseDriver(drivers, recordedInfo('body-camera-vendor-mtp'), rules)).toEqual({
      driver: ptpStandIn,
      reason: 'rule 2e1a:0102',
    });
    expect(chooseDriver(drivers, recordedInfo('body-camera-vendor-mtp')).driver).toBeNull();
  });

  it('picks no driver when a rule names one that is not loaded, rather than guessing', () => {
    const choice = chooseDriver(drivers, recordedInfo('qemu-usb-storage'), { '46f4:0001': 'uvc' });
    expect(choice).toEqual({ driver: null, reason: 'rule 46f4:0001 names driver "uvc", which is not loaded' });
  });

  it('says which classes nothing matched', () => {
    expect(chooseDriver(drivers, recordedInfo('keyboard')).reason).toBe('no driver matches interface class 0x03');
    expect(chooseDriver(drivers, recordedInfo('hub')).driver).toBeNull();
  });

  it('keeps the old two-argument selectDriver for the simulated dock', () => {
    const sim: DeviceInfo = { bus: 'sim', key: 'A', slot: 'A', path: '/tmp/dock/A' };
    expect(selectDriver([simulatedDriver], sim)).toBe(simulatedDriver);
    expect(selectDriver(drivers, sim, { '46f4:0001': 'ptp' })).toBe(simulatedDriver);
    expect(selectDriver([createMassStorageDriver()], sim)).toBeNull();
  });
});
