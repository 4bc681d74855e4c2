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
