/**
 * One PTP transaction on the bulk pipes: command out, an optional data phase (out for a dataset
 * the host sends, in for what the camera sends), response in. An incoming data phase is pulled
 * transfer by transfer so an object of any size passes through without ever being held whole.
 */
import { ContainerType, HEADER_BYTES, LENGTH_UNKNOWN, opName } from './constants.js';
import { concatBytes, decodeParamContainer, encodeCommand, encodeDataHeader } from './codec.js';
import { PtpProtocolError } from './errors.js';
import { asDriverError, type BulkPipe, type ReceivedContainer } from './pipe.js';

export interface PtpResponse {
  code: number;
  params: number[];
}

type Phase = 'command' | 'data' | 'response' | 'done' | 'failed';

export class Transaction {
  private phase: Phase = 'command';
  private remaining: number | null = null;
  /** The first transfer's payload, taken in by next() so a caller can judge the length first. */
  private pending: { bytes: Uint8Array; short: boolean } | null = null;
  private ended = false;
  private response: PtpResponse | null = null;
  /** Payload bytes the data container announced; null while unknown (over 4 GiB, no hint). */
  dataLength: number | null = null;
  hasData = false;

  constructor(
    private readonly pipe: BulkPipe,
    readonly op: number,
    readonly transactionId: number,
    /** The payload size this side expects, used when the camera announces LENGTH_UNKNOWN. */
    private readonly lengthHint?: number,
  ) {}

  get name(): string {
    return `${opName(this.op)} (transaction ${this.transactionId})`;
  }

  get finished(): boolean {
    return this.phase === 'done' || this.phase === 'failed';
  }

  /**
   * Any failure before the response arrived leaves the camera mid-transaction: cancel it so the
   * next transaction starts clean. A camera that left meanwhile wins over the original error.
   */
  private async guard<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      const e = asDriverError(err, this.name);
      if (!this.finished) {
        this.phase = 'failed';
        if (e.kind !== 'deviceGone') await this.pipe.recover(this.transactionId);
      }
      throw this.pipe.gone ?? e;
    }
  }

  /**
   * Sends the command (and `dataOut`, the dataset of an operation that carries one to the camera)
   * and reads the first container: the start of the data, or the response.
   */
  async start(params: readonly number[], dataOut?: Uint8Array): Promise<void> {
    if (this.phase !== 'command') throw new Error(`${this.name} already started`);
    await this.guard(async () => {
      await this.pipe.send(encodeCommand(this.op, this.transactionId, params));
      this.phase = 'response';
      if (dataOut) await this.sendData(dataOut);
      const first = await this.pipe.nextContainer();
      if (first.header.type === ContainerType.Response) {
        this.settle(first);
        return;
      }
      if (first.header.type !== ContainerType.Data) {
        throw new PtpProtocolError(
          `${this.name}: expected data or a response, got a container of type ${first.header.type}`,
          'ptp-unexpected-container',
        );
      }
      this.checkTransaction(first.header.transactionId);
      this.hasData = true;
      this.phase = 'data';
      const { length } = first.header;
      if (length === LENGTH_UNKNOWN) {
        this.remaining = this.lengthHint ?? null;
      } else if (length < HEADER_BYTES) {
        throw new PtpProtocolError(
          `${this.name}: data container length ${length} is shorter than its header`,
          'ptp-bad-length',
        );
      } else {
        this.remaining = length - HEADER_BYTES;
      }
      this.dataLength = this.remaining;
      this.pending = { bytes: first.bytes.subarray(HEADER_BYTES), short: first.short };
    });
  }

  /**
   * The data container in one transfer. A container that fills its last packet exactly gets a
   * zero-length packet after it, or the camera would wait for more (PTP over USB 7.2).
   */
  private async sendData(payload: Uint8Array): Promise<void> {
    const container = concatBytes([encodeDataHeader(this.op, this.transactionId, payload.length), payload]);
    await this.pipe.send(container);
    if (container.length % this.pipe.maxPacketSize === 0) await this.pipe.send(new Uint8Array(0));
  }

  private checkTransaction(tid: number): void {
    if (tid !== this.transactionId) {
      throw new PtpProtocolError(`${this.name}: camera answered for transaction ${tid}`, 'ptp-transaction-mismatch');
    }
  }

  /** Takes one transfer's payload, holding back what belongs to the next container. */
  private accept(bytes: Uint8Array, short: boolean): Uint8Array {
    if (this.remaining === null) {
      if (short) this.ended = true;
      return bytes;
    }
    let out = bytes;
    if (out.length > this.remaining) {
      this.pipe.unread(out.subarray(this.remaining));
      out = out.subarray(0, this.remaining);
    } else if (short && out.length < this.remaining) {
      throw new PtpProtocolError(
        `${this.name}: data ended ${this.remaining - out.length} bytes before the length the camera announced`,
        'ptp-short-data',
      );
    }
    this.remaining -= out.length;
    return out;
  }

  /** The next piece of the data phase, or null once it is complete. */
  async next(): Promise<Uint8Array | null> {
    if (this.phase !== 'data') return null;
    return this.guard(async () => {
      if (this.pending) {
        const { bytes, short } = this.pending;
        this.pending = null;
        const chunk = this.accept(bytes, short);
        if (chunk.length > 0) return chunk;
      }
      while (this.remaining !== 0 && !this.ended) {
        const want =
          this.remaining === null
            ? this.pipe.transferBytes
            : Math.min(this.pipe.transferBytes, this.pipe.roundUp(this.remaining));
        const got = await this.pipe.receive(want);
        const chunk = this.accept(got.bytes, got.short);
        if (chunk.length > 0) return chunk;
      }
      this.phase = 'response';
      return null;
    });
  }

  /** The whole data phase as one buffer, refused when it would exceed `max` bytes. */
  async readAll(max: number): Promise<Uint8Array> {
    if (this.dataLength !== null && this.dataLength > max) {
      await this.guard(() =>
        Promise.reject(
          new PtpProtocolError(
            `${this.name}: camera announces ${this.dataLength} bytes where at most ${max} are expected`,
            'ptp-too-large',
          ),
        ),
      );
    }
    const parts: Uint8Array[] = [];
    let total = 0;
    for (let chunk = await this.next(); chunk; chunk = await this.next()) {
      total += chunk.length;
      if (total > max)
        await this.guard(() =>
          Promise.reject(
            new PtpProtocolError(`${this.name}: camera sent more than the ${max} bytes expected`, 'ptp-too-large'),
          ),
        );
      parts.push(chunk);
    }
    return concatBytes(parts.length ? parts : [new Uint8Array(0)]);
  }

  /** Reads the response; the data phase, if any, must have been read to its end. */
  async finish(): Promise<PtpResponse> {
    if (this.response) return this.response;
    if (this.phase !== 'response') throw new Error(`${this.name}: response read in phase ${this.phase}`);
    return this.guard(async () => {
      const c = await this.pipe.nextContainer();
      if (c.header.type !== ContainerType.Response) {
        throw new PtpProtocolError(
          `${this.name}: expected the response, got a container of type ${c.header.type}`,
          'ptp-unexpected-container',
        );
      }
      return this.settle(c);
    });
  }

  private settle(c: ReceivedContainer): PtpResponse {
    const r = decodeParamContainer(c.bytes);
    this.checkTransaction(r.transactionId);
    this.response = { code: r.code, params: r.params };
    this.phase = 'done';
    return this.response;
  }

  /** Abandons the transaction: the camera is told to cancel and the pipes are cleaned. */
  async cancel(): Promise<void> {
    if (this.finished || this.phase === 'command') return;
    this.phase = 'failed';
    await this.pipe.recover(this.transactionId);
  }
}
