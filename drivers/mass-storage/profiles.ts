/**
 * Which files on a mass-storage camera's volume hold its settings, its clock and its event log,
 * per model. Nothing about them is standard: a camera that docks as a disk reads its settings
 * from a file its vendor named and formatted, and only the vendor can say which. A camera without
 * a row here is only offloaded; dockd never writes to its volume except to delete recordings.
 *
 * A row is matched like drivers match devices: by USB VID:PID, or else by the model (the USB
 * product string), case-insensitive; `usb.massStorage.profiles` in the config can give a row to a
 * VID:PID the table does not name. docs/camera-settings.md ("Mass-storage cameras") explains the
 * formats and how to add a row.
 */
import { deviceRowFor, type DeviceRow } from '../device-table.js';

/** How one setting is spelt in a `key=value` settings file, and which values the camera takes. */
export type MassStorageSettingSpec =
  /** A whole number in `min..max`, written in decimal. */
  | { type: 'integer'; min: number; max: number }
  /** true/false, written as the camera spells them (`on`/`off`, `1`/`0`). */
  | { type: 'boolean'; true: string; false: string }
  /** One of a few words, written as they are. */
  | { type: 'enum'; values: readonly string[] }
  /** Printable ASCII, at most `maxLength` characters. */
  | { type: 'string'; maxLength: number };

/** A row: the model it is for, by USB VID:PID or by the USB product string. */
export interface MassStorageProfile extends DeviceRow {
  /** What `usb.massStorage.profiles` and the logs call the row. */
  name: string;
  /**
   * The camera remounts or rescans its storage when its settings file changes: dockd then
   * writes it only once every recording is off the camera.
   */
  disturbsRecordings?: boolean;
  /** The camera's settings, one `key=value` a line; only the keys named here are read or written. */
  settingsFile?: {
    path: string;
    format: 'key=value';
    settings: Readonly<Record<string, MassStorageSettingSpec>>;
  };
  /**
   * The camera's clock at the moment it was connected, as local time `YYYY-MM-DD HH:MM:SS`: the
   * camera writes its own there when it is connected, and sets its clock from it when it is
   * unplugged, adding the time it spent connected.
   */
  timeFile?: { path: string; format: 'YYYY-MM-DD HH:MM:SS' };
  /** The camera's event log: `YYYY-MM-DD HH:MM:SS,type` a line, local time on the camera's clock. */
  eventLog?: { path: string; format: 'timestamp,type' };
}

export const MASS_STORAGE_PROFILES: readonly MassStorageProfile[] = [
  {
    name: 'example-bwc-m',
    // pid.codes' test VID:PID, so the example can never match a real camera by accident.
    vendorId: 0x1209,
    productId: 0x0001,
    device: 'Example mass-storage body camera (hypothetical vendor "Acme BWC-M"), for documentation and tests',
    source: 'made up: a real row takes its file names, formats and values from the vendor',
    settingsFile: {
      path: 'SETTINGS.TXT',
      format: 'key=value',
      settings: {
        preRecordSeconds: { type: 'integer', min: 0, max: 120 },
        resolution: { type: 'enum', values: ['720p', '1080p', '1440p'] },
        displayBrightness: { type: 'integer', min: 0, max: 100 },
        wifi: { type: 'boolean', true: 'on', false: 'off' },
        unitName: { type: 'string', maxLength: 32 },
      },
    },
    timeFile: { path: 'TIME.TXT', format: 'YYYY-MM-DD HH:MM:SS' },
    eventLog: { path: 'EVENTS.LOG', format: 'timestamp,type' },
  },
];

export interface ProfileMatch {
  profile: MassStorageProfile;
  /** `config 1209:0001`, `VID:PID 1209:0001` or `model "BWC-M"`, for the log. */
  matchedBy: string;
}

const VID_PID = /^([0-9a-f]{4}):([0-9a-f]{4})$/i;

export function vidPid(vendorId: number, productId: number): string {
  return `${vendorId.toString(16).padStart(4, '0')}:${productId.toString(16).padStart(4, '0')}`;
}

/** `"1209:0001"` as a `usb.massStorage.profiles` key names it, lower case; null for anything else. */
export function parseVidPidKey(key: string): string | null {
  return VID_PID.exec(key.trim())?.slice(1).join(':').toLowerCase() ?? null;
}

/**
 * The row for a device: a `usb.massStorage.profiles` entry for its VID:PID first, then the
 * table's VID:PID, then its model; null when none.
 */
export function massStorageProfileFor(
  device: { vendorId?: number; productId?: number; model: string },
  assigned: Readonly<Record<string, string>> = {},
  table: readonly MassStorageProfile[] = MASS_STORAGE_PROFILES,
): ProfileMatch | null {
  const { vendorId, productId } = device;
  if (vendorId !== undefined && productId !== undefined) {
    const id = vidPid(vendorId, productId);
    for (const [key, name] of Object.entries(assigned)) {
      if (parseVidPidKey(key) !== id) continue;
      const profile = table.find((p) => p.name === name);
      if (profile) return { profile, matchedBy: `config ${id}` };
    }
  }
  const found = deviceRowFor(table, device);
  if (!found) return null;
  const matchedBy =
    found.by === 'VID:PID' ? `VID:PID ${vidPid(vendorId!, productId!)}` : `model "${device.model.trim()}"`;
  return { profile: found.row, matchedBy };
}

/** Every file a row names, as `/`-separated paths relative to the volume root. */
export function profileFiles(profile: MassStorageProfile): string[] {
  return [profile.settingsFile?.path, profile.timeFile?.path, profile.eventLog?.path].filter(
    (p): p is string => p !== undefined,
  );
}
