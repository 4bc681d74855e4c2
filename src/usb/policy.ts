/**
 * Which USB devices dockd may touch, and which dock slot a port is. Pure: no I/O, so the policy
 * is tested on recorded descriptors alone.
 *
 * The default is deliberately narrow. A dock PC also has keyboards, hubs and, sooner or later, a
 * USB stick someone plugs in to copy a report: offloading means deleting from the device, so a
 * mass-storage device is only ever touched when an admin allowed it by VID:PID or by class.
 */

export const STILL_IMAGE_CLASS = 0x06;
export const MASS_STORAGE_CLASS = 0x08;

export interface UsbInterfaceDescriptor {
  number: number;
  class: number;
  subclass: number;
  protocol: number;
}

/** What the policy looks at; a DeviceInfo and a bus snapshot both fit. */
export interface UsbDescriptor {
  vendorId?: number;
  productId?: number;
  interfaces?: UsbInterfaceDescriptor[];
}

export type AllowRule =
  { kind: 'id'; vendorId: number; productId: number; text: string } | { kind: 'class'; cls: number; text: string };

export interface AllowList {
  rules: AllowRule[];
  /** Entries that are neither "VID:PID" nor "class:NN"; they allow nothing. */
  invalid: string[];
  /** True when `usb.allow` was empty: only still-image devices are allowed. */
  isDefault: boolean;
}

export interface Verdict {
  allowed: boolean;
  reason: string;
}

const VID_PID = /^([0-9a-f]{4}):([0-9a-f]{4})$/i;
const CLASS = /^class:(?:0x)?([0-9a-f]{1,2})$/i;

export function parseVidPid(text: string): { vendorId: number; productId: number } | null {
  const m = VID_PID.exec(text.trim());
  return m ? { vendorId: parseInt(m[1]!, 16), productId: parseInt(m[2]!, 16) } : null;
}

function hex(n: number | undefined, digits: number): string {
  return n === undefined || !Number.isInteger(n) || n < 0 ? '?'.repeat(digits) : n.toString(16).padStart(digits, '0');
}

export function formatVidPid(vendorId: number | undefined, productId: number | undefined): string {
  return `${hex(vendorId, 4)}:${hex(productId, 4)}`;
}

/** `0x08`, the way class codes are written in the USB specifications and in our logs. */
export function classHex(cls: number): string {
  return `0x${hex(cls, 2)}`;
}

/** `08/06/50`: class/subclass/protocol as lsusb users read them. */
export function interfaceTriple(i: UsbInterfaceDescriptor): string {
  return `${hex(i.class, 2)}/${hex(i.subclass, 2)}/${hex(i.protocol, 2)}`;
}

export function compileAllowList(entries: readonly string[]): AllowList {
  const rules: AllowRule[] = [];
  const invalid: string[] = [];
  for (const text of entries) {
    const id = parseVidPid(text);
    const cls = CLASS.exec(text.trim());
    if (id) rules.push({ kind: 'id', ...id, text: formatVidPid(id.vendorId, id.productId) });
    else if (cls)
      rules.push({ kind: 'class', cls: parseInt(cls[1]!, 16), text: `class:${hex(parseInt(cls[1]!, 16), 2)}` });
    else invalid.push(text);
  }
  return { rules, invalid, isDefault: entries.length === 0 };
}

function hasClass(device: UsbDescriptor, cls: number): boolean {
  return (device.interfaces ?? []).some((i) => i.class === cls);
}

export function allowVerdict(device: UsbDescriptor, list: AllowList): Verdict {
  if (list.isDefault) {
    if (hasClass(device, STILL_IMAGE_CLASS))
      return {
        allowed: true,
        reason: `still-image interface (class ${classHex(STILL_IMAGE_CLASS)}), allowed by default`,
      };
    if (hasClass(device, MASS_STORAGE_CLASS)) {
      return {
        allowed: false,
        reason: `mass storage (class ${classHex(MASS_STORAGE_CLASS)}) is never offloaded unless usb.allow names it`,
      };
    }
    if (!device.interfaces?.length)
      return { allowed: false, reason: 'interfaces unknown; by default only still-image devices are allowed' };
    return {
      allowed: false,
      reason: `not a still-image device (class ${classHex(STILL_IMAGE_CLASS)}), the only kind allowed by default`,
    };
  }
  for (const rule of list.rules) {
    if (rule.kind === 'id' && rule.vendorId === device.vendorId && rule.productId === device.productId)
      return { allowed: true, reason: `usb.allow "${rule.text}"` };
    if (rule.kind === 'class' && hasClass(device, rule.cls))
      return { allowed: true, reason: `usb.allow "${rule.text}"` };
  }
  return { allowed: false, reason: 'not in usb.allow' };
}

/** The dock slot of a port: its name in `usb.slots`, else the port path itself. */
export function slotFor(portPath: string, slots: Readonly<Record<string, string>>): string {
  return Object.hasOwn(slots, portPath) ? slots[portPath]! : portPath;
}
