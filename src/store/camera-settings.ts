/**
 * Camera configuration as the store keeps it: each camera's reported settings and pending
 * differences, the profiles it ran, and its own event log stored once with true times.
 */
import type { Db } from './db.js';

export type SettingValue = string | number | boolean;
export type Settings = Record<string, SettingValue>;

/** A setting that still differs from the camera's profile, and why. */
export interface PendingSetting {
  wanted: SettingValue | null;
  reported?: SettingValue | null;
  reason: string;
}

export interface CameraSettingsRecord {
  camera: string;
  /** null: the camera reports no settings. */
  settings: Settings | null;
  profile: string | null;
  pending: Record<string, PendingSetting>;
  configuredAt: string | null;
  reportedAt: string;
}

interface SettingsRow {
  camera: string;
  settings_json: string | null;
  profile: string | null;
  pending_json: string;
  configured_at: string | null;
  reported_at: string;
}

function fromRow(r: SettingsRow): CameraSettingsRecord {
  return {
    camera: r.camera,
    settings: r.settings_json === null ? null : (JSON.parse(r.settings_json) as Settings),
    profile: r.profile,
    pending: JSON.parse(r.pending_json) as Record<string, PendingSetting>,
    configuredAt: r.configured_at,
    reportedAt: r.reported_at,
  };
}

export function cameraSettings(db: Db, serial?: string): CameraSettingsRecord[] {
  const rows =
    serial === undefined
      ? db.prepare<[], SettingsRow>('SELECT * FROM camera_settings ORDER BY camera').all()
      : db.prepare<[string], SettingsRow>('SELECT * FROM camera_settings WHERE camera = ?').all(serial);
  return rows.map(fromRow);
}

/** Keeps this docking's view; `configuredAt` null keeps the time of the last configuration. */
export function saveCameraSettings(db: Db, rec: CameraSettingsRecord): void {
  db.prepare(
    `INSERT INTO camera_settings (camera, settings_json, profile, pending_json, configured_at, reported_at)
     VALUES (@camera, @settings, @profile, @pending, @configuredAt, @reportedAt)
     ON CONFLICT(camera) DO UPDATE SET settings_json = @settings, profile = @profile, pending_json = @pending,
       configured_at = coalesce(@configuredAt, configured_at), reported_at = @reportedAt`,
  ).run({
    camera: rec.camera,
    settings: rec.settings === null ? null : JSON.stringify(rec.settings),
    profile: rec.profile,
    pending: JSON.stringify(rec.pending),
    configuredAt: rec.configuredAt,
    reportedAt: rec.reportedAt,
  });
}

export interface ProfilePeriod {
  /** From this time on (dock clock, ms) until the next period. */
  from: number;
  profile: string;
}

export function profileHistory(db: Db, serial: string): ProfilePeriod[] {
  return db
    .prepare<[string], { at: number; profile: string }>(
      'SELECT at, profile FROM camera_profile_history WHERE camera = ? ORDER BY at, id',
    )
    .all(serial)
    .map((r) => ({ from: r.at, profile: r.profile }));
}

/** Records that the camera runs `profile` from `at` on, unless that is already its last one. */
export function noteProfile(db: Db, serial: string, profile: string, at: number): boolean {
  const last = db
    .prepare<[string], { profile: string }>(
      'SELECT profile FROM camera_profile_history WHERE camera = ? ORDER BY at DESC, id DESC LIMIT 1',
    )
    .get(serial);
  if (last?.profile === profile) return false;
  db.prepare('INSERT INTO camera_profile_history (camera, at, profile) VALUES (?, ?, ?)').run(serial, at, profile);
  return true;
}

export interface StoredCameraEvent {
  /** True time, dock clock, ms. */
  at: number;
  /** The camera's own timestamp, ms. */
  cameraAt: number;
  type: string;
}

/** Stores the entries not stored before (by camera timestamp and type); returns how many were new. */
export function storeCameraEvents(db: Db, serial: string, visit: number, events: readonly StoredCameraEvent[]): number {
  const insert = db.prepare(
    'INSERT OR IGNORE INTO camera_events (camera, at, camera_at, type, visit) VALUES (?, ?, ?, ?, ?)',
  );
  return db.transaction(() => {
    let added = 0;
    for (const e of events) added += insert.run(serial, e.at, e.cameraAt, e.type, visit).changes;
    return added;
  })();
}

export function* cameraEvents(db: Db, serial: string): IterableIterator<{ at: number; type: string }> {
  yield* db
    .prepare<[string], { at: number; type: string }>(
      'SELECT at, type FROM camera_events WHERE camera = ? ORDER BY at, id',
    )
    .iterate(serial);
}

/**
 * Entries whose true time is before `cutoff`, in batches, by the same rule as battery samples.
 * An abort stops it between batches: what is left is old and goes at the next sweep.
 */
export async function pruneCameraEvents(db: Db, cutoff: number, signal?: AbortSignal, batch = 5000): Promise<number> {
  if (cutoff <= 0) return 0;
  const del = db.prepare<[number, number]>(
    'DELETE FROM camera_events WHERE id IN (SELECT id FROM camera_events WHERE at < ? LIMIT ?)',
  );
  let deleted = 0;
  for (;;) {
    const n = del.run(cutoff, batch).changes;
    deleted += n;
    if (n < batch || signal?.aborted) return deleted;
    await new Promise((r) => setImmediate(r));
  }
}
