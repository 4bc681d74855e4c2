/**
 * The PTP datasets this driver reads (DeviceInfo, ObjectInfo, StorageInfo, DevicePropDesc) and
 * the DateTime string format, with encoders for the test responder.
 */
import { DataType } from './constants.js';
import { DatasetReader, DatasetWriter } from './codec.js';
import { PtpProtocolError } from './errors.js';
import { nameFromUtf16 } from '../camera-names.js';

export interface PtpDeviceInfo {
  standardVersion: number;
  vendorExtensionId: number;
  vendorExtensionVersion: number;
  vendorExtensionDesc: string;
  functionalMode: number;
  operations: number[];
  events: number[];
  deviceProperties: number[];
  captureFormats: number[];
  imageFormats: number[];
  manufacturer: string;
  model: string;
  deviceVersion: string;
  serialNumber: string;
}

export function decodeDeviceInfo(bytes: Uint8Array): PtpDeviceInfo {
  const r = new DatasetReader(bytes, 'DeviceInfo');
  return {
    standardVersion: r.u16('StandardVersion'),
    vendorExtensionId: r.u32('VendorExtensionID'),
    vendorExtensionVersion: r.u16('VendorExtensionVersion'),
    vendorExtensionDesc: r.string('VendorExtensionDesc'),
    functionalMode: r.u16('FunctionalMode'),
    operations: r.u16Array('OperationsSupported'),
    events: r.u16Array('EventsSupported'),
    deviceProperties: r.u16Array('DevicePropertiesSupported'),
    captureFormats: r.u16Array('CaptureFormats'),
    imageFormats: r.u16Array('ImageFormats'),
    manufacturer: r.string('Manufacturer'),
    model: r.string('Model'),
    deviceVersion: r.string('DeviceVersion'),
    serialNumber: r.string('SerialNumber'),
  };
}

export function encodeDeviceInfo(d: PtpDeviceInfo): Uint8Array {
  return new DatasetWriter()
    .u16(d.standardVersion)
    .u32(d.vendorExtensionId)
    .u16(d.vendorExtensionVersion)
    .string(d.vendorExtensionDesc)
    .u16(d.functionalMode)
    .u16Array(d.operations)
    .u16Array(d.events)
    .u16Array(d.deviceProperties)
    .u16Array(d.captureFormats)
    .u16Array(d.imageFormats)
    .string(d.manufacturer)
    .string(d.model)
    .string(d.deviceVersion)
    .string(d.serialNumber)
    .bytes();
}

export interface PtpObjectInfo {
  storageId: number;
  format: number;
  protectionStatus: number;
  /** Bytes, or null when the camera wrote 0xFFFFFFFF: 4 GiB or more, ask the ObjectSize property. */
  compressedSize: number | null;
  thumbFormat: number;
  thumbCompressedSize: number;
  thumbPixWidth: number;
  thumbPixHeight: number;
  imagePixWidth: number;
  imagePixHeight: number;
  imageBitDepth: number;
  parent: number;
  associationType: number;
  associationDesc: number;
  sequenceNumber: number;
  filename: string;
  captureDate: string;
  modificationDate: string;
  keywords: string;
}

export function decodeObjectInfo(bytes: Uint8Array): PtpObjectInfo {
  const r = new DatasetReader(bytes, 'ObjectInfo');
  const head = {
    storageId: r.u32('StorageID'),
    format: r.u16('ObjectFormat'),
    protectionStatus: r.u16('ProtectionStatus'),
    compressedSize: r.u32('ObjectCompressedSize') as number | null,
    thumbFormat: r.u16('ThumbFormat'),
    thumbCompressedSize: r.u32('ThumbCompressedSize'),
    thumbPixWidth: r.u32('ThumbPixWidth'),
    thumbPixHeight: r.u32('ThumbPixHeight'),
    imagePixWidth: r.u32('ImagePixWidth'),
    imagePixHeight: r.u32('ImagePixHeight'),
    imageBitDepth: r.u32('ImageBitDepth'),
    parent: r.u32('ParentObject'),
    associationType: r.u16('AssociationType'),
    associationDesc: r.u32('AssociationDesc'),
    sequenceNumber: r.u32('SequenceNumber'),
    // A name is kept losslessly, as recording names are (drivers/camera-names.ts).
    filename: filenameOf(r.stringUnits('Filename')),
  };
  if (head.compressedSize === 0xffffffff) head.compressedSize = null;
  // Some cameras end the dataset after the filename; a field cut in half is still an error.
  const optional = (field: string) => (r.atEnd ? '' : r.string(field));
  return {
    ...head,
    captureDate: optional('CaptureDate'),
    modificationDate: optional('ModificationDate'),
    keywords: optional('Keywords'),
  };
}

export function encodeObjectInfo(o: Omit<PtpObjectInfo, 'compressedSize'> & { compressedSize: number }): Uint8Array {
  return new DatasetWriter()
    .u32(o.storageId)
    .u16(o.format)
    .u16(o.protectionStatus)
    .u32(Math.min(o.compressedSize, 0xffffffff))
    .u16(o.thumbFormat)
    .u32(o.thumbCompressedSize)
    .u32(o.thumbPixWidth)
    .u32(o.thumbPixHeight)
    .u32(o.imagePixWidth)
    .u32(o.imagePixHeight)
    .u32(o.imageBitDepth)
    .u32(o.parent)
    .u16(o.associationType)
    .u32(o.associationDesc)
    .u32(o.sequenceNumber)
    .string(o.filename)
    .string(o.captureDate)
    .string(o.modificationDate)
    .string(o.keywords)
    .bytes();
}

export interface PtpStorageInfo {
  storageType: number;
  filesystemType: number;
  accessCapability: number;
}

/** Only the fixed head: capacities are often nonsense (QEMU's usb-mtp) and nothing here needs them. */
export function decodeStorageInfo(bytes: Uint8Array): PtpStorageInfo {
  const r = new DatasetReader(bytes, 'StorageInfo');
  return {
    storageType: r.u16('StorageType'),
    filesystemType: r.u16('FilesystemType'),
    accessCapability: r.u16('AccessCapability'),
  };
}

/** A property value: numbers up to 64 bits, strings; null for types this driver does not read. */
export type PropValue = number | string | null;

export type PropForm =
  | { kind: 'none' }
  | { kind: 'range'; min: PropValue; max: PropValue; step: PropValue }
  | { kind: 'enum'; values: PropValue[] };

export interface PtpDevicePropDesc {
  code: number;
  dataType: number;
  writable: boolean;
  factoryDefault: PropValue;
  current: PropValue;
  form: PropForm;
}

/** One value of `dataType`; the size of every type is known, so even skipped types keep the reader in step. */
export function readPropValue(r: DatasetReader, dataType: number, field = 'a value'): PropValue {
  switch (dataType) {
    case DataType.INT8:
      return r.i8(field);
    case DataType.UINT8:
      return r.u8(field);
    case DataType.INT16:
      return r.i16(field);
    case DataType.UINT16:
      return r.u16(field);
    case DataType.INT32:
      return r.i32(field);
    case DataType.UINT32:
      return r.u32(field);
    case DataType.INT64:
      return r.i64(field);
    case DataType.UINT64:
      return r.u64(field);
    case DataType.INT128:
    case DataType.UINT128:
      r.skip(16, field);
      return null;
    case DataType.STR:
      return r.string(field);
  }
  // Array types 0x4001..0x400A: u32 count of the element type.
  const element = dataType & 0x0fff;
  if ((dataType & 0xf000) === 0x4000 && element >= DataType.INT8 && element <= DataType.UINT128) {
    const size = [1, 1, 2, 2, 4, 4, 8, 8, 16, 16][element - 1]!;
    const count = r.u32(`the count of ${field}`);
    if (count * size > r.remaining)
      throw new PtpProtocolError(
        `${field} claims ${count} elements but only ${r.remaining} bytes follow`,
        'ptp-bad-count',
      );
    r.skip(count * size, field);
    return null;
  }
  throw new PtpProtocolError(`${field} has unknown data type 0x${dataType.toString(16)}`, 'ptp-bad-datatype');
}

export function decodeDevicePropDesc(bytes: Uint8Array): PtpDevicePropDesc {
  const r = new DatasetReader(bytes, 'DevicePropDesc');
  const code = r.u16('DevicePropertyCode');
  const dataType = r.u16('DataType');
  const writable = r.u8('GetSet') === 1;
  const factoryDefault = readPropValue(r, dataType, 'FactoryDefaultValue');
  const current = readPropValue(r, dataType, 'CurrentValue');
  const formFlag = r.atEnd ? 0 : r.u8('FormFlag');
  let form: PropForm = { kind: 'none' };
  if (formFlag === 1) {
    form = {
      kind: 'range',
      min: readPropValue(r, dataType, 'MinimumValue'),
      max: readPropValue(r, dataType, 'MaximumValue'),
      step: readPropValue(r, dataType, 'StepSize'),
    };
  } else if (formFlag === 2) {
    const count = r.u16('the count of the enumeration');
    const values: PropValue[] = [];
    for (let i = 0; i < count; i++) values.push(readPropValue(r, dataType, 'an enumeration value'));
    form = { kind: 'enum', values };
  }
  return { code, dataType, writable, factoryDefault, current, form };
}

export function encodeDevicePropDesc(d: {
  code: number;
  dataType: number;
  writable: boolean;
  factoryDefault: number | string;
  current: number | string;
  form: PropForm;
}): Uint8Array {
  const w = new DatasetWriter()
    .u16(d.code)
    .u16(d.dataType)
    .u8(d.writable ? 1 : 0);
  const put = (x: PropValue) => writePropValue(w, d.dataType, x);
  put(d.factoryDefault);
  put(d.current);
  if (d.form.kind === 'range') {
    w.u8(1);
    put(d.form.min);
    put(d.form.max);
    put(d.form.step);
  } else if (d.form.kind === 'enum') {
    w.u8(2).u16(d.form.values.length);
    d.form.values.forEach(put);
  } else {
    w.u8(0);
  }
  return w.bytes();
}

export function writePropValue(w: DatasetWriter, dataType: number, x: PropValue): DatasetWriter {
  if (dataType === DataType.STR) return w.string(String(x ?? ''));
  const n = Number(x ?? 0);
  switch (dataType) {
    case DataType.INT8:
    case DataType.UINT8:
      return w.u8(n & 0xff);
    case DataType.INT16:
    case DataType.UINT16:
      return w.u16(n & 0xffff);
    case DataType.INT32:
    case DataType.UINT32:
      return w.u32(n >>> 0);
    case DataType.INT64:
    case DataType.UINT64:
      return w.u64(BigInt.asUintN(64, BigInt(n)));
  }
  throw new RangeError(`cannot encode data type 0x${dataType.toString(16)}`);
}

const DATE_TIME = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(?:\.(\d))?(Z|[+-]\d{4})?$/;

/**
 * `YYYYMMDDThhmmss[.s][Z|±hhmm]`. Without a zone the time is the camera's local time, read as
 * the dock's local time: a camera docked here keeps this place's clock, and the skew measured
 * from the same reading corrects any difference. Impossible dates give null.
 */
export function parsePtpDateTime(s: string): Date | null {
  const m = DATE_TIME.exec(s.trim());
  if (!m) return null;
  const [y, mo, d, h, mi, sec] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const ms = m[7] ? Number(m[7]) * 100 : 0;
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 59) return null;
  const zone = m[8];
  let date: Date;
  if (zone === undefined) {
    date = new Date(y, mo - 1, d, h, mi, sec, ms);
    if (date.getFullYear() !== y || date.getMonth() !== mo - 1 || date.getDate() !== d) return null;
  } else {
    const utc = Date.UTC(y, mo - 1, d, h, mi, sec, ms);
    const check = new Date(utc);
    if (check.getUTCFullYear() !== y || check.getUTCMonth() !== mo - 1 || check.getUTCDate() !== d) return null;
    let offsetMin = 0;
    if (zone !== 'Z') {
      const oh = Number(zone.slice(1, 3));
      const om = Number(zone.slice(3, 5));
      if (oh > 14 || om > 59) return null;
      offsetMin = (zone[0] === '-' ? -1 : 1) * (oh * 60 + om);
    }
    date = new Date(utc - offsetMin * 60_000);
  }
  return Number.isFinite(date.getTime()) ? date : null;
}

/**
 * `YYYYMMDDThhmmssZ` in UTC, or with `local` the digits of this machine's local time and no zone
 * designator: how parsePtpDateTime reads a zone-less time back, so the two agree.
 */
export function formatPtpDateTime(d: Date, zone: 'Z' | 'local' = 'Z'): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  if (zone === 'local')
    return `${p(d.getFullYear(), 4)}${p(d.getMonth() + 1)}${p(d.getDate())}T${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
  return `${p(d.getUTCFullYear(), 4)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}T${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}Z`;
}

/** UTF-16LE bytes as the code units nameFromUtf16 keeps. */
function filenameOf(le: Uint8Array): string {
  const units = new Array<number>(le.length >> 1);
  for (let k = 0; k < units.length; k++) units[k] = le[2 * k]! | (le[2 * k + 1]! << 8);
  return nameFromUtf16(units);
}
