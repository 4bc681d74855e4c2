/**
 * A PTP camera's clock and settings through device properties: DateTime (0x5011) for the clock,
 * the vendor properties a setting profile (./setting-profiles.ts) names for the settings. What
 * the camera may change is learned from its DevicePropDesc at docking, and every value is
 * checked against that description before it is sent: a camera should never have to refuse one.
 */
import { DriverError, boundString, type CameraSettings, type DriverLogger, type SettingValue } from '../types.js';
import { DatasetReader, DatasetWriter } from './codec.js';
import { DataType, DeviceProp, Op, Rc, hex16 } from './constants.js';
import {
  decodeDevicePropDesc,
  formatPtpDateTime,
  readPropValue,
  writePropValue,
  type PropValue,
  type PtpDevicePropDesc,
} from './datasets.js';
import { PtpResponseError } from './errors.js';
import { SETTING_DATA_TYPES, type PtpSettingProfile, type PtpSettingSpec } from './setting-profiles.js';
import type { PtpSession } from './session.js';

/** A profile setting the camera describes as the profile says: its name, the row, and the camera's description. */
export interface DescribedSetting {
  name: string;
  spec: PtpSettingSpec;
  desc: PtpDevicePropDesc;
}

/** What the camera's operations and properties allow, from DeviceInfo. */
export interface PropSupport {
  ops: ReadonlySet<number>;
  props: ReadonlySet<number>;
}

const INTEGER_BOUNDS: Readonly<Record<number, [number, number]>> = {
  [DataType.INT8]: [-0x80, 0x7f],
  [DataType.UINT8]: [0, 0xff],
  [DataType.INT16]: [-0x8000, 0x7fff],
  [DataType.UINT16]: [0, 0xffff],
  [DataType.INT32]: [-0x8000_0000, 0x7fff_ffff],
  [DataType.UINT32]: [0, 0xffff_ffff],
};

/** The longest string a PTP string can carry (255 units with the terminating NUL). */
const MAX_PTP_STRING = 254;

/**
 * Asks GetDevicePropDesc, and rethrows only when the camera left; anything else means "cannot
 * describe it". OperationNotSupported, a timeout or a garbled answer stops the asking for this
 * docking: every other property would go the same way.
 */
export class Describer {
  refused = false;

  constructor(
    private readonly session: PtpSession,
    private readonly log: DriverLogger,
  ) {}

  async describe(code: number, what: string): Promise<PtpDevicePropDesc | null> {
    if (this.refused) return null;
    try {
      const { data } = await this.session.request(Op.GetDevicePropDesc, [code], `GetDevicePropDesc ${what}`);
      const desc = decodeDevicePropDesc(data ?? new Uint8Array(0));
      if (desc.code !== code) {
        this.log.warn(
          {
            event: 'ptp.setting_skipped',
            setting: what,
            code: hex16(code),
            reason: `the camera described ${hex16(desc.code)} instead`,
          },
          `${what}: the camera describes another property; left alone`,
        );
        return null;
      }
      return desc;
    } catch (err) {
      if (err instanceof DriverError && err.kind === 'deviceGone') throw err;
      if (err instanceof PtpResponseError && err.responseCode === Rc.OperationNotSupported) {
        this.refused = true;
        this.log.info(
          { event: 'ptp.device_props_unsupported', operation: 'GetDevicePropDesc', code: err.code },
          'camera answers OperationNotSupported to GetDevicePropDesc: its clock and settings are left as they are',
        );
        return null;
      }
      // A refusal names this property only; a timeout or garbled answer would likely repeat, at a timeout each.
      if (!(err instanceof PtpResponseError)) this.refused = true;
      this.log.warn(
        { event: 'ptp.setting_skipped', setting: what, code: hex16(code), reason: (err as Error).message },
        `${what}: cannot read its description; left alone`,
      );
      return null;
    }
  }
}

/**
 * Whether dockd may set this camera's clock: it lists SetDevicePropValue and DateTime, and its
 * DevicePropDesc says DateTime is a string it may write (GetSet = 1).
 */
export async function probeClock(
  session: PtpSession,
  support: PropSupport,
  log: DriverLogger,
  describer = new Describer(session, log),
): Promise<boolean> {
  const { ops, props } = support;
  if (!props.has(DeviceProp.DateTime) || !ops.has(Op.GetDevicePropValue)) return false;
  if (!ops.has(Op.SetDevicePropValue) || !ops.has(Op.GetDevicePropDesc)) {
    log.info(
      { event: 'ptp.clock_read_only', reason: 'no SetDevicePropValue or GetDevicePropDesc' },
      'camera cannot have its clock set over PTP (it lists no SetDevicePropValue or GetDevicePropDesc)',
    );
    return false;
  }
  const desc = await describer.describe(DeviceProp.DateTime, 'DateTime');
  if (!desc) return false;
  if (!desc.writable || desc.dataType !== DataType.STR) {
    const reason = desc.writable
      ? `DateTime has data type ${hex16(desc.dataType)}, not a string`
      : 'DateTime is read-only (GetSet = 0)';
    log.info({ event: 'ptp.clock_read_only', reason }, `camera cannot have its clock set over PTP: ${reason}`);
    return false;
  }
  return true;
}

/**
 * The profile's settings that this camera describes with the profile's data type. A property it
 * does not list, cannot describe or describes with another type is left out, with a warning: a
 * profile written for other firmware must not write a property that now means something else.
 */
export async function probeSettings(
  session: PtpSession,
  support: PropSupport,
  profile: PtpSettingProfile,
  log: DriverLogger,
  describer = new Describer(session, log),
): Promise<DescribedSetting[]> {
  const { ops, props } = support;
  if (!ops.has(Op.GetDevicePropValue) || !ops.has(Op.GetDevicePropDesc)) {
    log.info(
      { event: 'ptp.device_props_unsupported', operation: 'GetDevicePropDesc', code: 'not listed' },
      'camera lists no GetDevicePropDesc or GetDevicePropValue: its settings are not read',
    );
    return [];
  }
  const out: DescribedSetting[] = [];
  for (const [name, spec] of Object.entries(profile.settings)) {
    const skip = (reason: string) =>
      log.warn(
        { event: 'ptp.setting_skipped', setting: name, code: hex16(spec.code), reason },
        `setting ${name} (${hex16(spec.code)}): ${reason}; left alone`,
      );
    if (!props.has(spec.code)) {
      skip('the camera does not list the property');
      continue;
    }
    const desc = await describer.describe(spec.code, name);
    if (describer.refused) return [];
    if (!desc) continue;
    if (desc.dataType !== SETTING_DATA_TYPES[spec.type]) {
      skip(`the camera says data type ${hex16(desc.dataType)}, the profile ${spec.type}`);
      continue;
    }
    out.push({ name, spec, desc });
  }
  return out;
}

/**
 * Sets DateTime to `date` as `YYYYMMDDThhmmss` in the dock PC's local time, without a zone
 * designator: most cameras refuse or misread one, and a zone-less DateTime is local time in the
 * spec. The dock reads a zone-less DateTime back the same way (parsePtpDateTime), so the skew it
 * measures next time is the camera's real drift, not the dock's UTC offset.
 */
export async function setDateTime(session: PtpSession, date: Date): Promise<void> {
  if (!Number.isFinite(date.getTime()))
    throw new DriverError('permanent', 'bad-date', 'cannot set the clock to an invalid date');
  const data = new DatasetWriter().string(formatPtpDateTime(date, 'local')).bytes();
  await session.send(Op.SetDevicePropValue, [DeviceProp.DateTime], data, 'SetDevicePropValue DateTime');
}

/** The setting as a profile names it: the enum's name or true/false for a raw value; the raw value otherwise. */
function settingOf(spec: PtpSettingSpec, raw: PropValue): SettingValue | null {
  if (raw === null) return null;
  const values = spec.values;
  if (values && 'enum' in values) {
    const name = Object.keys(values.enum).find((k) => values.enum[k] === raw);
    return name ?? raw;
  }
  if (values && 'boolean' in values) {
    if (raw === values.boolean.true) return true;
    if (raw === values.boolean.false) return false;
  }
  return typeof raw === 'string' ? boundString(raw) : raw;
}

export async function readSettings(
  session: PtpSession,
  settings: readonly DescribedSetting[],
): Promise<CameraSettings> {
  const out: CameraSettings = {};
  for (const { name, spec, desc } of settings) {
    const { data } = await session.request(Op.GetDevicePropValue, [spec.code], `GetDevicePropValue ${name}`);
    const value = settingOf(
      spec,
      readPropValue(new DatasetReader(data ?? new Uint8Array(0), name), desc.dataType, name),
    );
    if (value !== null) out[name] = value;
  }
  return out;
}

const refuse = (code: string, message: string) => new DriverError('permanent', code, message);

/** The raw property value for a setting, or a `permanent` error naming the key. */
function rawOf({ name, spec, desc }: DescribedSetting, value: SettingValue): number | string {
  const values = spec.values;
  let raw: number | string;
  if (values && 'enum' in values) {
    if (typeof value !== 'string' || !Object.hasOwn(values.enum, value)) {
      throw refuse(
        'setting-value',
        `${name}: ${JSON.stringify(value)} is not one of ${Object.keys(values.enum).join(', ')}`,
      );
    }
    raw = values.enum[value]!;
  } else if (values && 'boolean' in values) {
    if (typeof value !== 'boolean')
      throw refuse('setting-type', `${name}: takes true or false, not ${JSON.stringify(value)}`);
    raw = value ? values.boolean.true : values.boolean.false;
  } else {
    raw = value as number | string;
  }
  if (desc.dataType === DataType.STR) {
    if (typeof raw !== 'string') throw refuse('setting-type', `${name}: takes a string, not ${JSON.stringify(value)}`);
    if (raw.length > MAX_PTP_STRING) throw refuse('setting-value', `${name}: at most ${MAX_PTP_STRING} characters`);
    return raw;
  }
  const bounds = INTEGER_BOUNDS[desc.dataType];
  if (typeof raw !== 'number' || !Number.isInteger(raw))
    throw refuse('setting-type', `${name}: takes a whole number, not ${JSON.stringify(value)}`);
  if (!bounds || raw < bounds[0] || raw > bounds[1])
    throw refuse('setting-out-of-range', `${name}: ${raw} does not fit the property's ${spec.type}`);
  if (values && 'range' in values && (raw < values.range.min || raw > values.range.max)) {
    throw refuse('setting-out-of-range', `${name}: ${raw} is outside ${values.range.min}..${values.range.max}`);
  }
  return raw;
}

/** The camera's own form (range or enumeration) must allow the raw value too. */
function checkForm({ name, desc }: DescribedSetting, raw: number | string, value: SettingValue): void {
  const form = desc.form;
  if (
    form.kind === 'range' &&
    typeof raw === 'number' &&
    typeof form.min === 'number' &&
    typeof form.max === 'number'
  ) {
    const step = typeof form.step === 'number' && form.step > 0 ? form.step : 1;
    if (raw < form.min || raw > form.max || (raw - form.min) % step !== 0) {
      throw refuse(
        'setting-out-of-range',
        `${name}: the camera takes ${form.min}..${form.max}${step > 1 ? ` in steps of ${step}` : ''}, not ${JSON.stringify(value)}`,
      );
    }
  }
  if (form.kind === 'enum' && form.values.length > 0 && !form.values.includes(raw)) {
    throw refuse('setting-out-of-range', `${name}: the camera does not offer ${JSON.stringify(value)}`);
  }
}

/**
 * Checks every key of `partial` before writing any, then writes each with SetDevicePropValue.
 * A key the camera does not describe, a read-only property, a value of the wrong type or outside
 * the camera's range or enumeration rejects with a `permanent` DriverError naming the key.
 */
export async function writeSettings(
  session: PtpSession,
  settings: readonly DescribedSetting[],
  partial: CameraSettings,
  canSet: boolean,
): Promise<void> {
  const writes: Array<{ s: DescribedSetting; raw: number | string }> = [];
  for (const [key, value] of Object.entries(partial)) {
    const s = settings.find((x) => x.name === key);
    if (!s) throw refuse('setting-unknown', `the camera has no setting "${boundString(key, 64)}"`);
    if (!canSet)
      throw refuse('setting-read-only', `${key}: the camera cannot change settings over PTP (no SetDevicePropValue)`);
    if (!s.desc.writable) throw refuse('setting-read-only', `${key}: the camera has it read-only`);
    const raw = rawOf(s, value);
    checkForm(s, raw, value);
    writes.push({ s, raw });
  }
  for (const { s, raw } of writes) {
    const data = writePropValue(new DatasetWriter(), s.desc.dataType, raw).bytes();
    try {
      await session.send(Op.SetDevicePropValue, [s.spec.code], data, `SetDevicePropValue ${s.name}`);
    } catch (err) {
      if (err instanceof PtpResponseError)
        throw new DriverError(err.kind, err.code, `${s.name}: ${err.message}`, { cause: err });
      throw err;
    }
  }
}
