/**
 * A PTP session over one transport: transaction ids, OpenSession/CloseSession, and one
 * transaction at a time. A streamed transaction (object data) keeps the session to itself until
 * its data is read to the end or it is cancelled.
 */
import { DriverError, type DriverLogger } from '../types.js';
import { Op, Rc } from './constants.js';
import { decodeDeviceInfo, type PtpDeviceInfo } from './datasets.js';
import { PtpProtocolError, PtpResponseError } from './errors.js';
import { BulkPipe } from './pipe.js';
import { Transaction, type PtpResponse } from './transaction.js';
import type { PtpTransport } from './transport.js';

export interface PtpSessionOptions {
  log: DriverLogger;
  /** How long one bulk transfer waits for the camera. Default 10 s: some cameras spin up a card first. */
  timeoutMs?: number;
  /** Largest bulk-in request. Default 256 KiB. */
  transferBytes?: number;
  /** Largest dataset (anything but object data) accepted. Default 16 MiB. */
  maxDatasetBytes?: number;
  statusPolls?: number;
  statusPollMs?: number;
  drainTimeoutMs?: number;
  sleep?(ms: number): Promise<void>;
  /** A pause after every OpenSession, for cameras that refuse commands right after it (a quirk). */
  openDelayMs?: number;
}

/** Serialises transactions: PTP allows one at a time per session. */
class Mutex {
  private tail: Promise<void> = Promise.resolve();

  acquire(): Promise<() => void> {
    let unlock!: () => void;
    const held = new Promise<void>((resolve) => (unlock = resolve));
    const before = this.tail;
    this.tail = before.then(() => held);
    return before.then(() => {
      let released = false;
      return () => {
        if (!released) {
          released = true;
          unlock();
        }
      };
    });
  }
}

/** A transaction's data phase handed to a reader; the session stays locked until it ends. */
export class DataStream {
  private released = false;

  constructor(
    private readonly tx: Transaction,
    private readonly unlock: () => void,
    private readonly check: (r: PtpResponse) => void,
  ) {}

  /** Payload bytes announced by the camera; null when it announced "over 4 GiB". */
  get declaredLength(): number | null {
    return this.tx.dataLength;
  }

  get finished(): boolean {
    return this.released;
  }

  async next(): Promise<Uint8Array | null> {
    try {
      return await this.tx.next();
    } catch (err) {
      this.release();
      throw err;
    }
  }

  /** After next() returned null: the response, which must be OK. */
  async finish(): Promise<PtpResponse> {
    try {
      const r = await this.tx.finish();
      this.check(r);
      return r;
    } finally {
      this.release();
    }
  }

  async cancel(): Promise<void> {
    try {
      await this.tx.cancel();
    } finally {
      this.release();
    }
  }

  private release(): void {
    if (!this.released) {
      this.released = true;
      this.unlock();
    }
  }
}

export class PtpSession {
  readonly pipe: BulkPipe;
  private readonly lock = new Mutex();
  private readonly maxDatasetBytes: number;
  private lastTid = 0;
  private opened = false;
  private readonly log: DriverLogger;
  private readonly openDelayMs: number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(transport: PtpTransport, o: PtpSessionOptions) {
    this.log = o.log;
    this.maxDatasetBytes = o.maxDatasetBytes ?? 16 * 1024 * 1024;
    this.openDelayMs = o.openDelayMs ?? 0;
    this.sleep = o.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.pipe = new BulkPipe(transport, {
      log: o.log,
      timeoutMs: o.timeoutMs ?? 10_000,
      transferBytes: o.transferBytes ?? 256 * 1024,
      statusPolls: o.statusPolls ?? 20,
      statusPollMs: o.statusPollMs ?? 50,
      drainTimeoutMs: o.drainTimeoutMs ?? 100,
      sleep: this.sleep,
      onReset: () => {
        this.opened = false;
      },
    });
  }

  get isOpen(): boolean {
    return this.opened;
  }

  /** Ids start at 1 after OpenSession; operations outside a session (and OpenSession) use 0. */
  private nextTransactionId(): number {
    if (!this.opened) return 0;
    this.lastTid = this.lastTid >= 0xfffffffe ? 1 : this.lastTid + 1;
    return this.lastTid;
  }

  private async locked<T>(fn: () => Promise<T>): Promise<T> {
    const unlock = await this.lock.acquire();
    try {
      return await fn();
    } finally {
      unlock();
    }
  }

  private async begin(
    op: number,
    params: readonly number[],
    lengthHint?: number,
    dataOut?: Uint8Array,
  ): Promise<Transaction> {
    if (this.pipe.gone) throw this.pipe.gone;
    const tx = new Transaction(this.pipe, op, this.nextTransactionId(), lengthHint);
    await tx.start(params, dataOut);
    return tx;
  }

  /** A whole transaction with its data buffered; for datasets only, never object data. */
  private async exchange(
    op: number,
    params: readonly number[],
    dataOut?: Uint8Array,
  ): Promise<{ response: PtpResponse; data: Uint8Array | null }> {
    const tx = await this.begin(op, params, undefined, dataOut);
    const data = tx.hasData ? await tx.readAll(this.maxDatasetBytes) : null;
    return { response: await tx.finish(), data };
  }

  private expectOk(op: number, r: PtpResponse, what: string): void {
    if (r.code === Rc.OK) return;
    // The camera lost its session (a reset, a firmware hiccup): open a new one next time.
    if (r.code === Rc.SessionNotOpen) this.opened = false;
    throw new PtpResponseError(op, r.code, what);
  }

  async getDeviceInfo(): Promise<PtpDeviceInfo> {
    return this.locked(async () => {
      const { response, data } = await this.exchange(Op.GetDeviceInfo, []);
      this.expectOk(Op.GetDeviceInfo, response, 'GetDeviceInfo');
      if (!data) throw new PtpProtocolError('GetDeviceInfo: camera sent no DeviceInfo', 'ptp-no-data');
      return decodeDeviceInfo(data);
    });
  }

  async open(sessionId = 1): Promise<void> {
    await this.locked(() => this.openLocked(sessionId));
  }

  private async openLocked(sessionId = 1): Promise<void> {
    this.opened = false;
    const { response } = await this.exchange(Op.OpenSession, [sessionId]);
    // A session left open by an earlier host (or our own crash) is as good as a new one.
    if (response.code === Rc.SessionAlreadyOpened) {
      this.log.info({ event: 'ptp.session_already_open' }, 'camera had a session open already; using it');
    } else {
      this.expectOk(Op.OpenSession, response, 'OpenSession');
    }
    this.opened = true;
    this.lastTid = 0;
    if (this.openDelayMs > 0) await this.sleep(this.openDelayMs);
  }

  private async ensureOpen(): Promise<void> {
    if (!this.opened) await this.openLocked();
  }

  /** Ends the session; a camera that says none was open agrees with us. */
  async close(): Promise<void> {
    await this.locked(async () => {
      if (!this.opened || this.pipe.gone) return;
      const { response } = await this.exchange(Op.CloseSession, []);
      this.opened = false;
      if (response.code !== Rc.OK && response.code !== Rc.SessionNotOpen)
        throw new PtpResponseError(Op.CloseSession, response.code, 'CloseSession');
    });
  }

  /** One operation inside the session, its data (if any) buffered; any answer but OK throws. */
  async request(
    op: number,
    params: readonly number[],
    what: string,
  ): Promise<{ params: number[]; data: Uint8Array | null }> {
    return this.locked(async () => {
      await this.ensureOpen();
      const { response, data } = await this.exchange(op, params);
      this.expectOk(op, response, what);
      return { params: response.params, data };
    });
  }

  /** One operation inside the session that sends `data` to the camera (SetDevicePropValue); any answer but OK throws. */
  async send(op: number, params: readonly number[], data: Uint8Array, what: string): Promise<{ params: number[] }> {
    return this.locked(async () => {
      await this.ensureOpen();
      const { response } = await this.exchange(op, params, data);
      this.expectOk(op, response, what);
      return { params: response.params };
    });
  }

  /**
   * Starts an operation whose data is read piece by piece. The session stays locked until the
   * returned stream is finished or cancelled: callers must do one or the other.
   */
  async stream(op: number, params: readonly number[], what: string, lengthHint?: number): Promise<DataStream> {
    const unlock = await this.lock.acquire();
    try {
      await this.ensureOpen();
      const tx = await this.begin(op, params, lengthHint);
      const stream = new DataStream(tx, unlock, (r) => this.expectOk(op, r, what));
      if (!tx.hasData) await stream.finish();
      return stream;
    } catch (err) {
      unlock();
      throw err;
    }
  }

  /** After this every call rejects with `err`; the transport itself is the caller's to close. */
  shut(err: DriverError): void {
    this.pipe.shut(err);
  }
}
