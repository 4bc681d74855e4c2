/**
 * Which device properties hold a PTP camera's settings, per model. PTP standardises only a few
 * properties (DateTime, BatteryLevel); a body camera's pre-record length, resolution or display
 * brightness are vendor properties (0xD000..0xDFFF) whose codes and meaning only the vendor can
 * give. A camera without a row here reports no settings and is never written to.
 *
 * A row is matched like the quirk table, by USB VID:PID, or else by the model DeviceInfo names
 * (case-insensitive). docs/camera-settings.md ("PTP/MTP cameras") explains how to add one.
 */
import { DataType } from './constants.js';
import { deviceRowFor, type DeviceRow } from '../device-table.js';

/** The PTP data types a setting may have; the camera's DevicePropDesc must say the same. */
export type PtpSettingType = 'INT8' | 'UINT8' | 'INT16' | 'UINT16' | 'INT32' | 'UINT32' | 'STR';

export const SETTING_DATA_TYPES: Readonly<Record<PtpSettingType, number>> = {
  INT8: DataType.INT8,
  UINT8: DataType.UINT8,
  INT16: DataType.INT16,
  UINT16: DataType.UINT16,
  INT32: DataType.INT32,
  UINT32: DataType.UINT32,
  STR: DataType.STR,
};

/**
 * How a setting's value maps to the property's raw value. Without one, the raw value is the
 * setting (a number, or a string for STR).
 * - `enum`: setting value (what a profile says, e.g. `"1080p"`) → raw value; a raw value the map
 *   does not name is reported as the raw number.
 * - `range`: the values the vendor documents; the camera's own DevicePropDesc is checked too.
 * - `boolean`: the raw values meaning true and false.
 */
export type PtpSettingValues =
  | { enum: Readonly<Record<string, number | string>> }
  | { range: { min: number; max: number } }
  | { boolean: { true: number; false: number } };

export interface PtpSettingSpec {
  /** The device property code, 0xD000..0xDFFF for a vendor's own. */
  code: number;
  type: PtpSettingType;
  values?: PtpSettingValues;
}

/** A row: the model it is for, by USB VID:PID or by the model string of DeviceInfo. */
export interface PtpSettingProfile extends DeviceRow {
  /**
   * The camera restarts its recorder or remounts its storage when one of these properties
   * changes: dockd then writes them only once every recording is off the camera.
   */
  disturbsRecordings?: boolean;
  settings: Readonly<Record<string, PtpSettingSpec>>;
}

export const PTP_SETTING_PROFILES: readonly PtpSettingProfile[] = [
  {
    // pid.codes' test VID:PID, so the example can never match a real camera by accident.
    vendorId: 0x1209,
    productId: 0x0001,
    device: 'Example body camera (hypothetical vendor "Acme BWC-1"), for documentation and tests',
    source: 'made up: a real row takes its codes, types and values from the vendor',
    settings: {
      preRecordSeconds: { code: 0xd001, type: 'UINT16', values: { range: { min: 0, max: 120 } } },
      resolution: { code: 0xd002, type: 'UINT8', values: { enum: { '720p': 1, '1080p': 2, '1440p': 3 } } },
      displayBrightness: { code: 0xd003, type: 'UINT8', values: { range: { min: 0, max: 100 } } },
      wifi: { code: 0xd004, type: 'UINT8', values: { boolean: { true: 1, false: 0 } } },
      unitName: { code: 0xd005, type: 'STR' },
      firmwareChannel: { code: 0xd006, type: 'STR' },
    },
  },
];

/** The row for a device: VID:PID first, then the model; null when none. */
export function settingProfileFor(
  device: { vendorId?: number; productId?: number; model: string },
  table: readonly PtpSettingProfile[] = PTP_SETTING_PROFILES,
): PtpSettingProfile | null {
  return deviceRowFor(table, device)?.row ?? null;
}
