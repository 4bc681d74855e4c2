/**
 * A camera's rows in `cameras` as it docks, reports its battery and leaves, each with its custody
 * event in the same transaction. `alsoInTx` lets the caller add what belongs to the same moment
 * (the battery sample of that docking) to that transaction.
 */
import type { Db } from './db.js';
import type { CustodyLog } from './custody-log.js';

export interface Docking {
  serial: string;
  model: string;
  firmware: string;
  slot: string;
  at: Date;
  clockSkewSeconds: number | null;
  battery: unknown;
  /** What `camera.docked` records besides (bus, driver, …). */
  details: Record<string, unknown>;
}

export class CameraStore {
  private readonly s;

  constructor(
    private readonly db: Db,
    private readonly custody: CustodyLog,
  ) {
    this.s = {
      visit: db.prepare<[string], { visit: number }>('SELECT visit FROM cameras WHERE serial = ?'),
      upsert: db.prepare(
        `INSERT INTO cameras (serial, model, firmware, slot, docked, first_seen, last_seen, docked_at, clock_skew_s, battery_json, visit)
         VALUES (@serial, @model, @firmware, @slot, 1, @now, @now, @now, @skew, @battery, 1)
         ON CONFLICT(serial) DO UPDATE SET model = @model, firmware = @firmware, slot = @slot, docked = 1, last_seen = @now,
           docked_at = @now, clock_skew_s = @skew, battery_json = @battery, visit = visit + 1`,
      ),
      undock: db.prepare('UPDATE cameras SET docked = 0, last_seen = ? WHERE serial = ?'),
      battery: db.prepare('UPDATE cameras SET battery_json = ?, last_seen = ? WHERE serial = ?'),
      docked: db.prepare<[], { serial: string; slot: string }>('SELECT serial, slot FROM cameras WHERE docked = 1'),
      forceUndock: db.prepare('UPDATE cameras SET docked = 0 WHERE serial = ?'),
    };
  }

  /** The number this docking will have: visits count from 1 per camera. */
  nextVisit(serial: string): number {
    return (this.s.visit.get(serial)?.visit ?? 0) + 1;
  }

  docked(d: Docking, visit: number, alsoInTx?: () => void): void {
    this.db
      .transaction(() => {
        this.s.upsert.run({
          serial: d.serial,
          model: d.model,
          firmware: d.firmware,
          slot: d.slot,
          now: d.at.toISOString(),
          skew: d.clockSkewSeconds,
          battery: d.battery ? JSON.stringify(d.battery) : null,
        });
        alsoInTx?.();
        this.custody.append({
          type: 'camera.docked',
          camera: d.serial,
          at: d.at,
          details: {
            slot: d.slot,
            ...d.details,
            model: d.model,
            firmware: d.firmware,
            clockSkewSeconds: d.clockSkewSeconds,
            battery: d.battery,
            visit,
          },
        });
      })
      .immediate();
  }

  batteryRead(serial: string, reading: unknown, at: number, alsoInTx?: () => void): void {
    this.db
      .transaction(() => {
        alsoInTx?.();
        this.s.battery.run(JSON.stringify(reading), new Date(at).toISOString(), serial);
      })
      .immediate();
  }

  undocked(serial: string, at: Date, details: Record<string, unknown>, alsoInTx?: () => void): void {
    this.db
      .transaction(() => {
        this.s.undock.run(at.toISOString(), serial);
        alsoInTx?.();
        this.custody.append({ type: 'camera.undocked', camera: serial, at, details });
      })
      .immediate();
  }

  /** A camera refused because its serial is docked in another slot that still answers. */
  serialConflict(serial: string, details: Record<string, unknown>): void {
    this.custody.record({ type: 'camera.serial_conflict', camera: serial, details });
  }

  /** At start-up, cameras a crash left marked docked: none is until it docks again. */
  undockAllAfterRestart(): number {
    return this.db
      .transaction(() => {
        const docked = this.s.docked.all();
        for (const cam of docked) {
          this.s.forceUndock.run(cam.serial);
          this.custody.append({
            type: 'camera.undocked',
            camera: cam.serial,
            details: { slot: cam.slot, reason: 'daemon restarted' },
          });
        }
        return docked.length;
      })
      .immediate();
  }
}

/** Keeps the battery verdict of the camera's last docking, for `dockd status`. */
export function storeBatteryVerdict(db: Db, serial: string, verdictJson: string): void {
  db.prepare('UPDATE cameras SET battery_verdict_json = ? WHERE serial = ?').run(verdictJson, serial);
}

/** A row of `cameras` as `dockd cameras` lists it. */
export interface CameraRow {
  serial: string;
  model: string;
  firmware: string;
  slot: string;
  docked: number;
  first_seen: string;
  last_seen: string;
  clock_skew_s: number | null;
  battery_json: string | null;
  visit: number;
}

/** Every camera ever seen, by serial. */
export function camerasBySerial(db: Db): CameraRow[] {
  return db.prepare<[], CameraRow>('SELECT * FROM cameras ORDER BY serial').all();
}

/** Whether the store knows the camera: it docked, or custody names it (assigned before it ever docked). */
export function cameraKnown(db: Db, serial: string): boolean {
  return !!db
    .prepare('SELECT 1 FROM cameras WHERE serial = ? UNION ALL SELECT 1 FROM custody_events WHERE camera = ? LIMIT 1')
    .get(serial, serial);
}

/** Whether the camera has ever docked. */
export function cameraDocked(db: Db, serial: string): boolean {
  return !!db.prepare('SELECT 1 FROM cameras WHERE serial = ?').get(serial);
}

/** The model a camera reported at its last docking; undefined for a camera never seen. */
export function cameraModel(db: Db, serial: string): { model: string } | undefined {
  return db.prepare<[string], { model: string }>('SELECT model FROM cameras WHERE serial = ?').get(serial);
}

/** Every camera's serial and model, by serial. */
export function cameraModels(db: Db): { serial: string; model: string }[] {
  return db.prepare<[], { serial: string; model: string }>('SELECT serial, model FROM cameras ORDER BY serial').all();
}

/** Every camera's serial, in order. */
export function cameraSerials(db: Db): string[] {
  return db.prepare<[], string>('SELECT serial FROM cameras ORDER BY serial').pluck().all() as unknown as string[];
}

/** A camera as `dockd status` shows it. */
export interface StatusCameraRow {
  serial: string;
  slot: string | null;
  docked: number;
  model: string | null;
  battery_json: string | null;
  visit: number;
}

/** What `dockd status` shows of each camera: docked ones first, by slot. */
export function camerasForStatus(db: Db): StatusCameraRow[] {
  return db
    .prepare<[], StatusCameraRow>(
      'SELECT serial, slot, docked, model, battery_json, visit FROM cameras ORDER BY docked DESC, slot, serial',
    )
    .all();
}

/** What the report shows of each camera besides its battery. */
export function camerasForReport(
  db: Db,
): { serial: string; model: string | null; slot: string | null; docked: number; last_seen: string }[] {
  return db
    .prepare<[], { serial: string; model: string | null; slot: string | null; docked: number; last_seen: string }>(
      'SELECT serial, model, slot, docked, last_seen FROM cameras',
    )
    .all();
}

/** A camera as the fleet's state document shows it. */
export interface RecentCameraRow {
  serial: string;
  model: string | null;
  docked: number;
  last_seen: string;
  clock_skew_s: number | null;
  battery_json: string | null;
  battery_verdict_json: string | null;
}

/** Cameras seen since `sinceIso` or docked now, docked first then newest, at most `max`. */
export function recentCameras(db: Db, sinceIso: string, max: number): RecentCameraRow[] {
  return db
    .prepare<[string, number], RecentCameraRow>(
      'SELECT serial, model, docked, last_seen, clock_skew_s, battery_json, battery_verdict_json FROM cameras WHERE last_seen >= ? OR docked = 1 ORDER BY docked DESC, last_seen DESC LIMIT ?',
    )
    .all(sinceIso, max);
}

/** The battery reading of the camera's last report, as stored (JSON); undefined for an unknown camera. */
export function cameraBatteryJson(db: Db, serial: string): { battery_json: string | null } | undefined {
  return db
    .prepare<[string], { battery_json: string | null }>('SELECT battery_json FROM cameras WHERE serial = ?')
    .get(serial);
}

/** Each camera's battery verdict of its last docking (JSON, null before verdicts were kept), by serial. */
export function storedBatteryVerdicts(db: Db): { serial: string; battery_verdict_json: string | null }[] {
  return db
    .prepare<[], { serial: string; battery_verdict_json: string | null }>(
      'SELECT serial, battery_verdict_json FROM cameras ORDER BY serial',
    )
    .all();
}
