/**
 * PTP bulk containers and the primitive types of PTP datasets, little-endian throughout.
 *
 * Everything read here comes from the camera, so the reader checks every length against the
 * bytes actually held before it reads or allocates: a count of 2^32 elements in a 40-byte reply
 * is a PtpProtocolError, never a 16 GiB array or a read past the end.
 */
import { ContainerType, HEADER_BYTES, MAX_PARAMS } from './constants.js';
import { PtpProtocolError } from './errors.js';

export interface ContainerHeader {
  /** The whole container in bytes, header included; LENGTH_UNKNOWN for data past 4 GiB. */
  length: number;
  type: number;
  code: number;
  transactionId: number;
}

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function checkU32(value: number, what: string): void {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff)
    throw new RangeError(`${what} ${value} is not a u32`);
}

/** A command, response or event container: header plus up to five u32 parameters. */
export function encodeContainer(
  type: number,
  code: number,
  transactionId: number,
  params: readonly number[] = [],
): Uint8Array {
  if (params.length > MAX_PARAMS)
    throw new RangeError(`a PTP container carries at most ${MAX_PARAMS} parameters, not ${params.length}`);
  checkU32(transactionId, 'transaction id');
  const out = new Uint8Array(HEADER_BYTES + params.length * 4);
  const v = view(out);
  v.setUint32(0, out.length, true);
  v.setUint16(4, type, true);
  v.setUint16(6, code, true);
  v.setUint32(8, transactionId, true);
  params.forEach((p, i) => {
    checkU32(p, `parameter ${i + 1}`);
    v.setUint32(HEADER_BYTES + i * 4, p, true);
  });
  return out;
}

export function encodeCommand(code: number, transactionId: number, params: readonly number[] = []): Uint8Array {
  return encodeContainer(ContainerType.Command, code, transactionId, params);
}

/** The header of a data container announcing `payloadLength` bytes (LENGTH_UNKNOWN when over 4 GiB). */
export function encodeDataHeader(code: number, transactionId: number, payloadLength: number): Uint8Array {
  const out = new Uint8Array(HEADER_BYTES);
  const v = view(out);
  const total = payloadLength + HEADER_BYTES;
  v.setUint32(0, total > 0xffffffff ? 0xffffffff : total, true);
  v.setUint16(4, ContainerType.Data, true);
  v.setUint16(6, code, true);
  v.setUint32(8, transactionId, true);
  return out;
}

export function decodeHeader(bytes: Uint8Array): ContainerHeader {
  if (bytes.length < HEADER_BYTES)
    throw new PtpProtocolError(`a ${bytes.length}-byte packet is too short for a PTP container`, 'ptp-short-packet');
  const v = view(bytes);
  return {
    length: v.getUint32(0, true),
    type: v.getUint16(4, true),
    code: v.getUint16(6, true),
    transactionId: v.getUint32(8, true),
  };
}

export interface ParamContainer extends ContainerHeader {
  params: number[];
}

/**
 * A command, response or event container, whole in `bytes`. The length field must agree with
 * the bytes: a response that claims more than arrived, or parameters that are not whole u32s,
 * is malformed.
 */
export function decodeParamContainer(bytes: Uint8Array): ParamContainer {
  const h = decodeHeader(bytes);
  if (h.length < HEADER_BYTES || h.length > HEADER_BYTES + MAX_PARAMS * 4 || (h.length - HEADER_BYTES) % 4 !== 0) {
    throw new PtpProtocolError(
      `container length ${h.length} is impossible for a container of type ${h.type}`,
      'ptp-bad-length',
    );
  }
  if (bytes.length !== h.length) {
    throw new PtpProtocolError(
      `container says ${h.length} bytes but ${bytes.length} arrived`,
      bytes.length < h.length ? 'ptp-short-packet' : 'ptp-bad-length',
    );
  }
  const v = view(bytes);
  const params: number[] = [];
  for (let at = HEADER_BYTES; at < h.length; at += 4) params.push(v.getUint32(at, true));
  return { ...h, params };
}

const UTF16 = new TextDecoder('utf-16le');

/** Reads a dataset front to back; every read is bounds-checked. */
export class DatasetReader {
  private readonly v: DataView;
  private at = 0;

  constructor(
    private readonly bytes: Uint8Array,
    private readonly what = 'dataset',
  ) {
    this.v = view(bytes);
  }

  get offset(): number {
    return this.at;
  }
  get remaining(): number {
    return this.bytes.length - this.at;
  }
  get atEnd(): boolean {
    return this.at >= this.bytes.length;
  }

  private need(n: number, field: string): void {
    if (n > this.remaining) {
      throw new PtpProtocolError(
        `${this.what} ends inside ${field}: ${n} bytes needed at offset ${this.at}, ${this.remaining} left`,
        'ptp-truncated',
      );
    }
  }

  skip(n: number, field = 'a field'): void {
    this.need(n, field);
    this.at += n;
  }

  u8(field = 'a u8'): number {
    this.need(1, field);
    return this.v.getUint8(this.at++);
  }
  i8(field = 'an i8'): number {
    this.need(1, field);
    return this.v.getInt8(this.at++);
  }
  u16(field = 'a u16'): number {
    this.need(2, field);
    const x = this.v.getUint16(this.at, true);
    this.at += 2;
    return x;
  }
  i16(field = 'an i16'): number {
    this.need(2, field);
    const x = this.v.getInt16(this.at, true);
    this.at += 2;
    return x;
  }
  u32(field = 'a u32'): number {
    this.need(4, field);
    const x = this.v.getUint32(this.at, true);
    this.at += 4;
    return x;
  }
  i32(field = 'an i32'): number {
    this.need(4, field);
    const x = this.v.getInt32(this.at, true);
    this.at += 4;
    return x;
  }

  /** A 64-bit value that must fit a JavaScript number exactly (sizes, offsets). */
  u64(field = 'a u64'): number {
    this.need(8, field);
    const x = this.v.getBigUint64(this.at, true);
    this.at += 8;
    if (x > BigInt(Number.MAX_SAFE_INTEGER))
      throw new PtpProtocolError(`${this.what}: ${field} ${x} is larger than any real size`, 'ptp-too-large');
    return Number(x);
  }
  i64(field = 'an i64'): number {
    this.need(8, field);
    const x = this.v.getBigInt64(this.at, true);
    this.at += 8;
    if (x > BigInt(Number.MAX_SAFE_INTEGER) || x < BigInt(Number.MIN_SAFE_INTEGER))
      throw new PtpProtocolError(`${this.what}: ${field} ${x} is out of range`, 'ptp-too-large');
    return Number(x);
  }

  /**
   * A PTP string: u8 count of UTF-16LE code units including the terminating NUL (0 for the
   * empty string). A string whose last unit is not NUL is refused rather than guessed at.
   */
  string(field = 'a string'): string {
    return UTF16.decode(this.stringUnits(field));
  }

  /** A PTP string's UTF-16LE code units up to its NUL, undecoded (see `string`). */
  stringUnits(field = 'a string'): Uint8Array {
    const count = this.u8(`the length of ${field}`);
    if (count === 0) return new Uint8Array(0);
    this.need(count * 2, field);
    const units = this.bytes.subarray(this.at, this.at + count * 2);
    this.at += count * 2;
    if (units[count * 2 - 1] !== 0 || units[count * 2 - 2] !== 0) {
      throw new PtpProtocolError(`${this.what}: ${field} is not NUL-terminated`, 'ptp-unterminated-string');
    }
    let end = 0;
    while (end < count - 1 && (units[end * 2] !== 0 || units[end * 2 + 1] !== 0)) end++;
    return units.subarray(0, end * 2);
  }

  /** u32 count then elements of `size` bytes; the count is checked against the bytes held first. */
  private array<T>(size: number, field: string, read: () => T): T[] {
    const count = this.u32(`the count of ${field}`);
    if (count * size > this.remaining) {
      throw new PtpProtocolError(
        `${this.what}: ${field} claims ${count} elements but only ${this.remaining} bytes follow`,
        'ptp-bad-count',
      );
    }
    const out = new Array<T>(count);
    for (let i = 0; i < count; i++) out[i] = read();
    return out;
  }

  u16Array(field = 'a u16 array'): number[] {
    return this.array(2, field, () => this.u16(field));
  }
  u32Array(field = 'a u32 array'): number[] {
    return this.array(4, field, () => this.u32(field));
  }
}

/** Builds datasets; used for the few things the host sends and by the test responder. */
export class DatasetWriter {
  private parts: Uint8Array[] = [];
  private size = 0;

  private push(n: number, fill: (v: DataView) => void): this {
    const b = new Uint8Array(n);
    fill(view(b));
    this.parts.push(b);
    this.size += n;
    return this;
  }

  u8(x: number): this {
    return this.push(1, (v) => v.setUint8(0, x));
  }
  u16(x: number): this {
    return this.push(2, (v) => v.setUint16(0, x, true));
  }
  u32(x: number): this {
    return this.push(4, (v) => v.setUint32(0, x, true));
  }
  u64(x: number | bigint): this {
    return this.push(8, (v) => v.setBigUint64(0, BigInt(x), true));
  }
  raw(bytes: Uint8Array): this {
    this.parts.push(bytes);
    this.size += bytes.length;
    return this;
  }

  /** Longer strings are cut to the 254 units PTP can carry, never inside a surrogate pair. */
  string(s: string): this {
    if (s === '') return this.u8(0);
    let units = s.length > 254 ? s.slice(0, 254) : s;
    if (/[\ud800-\udbff]$/.test(units)) units = units.slice(0, -1);
    this.u8(units.length + 1);
    return this.push((units.length + 1) * 2, (v) => {
      for (let i = 0; i < units.length; i++) v.setUint16(i * 2, units.charCodeAt(i), true);
    });
  }

  u16Array(xs: readonly number[]): this {
    this.u32(xs.length);
    for (const x of xs) this.u16(x);
    return this;
  }
  u32Array(xs: readonly number[]): this {
    this.u32(xs.length);
    for (const x of xs) this.u32(x);
    return this;
  }

  bytes(): Uint8Array {
    const out = new Uint8Array(this.size);
    let at = 0;
    for (const p of this.parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
}

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
