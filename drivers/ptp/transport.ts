/**
 * What the PTP session needs from a USB link to a still-image interface. The real one is
 * ./usb-transport.ts over node-usb; tests use an in-memory responder with the same contract.
 *
 * Rules every transport keeps:
 * - Failures reject with a DriverError carrying one of the TransportCode codes below, so the
 *   session can tell a timeout (cancel and recover) from a stall (clear it) from a device that
 *   is gone (stop). Anything else is treated as a transient `usb-io` error.
 * - `bulkIn` behaves like one USB bulk transfer: it resolves with up to `maxLength` bytes and
 *   ends early at a short packet, so a result shorter than asked for ends a data phase. Callers
 *   ask for multiples of `maxPacketSize`; a device may otherwise overrun the buffer.
 * - One transfer at a time per endpoint: the session never overlaps two `bulkIn` calls.
 */
export type UsbDirection = 'in' | 'out';

export const TransportCode = {
  /** Nothing arrived within the timeout; the transfer was cancelled and its bytes are lost. */
  Timeout: 'usb-timeout',
  /** The endpoint halted: the device refuses or cancels; clear the halt before going on. */
  Stall: 'usb-stall',
  /** The device left the bus. */
  Gone: 'usb-gone',
  /** Any other transfer failure (babble, CRC, a fault the host controller reports). */
  Io: 'usb-io',
} as const;

export interface PtpTransport {
  /** wMaxPacketSize of the bulk-in endpoint. */
  readonly maxPacketSize: number;
  bulkOut(data: Uint8Array): Promise<void>;
  bulkIn(maxLength: number, timeoutMs: number): Promise<Uint8Array>;
  /** The event pipe; absent when the device has none (or the transport does not read it). */
  interruptIn?(maxLength: number, timeoutMs: number): Promise<Uint8Array>;
  /** A class request to the still-image interface, device to host (bmRequestType 0xA1). */
  controlIn(request: number, value: number, length: number): Promise<Uint8Array>;
  /** A class request to the still-image interface, host to device (bmRequestType 0x21). */
  controlOut(request: number, value: number, data: Uint8Array): Promise<void>;
  clearHalt(direction: UsbDirection): Promise<void>;
  close(): Promise<void>;
}
