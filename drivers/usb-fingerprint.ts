/**
 * How a USB driver recognises its devices by their interfaces: a table of class/subclass/protocol
 * triples, best first, each with the score it gives and why, for `dockd usb` and the logs.
 */
import type { DeviceInfo } from './types.js';

export interface Fingerprint {
  class: number;
  subclass?: number;
  protocol?: number;
  score: number;
  why: string;
}

/** The first fingerprint of `table` that one of the device's interfaces matches; null for none. */
export function firstFingerprint(device: DeviceInfo, table: readonly Fingerprint[]): Fingerprint | null {
  const ifaces = device.interfaces ?? [];
  for (const f of table) {
    if (
      ifaces.some(
        (i) =>
          i.class === f.class &&
          (f.subclass === undefined || i.subclass === f.subclass) &&
          (f.protocol === undefined || i.protocol === f.protocol),
      )
    )
      return f;
  }
  return null;
}
