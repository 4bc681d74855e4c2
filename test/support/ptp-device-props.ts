/**
 * The device properties of the PTP responder: BatteryLevel, a DateTime clock that runs at an
 * offset from the real one, and vendor properties (0xD000+) with their data types, GetSet flags
 * and range or enumeration forms. Values change only through SetDevicePropValue, which takes a
 * value the way a strict camera does: exactly one value of the type, writable, inside the form.
 */
import { DatasetReader, DatasetWriter } from '../../drivers/ptp/codec.js';
import { DataType, DeviceProp, Op, Rc } from '../../drivers/ptp/constants.js';
import {
  encodeDevicePropDesc,
  formatPtpDateTime,
  readPropValue,
  writePropValue,
  type PropForm,
} from '../../drivers/ptp/datasets.js';

/** A vendor property: its value changes only through SetDevicePropValue. */
export interface ResponderProp {
  dataType: number;
  writable: boolean;
  value: number | string;
  factoryDefault?: number | string;
  form?: PropForm;
}

export interface DevicePropOptions {
  /** DevicePropertiesSupported. Default BatteryLevel, DateTime and the vendor properties. */
  properties?: number[];
  battery?: { value: number; min?: number; max?: number; dataType?: number };
  /** A fixed DateTime string; the clock neither runs nor can be set while it is given. */
  dateTime?: string;
  /** The camera's clock runs this far ahead of the real one (negative: behind). */
  clockSkewSeconds?: number;
  /** DateTime is read with a `Z` (the default) or without a zone designator. */
  clockZone?: 'Z' | 'local';
  /** DateTime's DevicePropDesc says GetSet = 1 (the default) or 0. */
  clockWritable?: boolean;
  vendorProps?: Record<number, ResponderProp>;
}

export interface PropAnswer {
  code: number;
  data?: Uint8Array;
}

export class DeviceProps {
  /** Every DateTime string the host set, as it arrived. */
  readonly clockSets: string[] = [];
  /** Once set without a zone, the camera reports its time the same way. */
  private zoneAfterSet: 'Z' | 'local' | undefined;
  /** The camera's clock minus the real one, in ms. */
  clockOffsetMs: number;
  /** Current vendor property values by code. */
  readonly values: Map<number, ResponderProp>;
  readonly listed: number[];

  constructor(private readonly o: DevicePropOptions) {
    this.values = new Map(Object.entries(o.vendorProps ?? {}).map(([code, p]) => [Number(code), { ...p }]));
    this.listed = o.properties ?? [DeviceProp.BatteryLevel, DeviceProp.DateTime, ...this.values.keys()];
    this.clockOffsetMs = (o.clockSkewSeconds ?? 0) * 1000;
  }

  /** What the camera's clock says now. */
  get cameraTime(): Date {
    return new Date(Date.now() + this.clockOffsetMs);
  }

  /** GetDevicePropDesc or GetDevicePropValue. */
  get(op: number, prop: number): PropAnswer {
    if (!this.listed.includes(prop)) return { code: Rc.DevicePropNotSupported };
    const battery = { min: 0, max: 100, dataType: DataType.UINT8, ...(this.o.battery ?? { value: 87 }) };
    const dateTime =
      this.o.dateTime ?? formatPtpDateTime(this.cameraTime, this.zoneAfterSet ?? this.o.clockZone ?? 'Z');
    const w = new DatasetWriter();
    if (prop === DeviceProp.BatteryLevel) {
      if (op === Op.GetDevicePropValue)
        return { code: Rc.OK, data: writePropValue(w, battery.dataType, battery.value).bytes() };
      const desc = encodeDevicePropDesc({
        code: prop,
        dataType: battery.dataType,
        writable: false,
        factoryDefault: battery.max,
        current: battery.value,
        form: { kind: 'range', min: battery.min, max: battery.max, step: 1 },
      });
      return { code: Rc.OK, data: desc };
    }
    if (prop === DeviceProp.DateTime) {
      if (op === Op.GetDevicePropValue) return { code: Rc.OK, data: w.string(dateTime).bytes() };
      const writable = this.o.clockWritable ?? true;
      return {
        code: Rc.OK,
        data: encodeDevicePropDesc({
          code: prop,
          dataType: DataType.STR,
          writable,
          factoryDefault: '',
          current: dateTime,
          form: { kind: 'none' },
        }),
      };
    }
    const vendor = this.values.get(prop);
    if (!vendor) return { code: Rc.DevicePropNotSupported };
    if (op === Op.GetDevicePropValue)
      return { code: Rc.OK, data: writePropValue(w, vendor.dataType, vendor.value).bytes() };
    const desc = encodeDevicePropDesc({
      code: prop,
      dataType: vendor.dataType,
      writable: vendor.writable,
      factoryDefault: vendor.factoryDefault ?? vendor.value,
      current: vendor.value,
      form: vendor.form ?? { kind: 'none' },
    });
    return { code: Rc.OK, data: desc };
  }

  /** A value is taken only when it is exactly one value of the property's type, in its form, and the property is writable. */
  set(prop: number, payload: Uint8Array): PropAnswer {
    if (!this.listed.includes(prop)) return { code: Rc.DevicePropNotSupported };
    const decode = (dataType: number) => {
      const r = new DatasetReader(payload, 'the new value');
      const value = readPropValue(r, dataType);
      return r.atEnd ? value : null;
    };
    if (prop === DeviceProp.DateTime) {
      if (this.o.clockWritable === false) return { code: Rc.AccessDenied };
      let text: unknown;
      try {
        text = decode(DataType.STR);
      } catch {
        return { code: Rc.InvalidDevicePropFormat };
      }
      const m = typeof text === 'string' ? /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(?:\.\d)?Z?$/.exec(text) : null;
      if (!m) return { code: Rc.InvalidDevicePropValue };
      // A camera without a time zone: the digits are its clock, local time as the spec has it.
      const [y, mo, d, h, mi, sec] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
      const zoneless = !(text as string).endsWith('Z');
      this.clockSets.push(text as string);
      this.clockOffsetMs =
        (zoneless ? new Date(y, mo - 1, d, h, mi, sec).getTime() : Date.UTC(y, mo - 1, d, h, mi, sec)) - Date.now();
      this.zoneAfterSet = zoneless ? 'local' : 'Z';
      return { code: Rc.OK };
    }
    const vendor = this.values.get(prop);
    if (!vendor) return { code: Rc.DevicePropNotSupported };
    if (!vendor.writable) return { code: Rc.AccessDenied };
    let value: number | string | null;
    try {
      value = decode(vendor.dataType);
    } catch {
      return { code: Rc.InvalidDevicePropFormat };
    }
    if (value === null) return { code: Rc.InvalidDevicePropFormat };
    const form = vendor.form ?? { kind: 'none' };
    if (form.kind === 'range' && typeof value === 'number' && (value < Number(form.min) || value > Number(form.max)))
      return { code: Rc.InvalidDevicePropValue };
    if (form.kind === 'enum' && !form.values.includes(value)) return { code: Rc.InvalidDevicePropValue };
    vendor.value = value;
    return { code: Rc.OK };
  }
}
