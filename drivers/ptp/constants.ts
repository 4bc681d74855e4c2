/**
 * Codes from ISO 15740 (PTP), the MTP extension and the Android GetPartialObject64 extension,
 * limited to what this driver and its test responder use.
 */

export const ContainerType = {
  Command: 1,
  Data: 2,
  Response: 3,
  Event: 4,
} as const;

/** Bytes of the bulk container header: u32 length, u16 type, u16 code, u32 transaction id. */
export const HEADER_BYTES = 12;
/** A command or response carries at most five u32 parameters. */
export const MAX_PARAMS = 5;
/** The data container length that means "more than fits in 32 bits: read to the short packet". */
export const LENGTH_UNKNOWN = 0xffffffff;

export const Op = {
  GetDeviceInfo: 0x1001,
  OpenSession: 0x1002,
  CloseSession: 0x1003,
  GetStorageIDs: 0x1004,
  GetStorageInfo: 0x1005,
  GetObjectHandles: 0x1007,
  GetObjectInfo: 0x1008,
  GetObject: 0x1009,
  DeleteObject: 0x100b,
  GetDevicePropDesc: 0x1014,
  GetDevicePropValue: 0x1015,
  SetDevicePropValue: 0x1016,
  GetPartialObject: 0x101b,
  GetObjectPropValue: 0x9803,
  GetPartialObject64: 0x95c1,
} as const;

export const Rc = {
  OK: 0x2001,
  GeneralError: 0x2002,
  SessionNotOpen: 0x2003,
  InvalidTransactionID: 0x2004,
  OperationNotSupported: 0x2005,
  ParameterNotSupported: 0x2006,
  IncompleteTransfer: 0x2007,
  InvalidStorageID: 0x2008,
  InvalidObjectHandle: 0x2009,
  DevicePropNotSupported: 0x200a,
  InvalidObjectFormatCode: 0x200b,
  StoreFull: 0x200c,
  ObjectWriteProtected: 0x200d,
  StoreReadOnly: 0x200e,
  AccessDenied: 0x200f,
  PartialDeletion: 0x2012,
  StoreNotAvailable: 0x2013,
  SpecificationByFormatUnsupported: 0x2014,
  DeviceBusy: 0x2019,
  InvalidDevicePropFormat: 0x201b,
  InvalidDevicePropValue: 0x201c,
  InvalidParentObject: 0x201a,
  InvalidParameter: 0x201d,
  SessionAlreadyOpened: 0x201e,
  TransactionCancelled: 0x201f,
  InvalidObjectPropCode: 0xa801,
} as const;

export const DeviceProp = {
  BatteryLevel: 0x5001,
  DateTime: 0x5011,
} as const;

export const ObjectProp = {
  /** UINT64: the size ObjectInfo cannot carry once a file reaches 4 GiB. */
  ObjectSize: 0xdc04,
} as const;

export const Format = {
  Undefined: 0x3000,
  Association: 0x3001,
} as const;

/** StorageInfo AccessCapability: read-only and nothing may be deleted. */
export const ACCESS_READ_ONLY_NO_DELETE = 0x0001;

/** GetObjectHandles parent argument meaning "the root folder of the storage". */
export const PARENT_ROOT = 0xffffffff;

/** PTP data type codes (DevicePropDesc, MTP object properties). */
export const DataType = {
  INT8: 0x0001,
  UINT8: 0x0002,
  INT16: 0x0003,
  UINT16: 0x0004,
  INT32: 0x0005,
  UINT32: 0x0006,
  INT64: 0x0007,
  UINT64: 0x0008,
  INT128: 0x0009,
  UINT128: 0x000a,
  STR: 0xffff,
} as const;

/** Still Image class requests on the control pipe (PTP over USB, section 5.2). */
export const ClassRequest = {
  Cancel: 0x64,
  GetExtendedEventData: 0x65,
  DeviceReset: 0x66,
  GetDeviceStatus: 0x67,
} as const;

/** The cancellation code carried in a Cancel request's data stage. */
export const CANCEL_CODE = 0x4001;

export const STILL_IMAGE_CLASS = 0x06;

const OP_NAMES = new Map<number, string>(Object.entries(Op).map(([k, v]) => [v, k]));
const RC_NAMES = new Map<number, string>(Object.entries(Rc).map(([k, v]) => [v, k]));

export function hex16(code: number): string {
  return `0x${code.toString(16).padStart(4, '0')}`;
}

export function opName(code: number): string {
  return OP_NAMES.get(code) ?? `operation ${hex16(code)}`;
}

export function responseName(code: number): string {
  return RC_NAMES.get(code) ?? `response ${hex16(code)}`;
}
