/**
 * Per-device quirks of PTP/MTP stacks, by USB VID:PID, in the spirit of libmtp's device flags
 * and libgphoto2's ptp2 quirk bits. The driver copes with most quirks by itself (a refused
 * GetDeviceInfo falls back to asking inside the session, a refused DeleteObject stops further
 * deletes); a row here makes it take the working path at once instead of learning it again on
 * every docking. docs/ptp-quirks.md explains each flag for admins.
 *
 * Every flag of a row carries a one-line reason and where it was seen, so a row can be checked
 * against the device it names and dropped when the device's firmware is fixed.
 */
import { Op } from './constants.js';

export interface PtpQuirkFlags {
  /** Ask GetDeviceInfo only after OpenSession, inside the session. */
  deviceInfoInSession?: boolean;
  /** Wait this long after OpenSession before the next command. */
  openSessionDelayMs?: number;
  /** List each storage with one GetObjectHandles (parent 0: every object), not folder by folder. */
  listWholeStorage?: boolean;
  /** Never send DeleteObject, whatever DeviceInfo lists. */
  noDelete?: boolean;
  /** Never send GetPartialObject or GetPartialObject64: an interrupted copy starts over. */
  noPartialObject?: boolean;
  /** Never send GetPartialObject64 (the 32-bit GetPartialObject stays usable). */
  noPartialObject64?: boolean;
}

export type PtpQuirkName = keyof PtpQuirkFlags;

export interface PtpQuirkReason {
  /** Why the flag is set, in one line. */
  why: string;
  /** The device, firmware or software where it was seen. */
  seen: string;
}

export interface PtpQuirkRow {
  vendorId: number;
  productId: number;
  /** What the VID:PID usually is, for people reading the table. */
  device: string;
  flags: PtpQuirkFlags;
  reasons: { [K in PtpQuirkName]?: PtpQuirkReason };
}

export const PTP_QUIRKS: readonly PtpQuirkRow[] = [
  {
    vendorId: 0x1d6b,
    productId: 0x0100,
    device: 'Linux USB gadget "PTP Gadget" id, the default of uMTP-Responder (umtprd)',
    flags: { deviceInfoInSession: true },
    reasons: {
      deviceInfoInSession: {
        why: 'answers GetDeviceInfo outside a session with SessionNotOpen (0x2003): its object database exists only after OpenSession',
        seen: 'uMTP-Responder as packaged by a current Linux distribution, running as a USB gadget (issue 29)',
      },
    },
  },
];

function vidPid(vendorId: number, productId: number): string {
  return `${vendorId.toString(16).padStart(4, '0')}:${productId.toString(16).padStart(4, '0')}`;
}

export function quirkKey(vendorId: number | undefined, productId: number | undefined): string | null {
  return vendorId === undefined || productId === undefined ? null : vidPid(vendorId, productId);
}

/** The table's row for a device, or null. */
export function quirksFor(
  vendorId: number | undefined,
  productId: number | undefined,
  table: readonly PtpQuirkRow[] = PTP_QUIRKS,
): PtpQuirkRow | null {
  return table.find((r) => r.vendorId === vendorId && r.productId === productId) ?? null;
}

/** The set flags of a row, for logs: `['deviceInfoInSession', 'openSessionDelayMs=500']`. */
export function describeQuirks(flags: PtpQuirkFlags): string[] {
  return Object.entries(flags)
    .filter(([, v]) => v !== undefined && v !== false)
    .map(([k, v]) => (v === true ? k : `${k}=${String(v)}`));
}

/** The operations the driver may use: what DeviceInfo lists minus what the quirks forbid. */
export function usableOperations(listed: readonly number[], flags: PtpQuirkFlags): number[] {
  const banned = new Set<number>();
  if (flags.noDelete) banned.add(Op.DeleteObject);
  if (flags.noPartialObject) {
    banned.add(Op.GetPartialObject);
    banned.add(Op.GetPartialObject64);
  }
  if (flags.noPartialObject64) banned.add(Op.GetPartialObject64);
  return listed.filter((op) => !banned.has(op));
}
