/**
 * The two ways a PTP exchange fails besides the USB link itself: the camera sent bytes that do
 * not parse (PtpProtocolError), or it answered a well-formed "no" (PtpResponseError). Both are
 * DriverErrors, so callers branch on `kind` without knowing PTP.
 */
import { DriverError, type DriverErrorKind } from '../types.js';
import { Rc, hex16, responseName } from './constants.js';

/**
 * Bytes that contradict themselves: lengths that lie, strings without terminators, counts past
 * the end. Retrying may well work (a glitch, a device that recovers after a cancel), so the
 * default kind is transient; the retry budget ends a device that always lies.
 */
export class PtpProtocolError extends DriverError {
  constructor(message: string, code = 'ptp-malformed', kind: DriverErrorKind = 'transient') {
    super(kind, code, message);
    this.name = 'PtpProtocolError';
  }
}

/** Answers that say "this object/operation is refused" and will say so again on a retry. */
const PERMANENT = new Set<number>([
  Rc.OperationNotSupported,
  Rc.ParameterNotSupported,
  Rc.InvalidStorageID,
  Rc.InvalidObjectHandle,
  Rc.DevicePropNotSupported,
  Rc.InvalidDevicePropFormat,
  Rc.InvalidDevicePropValue,
  Rc.InvalidObjectFormatCode,
  Rc.ObjectWriteProtected,
  Rc.StoreReadOnly,
  Rc.AccessDenied,
  Rc.SpecificationByFormatUnsupported,
  Rc.InvalidParentObject,
  Rc.InvalidParameter,
  Rc.InvalidObjectPropCode,
]);

export function responseKind(code: number): DriverErrorKind {
  return PERMANENT.has(code) ? 'permanent' : 'transient';
}

/** A response other than OK. `code` is `ptp-0x2009` style so logs and custody records stay short. */
export class PtpResponseError extends DriverError {
  readonly responseCode: number;
  readonly operation: number;

  constructor(operation: number, responseCode: number, what: string) {
    super(
      responseKind(responseCode),
      `ptp-${hex16(responseCode)}`,
      `${what}: camera answered ${responseName(responseCode)} (${hex16(responseCode)})`,
    );
    this.name = 'PtpResponseError';
    this.operation = operation;
    this.responseCode = responseCode;
  }
}
