/**
 * BatteryLevel (0x5001) as a percentage. PTP leaves the scale to the camera: its
 * DevicePropDesc gives a range (often 0..100, sometimes 0..4) or an enumeration of levels.
 * Without a description the value is taken as a percentage and must look like one.
 */
import { DatasetReader } from './codec.js';
import { DeviceProp, Op } from './constants.js';
import { decodeDevicePropDesc, readPropValue, type PropValue } from './datasets.js';
import { PtpProtocolError, PtpResponseError } from './errors.js';
import type { PtpSession } from './session.js';

interface BatteryScale {
  dataType: number | null;
  min: number;
  max: number;
}

const PERCENT: BatteryScale = { dataType: null, min: 0, max: 100 };

function isNumber(x: PropValue): x is number {
  return typeof x === 'number';
}

async function batteryScale(session: PtpSession): Promise<BatteryScale> {
  let data: Uint8Array | null;
  try {
    ({ data } = await session.request(
      Op.GetDevicePropDesc,
      [DeviceProp.BatteryLevel],
      'GetDevicePropDesc BatteryLevel',
    ));
  } catch (err) {
    if (err instanceof PtpResponseError && err.kind === 'permanent') return PERCENT;
    throw err;
  }
  const desc = decodeDevicePropDesc(data ?? new Uint8Array(0));
  let bounds: number[] = [];
  if (desc.form.kind === 'range') bounds = [desc.form.min, desc.form.max].filter(isNumber);
  if (desc.form.kind === 'enum') bounds = desc.form.values.filter(isNumber);
  const min = bounds.length ? Math.min(...bounds) : 0;
  const max = bounds.length ? Math.max(...bounds) : 100;
  return { dataType: desc.dataType, ...(max > min ? { min, max } : { min: 0, max: 100 }) };
}

/** Integers of 1, 2 or 4 bytes when the camera did not describe the property. */
function readByLength(data: Uint8Array): number {
  const r = new DatasetReader(data, 'BatteryLevel');
  if (data.length === 1) return r.u8();
  if (data.length === 2) return r.u16();
  if (data.length === 4) return r.u32();
  throw new PtpProtocolError(`BatteryLevel is ${data.length} bytes long`, 'ptp-bad-battery');
}

export async function readBatteryPercent(session: PtpSession, hasDesc: boolean): Promise<number> {
  const scale = hasDesc ? await batteryScale(session) : PERCENT;
  const { data } = await session.request(
    Op.GetDevicePropValue,
    [DeviceProp.BatteryLevel],
    'GetDevicePropValue BatteryLevel',
  );
  const bytes = data ?? new Uint8Array(0);
  const value =
    scale.dataType === null
      ? readByLength(bytes)
      : readPropValue(new DatasetReader(bytes, 'BatteryLevel'), scale.dataType, 'BatteryLevel');
  if (!isNumber(value) || value < scale.min || value > scale.max) {
    throw new PtpProtocolError(
      `BatteryLevel ${String(value)} is outside ${scale.min}..${scale.max}`,
      'ptp-bad-battery',
    );
  }
  return Math.round(((value - scale.min) * 100) / (scale.max - scale.min));
}
