/**
 * The PTP/MTP driver (USB interface class 0x06, still image): cameras that dock as a PTP or
 * MTP responder. It speaks PTP itself over a transport the caller opens, so the same code runs
 * over node-usb (./usb-transport.ts) and over the in-memory responder the tests use.
 */
import { firstFingerprint, type Fingerprint } from '../usb-fingerprint.js';
import {
  DriverError,
  boundString,
  type CameraDriver,
  type CameraIdentity,
  type DeviceInfo,
  type DriverLogger,
} from '../types.js';
import { ACCESS_READ_ONLY_NO_DELETE, Op, Rc, STILL_IMAGE_CLASS } from './constants.js';
import { DatasetReader } from './codec.js';
import { decodeStorageInfo, type PtpDeviceInfo } from './datasets.js';
import { PtpCameraSession } from './camera-session.js';
import { PtpResponseError } from './errors.js';
import {
  describeQuirks,
  quirkKey,
  quirksFor,
  usableOperations,
  type PtpQuirkFlags,
  type PtpQuirkRow,
} from './quirks.js';
import { PtpSession, type PtpSessionOptions } from './session.js';
import { Describer, probeClock, probeSettings, type DescribedSetting } from './device-config.js';
import { PTP_SETTING_PROFILES, settingProfileFor, type PtpSettingProfile } from './setting-profiles.js';
import type { PtpTransport } from './transport.js';

export { PtpCameraSession, handleId, parseHandleId, componentName } from './camera-session.js';
export { PtpSession } from './session.js';
export type { PtpTransport, UsbDirection } from './transport.js';
export { TransportCode } from './transport.js';
export { PtpProtocolError, PtpResponseError } from './errors.js';
export { PTP_QUIRKS, quirksFor, type PtpQuirkFlags, type PtpQuirkRow } from './quirks.js';
export {
  PTP_SETTING_PROFILES,
  settingProfileFor,
  type PtpSettingProfile,
  type PtpSettingSpec,
} from './setting-profiles.js';

/** Best first. Vendor-class MTP devices (class 0xff) score nothing: a `usb.drivers` rule names them. */
export const PTP_FINGERPRINTS: readonly Fingerprint[] = [
  {
    class: STILL_IMAGE_CLASS,
    subclass: 0x01,
    protocol: 0x01,
    score: 60,
    why: 'interface class 0x06/0x01/0x01 (PTP still image)',
  },
  { class: STILL_IMAGE_CLASS, score: 50, why: 'interface class 0x06 (still image)' },
];

export function ptpFingerprintOf(device: DeviceInfo): Fingerprint | null {
  return firstFingerprint(device, PTP_FINGERPRINTS);
}

export interface PtpDriverOptions {
  /** Opens the link to a docked device; rejects with a DriverError when it cannot. */
  openTransport(device: DeviceInfo, log: DriverLogger): Promise<PtpTransport>;
  /** Bulk transfer timeout. Default 10 s. */
  timeoutMs?: number;
  /** Largest bulk-in request, and the read stream's buffer. Default 256 KiB. */
  transferBytes?: number;
  /** Folders deeper than this are skipped. Default 16. */
  maxDepth?: number;
  /** A camera listing more objects than this is refused. Default 200,000. */
  maxObjects?: number;
  /** Tuning for tests: status polling and the wait for stale bytes after a cancel. */
  session?: Pick<PtpSessionOptions, 'statusPolls' | 'statusPollMs' | 'drainTimeoutMs' | 'sleep' | 'maxDatasetBytes'>;
  /** The quirk table; default PTP_QUIRKS. */
  quirks?: readonly PtpQuirkRow[];
  /** Which vendor properties hold each model's settings; default PTP_SETTING_PROFILES. */
  settingProfiles?: readonly PtpSettingProfile[];
}

/** Where GetDeviceInfo was answered: before OpenSession (the spec's way) or inside the session. */
type DeviceInfoPath = 'outside' | 'in-session';

export type PtpDriver = CameraDriver & { explainMatch(device: DeviceInfo): string };

/** "Sony" + "DSC-RX0M2" → "Sony DSC-RX0M2"; a model that already names its maker stays as it is. */
function modelOf(info: PtpDeviceInfo, device: DeviceInfo): string {
  const maker = info.manufacturer.trim();
  const model = info.model.trim() || device.product?.trim() || 'PTP camera';
  return maker && !model.toLowerCase().startsWith(maker.toLowerCase()) ? `${maker} ${model}` : model;
}

/** Deleting is possible when some store lets it; StorageInfo that cannot be read is no reason to refuse. */
async function anyStoreDeletable(session: PtpSession, info: PtpDeviceInfo, log: DriverLogger): Promise<boolean> {
  if (!info.operations.includes(Op.DeleteObject)) return false;
  if (!info.operations.includes(Op.GetStorageInfo)) return true;
  try {
    const { data } = await session.request(Op.GetStorageIDs, [], 'GetStorageIDs');
    const ids = new DatasetReader(data ?? new Uint8Array(0), 'StorageIDs')
      .u32Array('StorageIDs')
      .filter((id) => (id & 0xffff) !== 0);
    if (ids.length === 0) return true;
    for (const id of ids) {
      const res = await session.request(Op.GetStorageInfo, [id], `GetStorageInfo ${id.toString(16)}`);
      if (decodeStorageInfo(res.data ?? new Uint8Array(0)).accessCapability !== ACCESS_READ_ONLY_NO_DELETE) return true;
    }
    return false;
  } catch (err) {
    if (err instanceof DriverError && err.kind === 'deviceGone') throw err;
    log.warn(
      { event: 'ptp.storage_info_failed', error: (err as Error).message },
      'cannot read StorageInfo; assuming recordings can be deleted',
    );
    return true;
  }
}

/**
 * What of the clock and the settings this camera lets dockd change. Learning it must never cost
 * the docking: any failure but the camera leaving means "not configurable".
 */
async function probeConfiguration(
  session: PtpSession,
  info: PtpDeviceInfo,
  profile: PtpSettingProfile | null,
  log: DriverLogger,
): Promise<{ clockSettable: boolean; settings: DescribedSetting[] }> {
  const support = { ops: new Set(info.operations), props: new Set(info.deviceProperties) };
  const describer = new Describer(session, log);
  const clockSettable = await probeClock(session, support, log, describer);
  if (!profile) return { clockSettable, settings: [] };
  const settings = await probeSettings(session, support, profile, log, describer);
  log.info(
    {
      event: 'ptp.settings_profile',
      device: profile.device,
      settings: settings.map((s) => s.name),
      skipped: Object.keys(profile.settings).length - settings.length,
    },
    `settings through the profile for ${profile.device}: ${settings.map((s) => s.name).join(', ') || 'none the camera describes'}`,
  );
  return { clockSettable, settings };
}

export function createPtpDriver(opts: PtpDriverOptions): PtpDriver {
  const transferBytes = opts.transferBytes ?? 256 * 1024;
  // The VID:PIDs that answer GetDeviceInfo only inside a session, learned while the daemon runs,
  // so the next docking of such a camera does not spend a refused transaction (or a timeout).
  const inSession = new Set<string>();

  /**
   * DeviceInfo the way this camera answers it. The spec lets a host ask before OpenSession,
   * but some stacks refuse anything outside a session; asking inside it is always allowed.
   */
  async function readDeviceInfo(
    session: PtpSession,
    device: DeviceInfo,
    flags: PtpQuirkFlags,
    log: DriverLogger,
  ): Promise<{ info: PtpDeviceInfo; path: DeviceInfoPath }> {
    const key = quirkKey(device.vendorId, device.productId);
    const known = flags.deviceInfoInSession ? 'quirk table' : key && inSession.has(key) ? 'an earlier docking' : null;
    if (known) {
      log.info(
        { event: 'ptp.open_path', vidPid: key, path: 'in-session', source: known },
        `asking GetDeviceInfo inside the session, as ${known} says for ${key}`,
      );
    } else {
      let outside: PtpDeviceInfo | null = null;
      try {
        outside = await session.getDeviceInfo();
      } catch (err) {
        if (err instanceof DriverError && err.kind === 'deviceGone') throw err;
        const code = err instanceof DriverError ? err.code : 'error';
        log.warn(
          { event: 'ptp.device_info_refused', operation: 'GetDeviceInfo', code, error: (err as Error).message },
          `camera refused GetDeviceInfo outside a session (${(err as Error).message}); asking again inside one`,
        );
      }
      if (outside) {
        await session.open();
        return { info: outside, path: 'outside' };
      }
    }
    await session.open();
    let info: PtpDeviceInfo;
    try {
      info = await session.getDeviceInfo();
    } catch (err) {
      // Refused even inside the session it just opened: the next attempt would go the same way.
      if (err instanceof PtpResponseError && err.responseCode === Rc.SessionNotOpen) {
        throw new DriverError('permanent', err.code, `${err.message}, even right after OpenSession`, { cause: err });
      }
      throw err;
    }
    if (!known && key) {
      inSession.add(key);
      log.info(
        { event: 'ptp.open_path', vidPid: key, path: 'in-session', source: 'fallback' },
        `GetDeviceInfo works inside the session; ${key} is asked that way from now on`,
      );
    }
    return { info, path: 'in-session' };
  }

  return {
    name: 'ptp',
    matches: (device) => ptpFingerprintOf(device)?.score ?? 0,
    explainMatch: (device) => {
      const fingerprint = ptpFingerprintOf(device);
      if (!fingerprint) return 'no still-image interface';
      const row = quirksFor(device.vendorId, device.productId, opts.quirks);
      return row ? `${fingerprint.why}; quirks: ${describeQuirks(row.flags).join(', ')}` : fingerprint.why;
    },
    async open(device: DeviceInfo, parentLog: DriverLogger) {
      const log = parentLog.child({ mod: 'ptp' });
      const row = quirksFor(device.vendorId, device.productId, opts.quirks);
      const flags = row?.flags ?? {};
      if (row)
        log.info(
          {
            event: 'ptp.quirks',
            vidPid: quirkKey(row.vendorId, row.productId),
            device: row.device,
            flags: describeQuirks(flags),
          },
          `quirks for ${row.device}: ${describeQuirks(flags).join(', ')}`,
        );
      const transport = await opts.openTransport(device, log);
      const session = new PtpSession(transport, {
        ...opts.session,
        log,
        timeoutMs: opts.timeoutMs,
        transferBytes,
        openDelayMs: flags.openSessionDelayMs,
      });
      try {
        const { info: listed, path } = await readDeviceInfo(session, device, flags, log);
        const info = { ...listed, operations: usableOperations(listed.operations, flags) };
        // QEMU's usb-mtp (and some cameras) report one fixed PTP serial for every unit; the USB
        // serial string tells units apart, so it wins when there is one.
        const serial = device.serialNumber?.trim() || info.serialNumber.trim();
        if (!serial)
          throw new DriverError(
            'permanent',
            'no-serial',
            'camera reports no serial number; without one dockd cannot tell cameras apart',
          );
        const identity: CameraIdentity = {
          serial: boundString(serial),
          model: boundString(modelOf(info, device)),
          firmware: boundString(info.deviceVersion.trim() || 'unknown'),
        };
        const deletable = await anyStoreDeletable(session, info, log);
        const profile = settingProfileFor(
          { vendorId: device.vendorId, productId: device.productId, model: info.model },
          opts.settingProfiles ?? PTP_SETTING_PROFILES,
        );
        const config = await probeConfiguration(session, info, profile, log);
        log.info(
          {
            event: 'ptp.opened',
            model: identity.model,
            firmware: identity.firmware,
            operations: info.operations.length,
            deletable,
            vendorExtension: info.vendorExtensionId,
            deviceInfo: path,
          },
          `PTP session open with ${identity.model}`,
        );
        return new PtpCameraSession({
          session,
          transport,
          deviceInfo: info,
          identity,
          deletable,
          log,
          maxDepth: opts.maxDepth ?? 16,
          maxObjects: opts.maxObjects ?? 200_000,
          readBufferBytes: transferBytes,
          listWholeStorage: flags.listWholeStorage === true,
          clockSettable: config.clockSettable,
          settings: config.settings,
          settingsDisturbRecordings: profile?.disturbsRecordings === true,
        });
      } catch (err) {
        await session.close().catch(() => undefined);
        await transport.close().catch(() => undefined);
        throw err;
      }
    },
  };
}
