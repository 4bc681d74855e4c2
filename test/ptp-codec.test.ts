import { describe, expect, it } from 'vitest';
import {
  DatasetReader,
  DatasetWriter,
  decodeHeader,
  decodeParamContainer,
  encodeCommand,
  encodeContainer,
  encodeDataHeader,
} from '../drivers/ptp/codec.js';
import { ContainerType, DataType, Op, Rc } from '../drivers/ptp/constants.js';
import {
  decodeDeviceInfo,
  decodeDevicePropDesc,
  decodeObjectInfo,
  encodeDevicePropDesc,
  encodeObjectInfo,
  formatPtpDateTime,
  parsePtpDateTime,
  type PtpObjectInfo,
} from '../drivers/ptp/datasets.js';
import { PtpProtocolError, PtpResponseError } from '../drivers/ptp/errors.js';

/** "10 00 00 00 01 00" → bytes; `#` starts a comment to the end of the line. */
function hex(text: string): Uint8Array {
  const clean = text.replace(/#[^\n]*/g, '').replace(/\s+/g, '');
  return Uint8Array.from(clean.match(/../g) ?? [], (b) => parseInt(b, 16));
}

function protocolCode(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(PtpProtocolError);
    return (err as PtpProtocolError).code;
  }
  throw new Error('expected a PtpProtocolError');
}

/** A DeviceInfo written out by hand, field by field (PTP 5.5.1). */
const DEVICE_INFO = hex(`
  64 00                         # StandardVersion 100
  06 00 00 00                   # VendorExtensionID 6 (Microsoft: MTP)
  64 00                         # VendorExtensionVersion 100
  00                            # VendorExtensionDesc ""
  00 00                         # FunctionalMode 0
  03 00 00 00 01 10 02 10 09 10 # OperationsSupported [0x1001 0x1002 0x1009]
  00 00 00 00                   # EventsSupported []
  01 00 00 00 01 50             # DevicePropertiesSupported [0x5001]
  00 00 00 00                   # CaptureFormats []
  02 00 00 00 00 30 01 30       # ImageFormats [0x3000 0x3001]
  05 51 00 45 00 4d 00 55 00 00 00   # Manufacturer "QEMU"
  04 43 00 61 00 6d 00 00 00         # Model "Cam"
  04 30 00 2e 00 31 00 00 00         # DeviceVersion "0.1"
  03 41 00 31 00 00 00               # SerialNumber "A1"
`);

const EXPECTED_DEVICE_INFO = {
  standardVersion: 100,
  vendorExtensionId: 6,
  vendorExtensionVersion: 100,
  vendorExtensionDesc: '',
  functionalMode: 0,
  operations: [0x1001, 0x1002, 0x1009],
  events: [],
  deviceProperties: [0x5001],
  captureFormats: [],
  imageFormats: [0x3000, 0x3001],
  manufacturer: 'QEMU',
  model: 'Cam',
  deviceVersion: '0.1',
  serialNumber: 'A1',
};

const OBJECT_INFO: PtpObjectInfo & { compressedSize: number } = {
  storageId: 0x00010001,
  format: 0x3000,
  protectionStatus: 0,
  compressedSize: 5_242_880,
  thumbFormat: 0,
  thumbCompressedSize: 0,
  thumbPixWidth: 0,
  thumbPixHeight: 0,
  imagePixWidth: 1920,
  imagePixHeight: 1080,
  imageBitDepth: 0,
  parent: 0x2a,
  associationType: 0,
  associationDesc: 0,
  sequenceNumber: 7,
  filename: 'A001.MP4',
  captureDate: '20240305T142233',
  modificationDate: '20240305T142300Z',
  keywords: '',
};

describe('PTP containers', () => {
  it('encodes OpenSession(1) in transaction 0 byte for byte', () => {
    expect(encodeCommand(Op.OpenSession, 0, [1])).toEqual(hex('10000000 0100 0210 00000000 01000000'));
  });

  it('encodes GetObjectHandles(storage, any format, root) byte for byte', () => {
    expect(encodeCommand(Op.GetObjectHandles, 7, [0x00010001, 0, 0xffffffff])).toEqual(
      hex('18000000 0100 0710 07000000 01000100 00000000 ffffffff'),
    );
  });

  it('refuses more than five parameters and values that are not u32', () => {
    expect(() => encodeCommand(Op.GetObject, 1, [1, 2, 3, 4, 5, 6])).toThrow(RangeError);
    expect(() => encodeCommand(Op.GetObject, 1, [0x1_0000_0000])).toThrow(RangeError);
    expect(() => encodeCommand(Op.GetObject, -1, [])).toThrow(RangeError);
  });

  it('announces 0xFFFFFFFF for a data phase that does not fit 32 bits', () => {
    expect(encodeDataHeader(Op.GetObject, 3, 100)).toEqual(hex('70000000 0200 0910 03000000'));
    expect(decodeHeader(encodeDataHeader(Op.GetObject, 3, 5 * 1024 ** 3)).length).toBe(0xffffffff);
  });

  it('decodes a response with parameters', () => {
    const r = decodeParamContainer(hex('14000000 0300 0120 05000000 2a000000 00000100'));
    expect(r).toEqual({
      length: 20,
      type: ContainerType.Response,
      code: Rc.OK,
      transactionId: 5,
      params: [0x2a, 0x10000],
    });
    expect(decodeParamContainer(encodeContainer(ContainerType.Response, Rc.DeviceBusy, 9))).toMatchObject({
      code: Rc.DeviceBusy,
      params: [],
    });
  });

  it('refuses containers whose length field lies', () => {
    expect(protocolCode(() => decodeHeader(hex('0c000000 0300 01')))).toBe('ptp-short-packet');
    // Says 20 bytes, 16 arrived.
    expect(protocolCode(() => decodeParamContainer(hex('14000000 0300 0120 05000000 2a000000')))).toBe(
      'ptp-short-packet',
    );
    // Says 16, 20 arrived.
    expect(protocolCode(() => decodeParamContainer(hex('10000000 0300 0120 05000000 2a000000 2a000000')))).toBe(
      'ptp-bad-length',
    );
    // Not a whole parameter; shorter than a header; more than five parameters.
    expect(protocolCode(() => decodeParamContainer(hex('0d000000 0300 0120 05000000 2a')))).toBe('ptp-bad-length');
    expect(protocolCode(() => decodeParamContainer(hex('08000000 0300 0120 05000000')))).toBe('ptp-bad-length');
    expect(protocolCode(() => decodeParamContainer(new Uint8Array(36).fill(0).map((_, i) => (i === 0 ? 36 : 0))))).toBe(
      'ptp-bad-length',
    );
  });
});

describe('PTP datasets', () => {
  it('decodes a hand-written DeviceInfo', () => {
    expect(decodeDeviceInfo(DEVICE_INFO)).toEqual(EXPECTED_DEVICE_INFO);
  });

  it('ignores bytes after the last field (vendor extensions)', () => {
    expect(decodeDeviceInfo(new Uint8Array([...DEVICE_INFO, 1, 2, 3]))).toEqual(EXPECTED_DEVICE_INFO);
  });

  it('refuses every truncation of a DeviceInfo with a protocol error, never a RangeError', () => {
    for (let n = 0; n < DEVICE_INFO.length; n++) {
      expect(['ptp-truncated', 'ptp-bad-count']).toContain(
        protocolCode(() => decodeDeviceInfo(DEVICE_INFO.subarray(0, n))),
      );
    }
  });

  it('refuses a string without its terminating NUL', () => {
    const bad = DEVICE_INFO.slice();
    const at = bad.length - 7 - 9 - 9 - 11; // Manufacturer's length byte
    expect(bad[at]).toBe(5);
    bad[at + 1 + 8] = 0x21; // "QEMU!" where the NUL was
    expect(protocolCode(() => decodeDeviceInfo(bad))).toBe('ptp-unterminated-string');
  });

  it('refuses a count larger than the bytes that follow, before allocating anything', () => {
    const bad = DEVICE_INFO.slice();
    new DataView(bad.buffer).setUint32(11, 0xffffffff, true); // OperationsSupported count
    expect(protocolCode(() => decodeDeviceInfo(bad))).toBe('ptp-bad-count');
    expect(protocolCode(() => new DatasetReader(hex('ffffff7f 01000000')).u32Array())).toBe('ptp-bad-count');
  });

  it('stops a string at an early NUL and decodes surrogate pairs', () => {
    expect(new DatasetReader(hex('05 4100 4200 0000 4300 0000')).string()).toBe('AB');
    expect(new DatasetReader(new DatasetWriter().string('cam 📹 ü').bytes()).string()).toBe('cam 📹 ü');
  });

  it('writes at most 254 units of a string and never half a surrogate pair', () => {
    const r = new DatasetReader(new DatasetWriter().string('x'.repeat(300)).bytes());
    expect(r.string()).toBe('x'.repeat(254));
    const pair = new DatasetReader(new DatasetWriter().string('x'.repeat(253) + '📹').bytes()).string();
    expect(pair).toBe('x'.repeat(253));
  });

  it('round-trips an ObjectInfo and reads 0xFFFFFFFF as "4 GiB or more"', () => {
    expect(decodeObjectInfo(encodeObjectInfo(OBJECT_INFO))).toEqual(OBJECT_INFO);
    const big = decodeObjectInfo(encodeObjectInfo({ ...OBJECT_INFO, compressedSize: 5 * 1024 ** 3 }));
    expect(big.compressedSize).toBeNull();
  });

  it('takes an ObjectInfo that ends after the filename but not one cut inside a field', () => {
    const full = encodeObjectInfo(OBJECT_INFO);
    const afterName = 52 + 1 + (OBJECT_INFO.filename.length + 1) * 2;
    expect(decodeObjectInfo(full.subarray(0, afterName))).toMatchObject({
      filename: 'A001.MP4',
      captureDate: '',
      modificationDate: '',
    });
    expect(protocolCode(() => decodeObjectInfo(full.subarray(0, afterName + 3)))).toBe('ptp-truncated');
    expect(protocolCode(() => decodeObjectInfo(full.subarray(0, 30)))).toBe('ptp-truncated');
  });

  it('refuses 64-bit values no real size can have', () => {
    expect(new DatasetReader(new DatasetWriter().u64(5 * 1024 ** 3).bytes()).u64()).toBe(5 * 1024 ** 3);
    expect(protocolCode(() => new DatasetReader(hex('ffffffff ffffffff')).u64())).toBe('ptp-too-large');
  });

  it('decodes DevicePropDesc ranges, enumerations and skips array values', () => {
    const range = encodeDevicePropDesc({
      code: 0x5001,
      dataType: DataType.UINT8,
      writable: false,
      factoryDefault: 4,
      current: 3,
      form: { kind: 'range', min: 0, max: 4, step: 1 },
    });
    expect(decodeDevicePropDesc(range)).toEqual({
      code: 0x5001,
      dataType: DataType.UINT8,
      writable: false,
      factoryDefault: 4,
      current: 3,
      form: { kind: 'range', min: 0, max: 4, step: 1 },
    });
    const en = encodeDevicePropDesc({
      code: 0x5001,
      dataType: DataType.UINT16,
      writable: false,
      factoryDefault: 100,
      current: 50,
      form: { kind: 'enum', values: [0, 50, 100] },
    });
    expect(decodeDevicePropDesc(en).form).toEqual({ kind: 'enum', values: [0, 50, 100] });
    // AUINT16 value [1, 2] as default and current, no form.
    const arr = hex('0150 0440 00 02000000 0100 0200 02000000 0100 0200 00');
    expect(decodeDevicePropDesc(arr)).toMatchObject({ dataType: 0x4004, current: null, form: { kind: 'none' } });
    expect(protocolCode(() => decodeDevicePropDesc(hex('0150 3412 00 00')))).toBe('ptp-bad-datatype');
  });
});

describe('PTP DateTime', () => {
  it('reads UTC, offsets and tenths', () => {
    expect(parsePtpDateTime('20240305T142233Z')?.toISOString()).toBe('2024-03-05T14:22:33.000Z');
    expect(parsePtpDateTime('20240305T142233.5+0130')?.toISOString()).toBe('2024-03-05T12:52:33.500Z');
    expect(parsePtpDateTime('20240305T142233-0800')?.toISOString()).toBe('2024-03-05T22:22:33.000Z');
  });

  it('reads a time without a zone as local time', () => {
    expect(parsePtpDateTime('20240305T142233')?.getTime()).toBe(new Date(2024, 2, 5, 14, 22, 33).getTime());
  });

  it('refuses impossible and malformed times', () => {
    for (const s of [
      '20240230T000000Z',
      '20241305T000000Z',
      '20240305T246000Z',
      '2024-03-05T14:22:33Z',
      '20240305T142233+9900',
      '',
      'x'.repeat(300),
    ]) {
      expect(parsePtpDateTime(s)).toBeNull();
    }
  });

  it('writes the UTC form', () => {
    expect(formatPtpDateTime(new Date('2024-03-05T14:22:33.900Z'))).toBe('20240305T142233Z');
    // Zone-less is local time, both ways: what is written reads back as the same instant.
    const local = formatPtpDateTime(new Date('2024-03-05T14:22:33Z'), 'local');
    expect(local).toMatch(/^\d{8}T\d{6}$/);
    expect(parsePtpDateTime(local)!.toISOString()).toBe('2024-03-05T14:22:33.000Z');
  });
});

describe('PTP errors', () => {
  it('sorts responses into permanent and transient', () => {
    expect(new PtpResponseError(Op.GetObject, Rc.InvalidObjectHandle, 'GetObject')).toMatchObject({
      kind: 'permanent',
      code: 'ptp-0x2009',
    });
    expect(new PtpResponseError(Op.GetObject, Rc.DeviceBusy, 'GetObject')).toMatchObject({
      kind: 'transient',
      code: 'ptp-0x2019',
    });
    expect(new PtpResponseError(Op.DeleteObject, Rc.StoreReadOnly, 'DeleteObject').message).toMatch(
      /StoreReadOnly \(0x200e\)/,
    );
    expect(new PtpResponseError(Op.GetObject, 0x2fff, 'GetObject').kind).toBe('transient');
  });
});
