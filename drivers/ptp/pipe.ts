/**
 * The bulk pipes of one still-image interface as the PTP session sees them: transfers with
 * errors translated, the bytes of a transfer that belong to the next container kept for it,
 * and the recovery the PTP USB class prescribes after a transaction went wrong.
 */
import { DriverError, type DriverLogger } from '../types.js';
import { CANCEL_CODE, ClassRequest, ContainerType, Rc } from './constants.js';
import { decodeHeader, type ContainerHeader } from './codec.js';
import { PtpProtocolError } from './errors.js';
import { TransportCode, type PtpTransport } from './transport.js';

export interface PipeOptions {
  log: DriverLogger;
  /** How long one bulk transfer waits for the camera. */
  timeoutMs: number;
  /** Largest bulk-in request; rounded down to a multiple of the max packet size. */
  transferBytes: number;
  /** Get Device Status polls after a Cancel before the device is reset. */
  statusPolls: number;
  statusPollMs: number;
  /** How long a read for stale bytes waits after a Cancel. */
  drainTimeoutMs: number;
  sleep(ms: number): Promise<void>;
  /** Called after a Device Reset: the camera closed its session. */
  onReset(): void;
}

/** What a drain throws away before it decides the camera will not stop sending. */
const DRAIN_LIMIT_BYTES = 64 * 1024 * 1024;
const DRAIN_LIMIT_TRANSFERS = 1024;
/** Transactions whose late responses are recognised and dropped. */
const ABANDONED_KEPT = 8;

export function asDriverError(err: unknown, what = 'USB transfer'): DriverError {
  if (err instanceof DriverError) return err;
  return new DriverError('transient', TransportCode.Io, `${what}: ${(err as Error)?.message ?? String(err)}`, {
    cause: err,
  });
}

export interface ReceivedContainer {
  header: ContainerHeader;
  bytes: Uint8Array;
  /** The transfer ended at a short packet: nothing more of this container follows. */
  short: boolean;
}

export class BulkPipe {
  readonly transferBytes: number;
  private leftover: Uint8Array | null = null;
  private readonly abandoned: number[] = [];
  private goneError: DriverError | null = null;

  constructor(
    private readonly transport: PtpTransport,
    private readonly o: PipeOptions,
  ) {
    const mps = transport.maxPacketSize > 0 ? transport.maxPacketSize : 512;
    this.transferBytes = Math.max(mps, Math.floor(o.transferBytes / mps) * mps);
  }

  get maxPacketSize(): number {
    return this.transport.maxPacketSize > 0 ? this.transport.maxPacketSize : 512;
  }

  get gone(): DriverError | null {
    return this.goneError;
  }

  /** Marks the pipe unusable, e.g. when the session is closed. */
  shut(err: DriverError): void {
    this.goneError ??= err;
  }

  roundUp(n: number): number {
    const mps = this.maxPacketSize;
    return Math.max(mps, Math.ceil(n / mps) * mps);
  }

  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    if (this.goneError) throw this.goneError;
    try {
      return await fn();
    } catch (err) {
      const e = asDriverError(err, what);
      if (e.kind === 'deviceGone') this.goneError ??= e;
      throw e;
    }
  }

  send(bytes: Uint8Array): Promise<void> {
    return this.call('bulk-out', () => this.transport.bulkOut(bytes));
  }

  /** One bulk-in transfer of up to `want` bytes, or what was left of the last one. */
  async receive(want: number): Promise<{ bytes: Uint8Array; short: boolean }> {
    if (this.leftover) {
      const bytes = this.leftover;
      this.leftover = null;
      // The transfer these bytes came from ended after them.
      return { bytes, short: true };
    }
    const ask = this.roundUp(want);
    const bytes = await this.call('bulk-in', () => this.transport.bulkIn(ask, this.o.timeoutMs));
    return { bytes, short: bytes.length < ask };
  }

  /** Bytes past the end of a data phase: a device that sends no zero-length packet runs into the next container. */
  unread(bytes: Uint8Array): void {
    if (bytes.length > 0) this.leftover = bytes;
  }

  /**
   * The next container's first transfer. Zero-length packets that end a data phase whose length
   * was a multiple of the packet size are skipped, and so are late responses to transactions
   * this side already cancelled.
   */
  async nextContainer(): Promise<ReceivedContainer> {
    for (let skipped = 0; skipped < 4; skipped++) {
      const { bytes, short } = await this.receive(this.transferBytes);
      if (bytes.length === 0) continue;
      const header = decodeHeader(bytes);
      if (header.type === ContainerType.Response && this.abandoned.includes(header.transactionId)) {
        this.o.log.debug(
          { event: 'ptp.late_response', transactionId: header.transactionId },
          'dropped the response to a cancelled transaction',
        );
        continue;
      }
      return { header, bytes, short };
    }
    throw new PtpProtocolError('camera sent only empty packets where a container was due', 'ptp-no-container');
  }

  /**
   * Brings the camera back to idle after transaction `tid` failed half-way (PTP over USB 5.2):
   * class Cancel, Get Device Status until the camera stops being busy, clear both halts, and
   * read away whatever the camera had already queued. A camera still busy after that is reset.
   * Never throws; a camera that left on the way is recorded in `gone`.
   */
  async recover(tid: number): Promise<void> {
    this.leftover = null;
    this.abandoned.push(tid);
    if (this.abandoned.length > ABANDONED_KEPT) this.abandoned.shift();
    if (this.goneError) return;
    const log = this.o.log;
    try {
      const data = new Uint8Array(6);
      const v = new DataView(data.buffer);
      v.setUint16(0, CANCEL_CODE, true);
      v.setUint32(2, tid, true);
      await this.call('cancel request', () => this.transport.controlOut(ClassRequest.Cancel, 0, data));
    } catch (err) {
      if (this.goneError) return;
      log.debug({ event: 'ptp.cancel_refused', error: (err as Error).message }, 'camera refused the cancel request');
    }
    const status = await this.waitIdle();
    await this.clearHalts();
    await this.drain();
    if (status === 'busy' && !this.goneError) {
      log.warn({ event: 'ptp.reset', transactionId: tid }, 'camera still busy after a cancel; resetting it');
      await this.call('device reset', () =>
        this.transport.controlOut(ClassRequest.DeviceReset, 0, new Uint8Array(0)),
      ).catch(() => undefined);
      await this.clearHalts();
      this.o.onReset();
    }
    log.debug({ event: 'ptp.recovered', transactionId: tid, status }, 'transaction cancelled');
  }

  private async waitIdle(): Promise<'idle' | 'unknown' | 'busy'> {
    for (let i = 0; i < this.o.statusPolls; i++) {
      let bytes: Uint8Array;
      try {
        bytes = await this.call('device status', () => this.transport.controlIn(ClassRequest.GetDeviceStatus, 0, 64));
      } catch {
        // QEMU's usb-mtp, among others, stalls Get Device Status: the cancel is all there is.
        return 'unknown';
      }
      if (bytes.length < 4) return 'unknown';
      const code = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint16(2, true);
      if (code !== Rc.DeviceBusy) return 'idle';
      await this.o.sleep(this.o.statusPollMs);
    }
    return 'busy';
  }

  private async clearHalts(): Promise<void> {
    for (const dir of ['in', 'out'] as const) {
      await this.call('clear halt', () => this.transport.clearHalt(dir)).catch(() => undefined);
    }
  }

  /** Reads until the camera has nothing more queued, which a timeout tells. */
  private async drain(): Promise<void> {
    let drained = 0;
    for (let n = 0; n < DRAIN_LIMIT_TRANSFERS && drained < DRAIN_LIMIT_BYTES && !this.goneError; n++) {
      let bytes: Uint8Array;
      try {
        bytes = await this.call('drain', () => this.transport.bulkIn(this.transferBytes, this.o.drainTimeoutMs));
      } catch (err) {
        if (err instanceof DriverError && err.code === TransportCode.Stall)
          await this.call('clear halt', () => this.transport.clearHalt('in')).catch(() => undefined);
        break;
      }
      drained += bytes.length;
    }
    if (drained > 0) this.o.log.debug({ event: 'ptp.drained', bytes: drained }, 'read away stale bytes after a cancel');
  }
}
