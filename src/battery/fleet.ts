/**
 * The battery model applied to what the store holds: one camera's samples in, its health out.
 * Shared by `dockd battery`, `dockd status` and the daemon's once-per-visit alerts.
 */
import { cameraBatteryJson, cameraSerials, storeBatteryVerdict, storedBatteryVerdicts } from '../store/cameras.js';
import type { Db } from '../store/db.js';
import { assessBattery, type BatteryHealth, type BatterySample } from './model.js';
import { formatBatteryHealth, type BatteryHealthView } from './format.js';

export interface CameraBattery extends BatteryHealthView {
  serial: string;
  percent: number | null;
  charging: boolean | null;
}

interface Row {
  at: number;
  percent: number;
  charging: number;
  source: 'dock' | 'device';
  visit: number;
}

export function cameraSamples(db: Db, serial: string, since = 0): BatterySample[] {
  return db
    .prepare<[string, number], Row>(
      'SELECT at, percent, charging, source, visit FROM battery_samples WHERE camera = ? AND at >= ? ORDER BY at',
    )
    .all(serial, since)
    .map((r) => ({ at: r.at, percent: r.percent, charging: r.charging === 1, source: r.source, visit: r.visit }));
}

export function cameraHealth(
  db: Db,
  serial: string,
  shiftHours: number,
  since = 0,
): { health: BatteryHealth; view: CameraBattery } {
  const samples = cameraSamples(db, serial, since);
  const latestHealth = db
    .prepare<[string], { health_percent: number }>(
      'SELECT health_percent FROM battery_samples WHERE camera = ? AND health_percent IS NOT NULL ORDER BY at DESC LIMIT 1',
    )
    .get(serial)?.health_percent;
  const now = cameraBatteryJson(db, serial);
  const reading = now?.battery_json ? (JSON.parse(now.battery_json) as { percent: number; charging: boolean }) : null;
  const health = assessBattery({ samples, healthPercent: latestHealth ?? null, shiftHours });
  return {
    health,
    view: {
      serial,
      percent: reading?.percent ?? health.latest?.percent ?? null,
      charging: reading?.charging ?? health.latest?.charging ?? null,
      ...formatBatteryHealth(health),
    },
  };
}

export const FLEET_WINDOW_DAYS = 30;

/**
 * One camera judged on its recent history only: a year of minute samples must not make a
 * docking or `dockd status` slow, and an ageing battery shows in recent shifts.
 */
export function recentHealth(
  db: Db,
  serial: string,
  shiftHours: number,
): { health: BatteryHealth; view: CameraBattery } {
  const last =
    db.prepare<[string], { at: number | null }>('SELECT max(at) at FROM battery_samples WHERE camera = ?').get(serial)
      ?.at ?? 0;
  return cameraHealth(db, serial, shiftHours, Math.max(0, last - FLEET_WINDOW_DAYS * 86_400_000));
}

export function fleetBattery(db: Db, shiftHours: number): CameraBattery[] {
  return cameraSerials(db).map((serial) => recentHealth(db, serial, shiftHours).view);
}

interface StoredVerdict {
  shiftHours: number;
  view: CameraBattery;
}

/** Keeps the camera's verdict of this docking for `fleetVerdicts`. */
export function storeVerdict(db: Db, serial: string, shiftHours: number, view: CameraBattery): void {
  const v: StoredVerdict = { shiftHours, view };
  storeBatteryVerdict(db, serial, JSON.stringify(v));
}

/**
 * The fleet as of each camera's last docking, for `dockd status`: the verdict the daemon stored
 * then, else (a store from before verdicts were kept, or another shift length) judged now.
 * Judging 20 cameras from a month of samples each took `dockd status` past 200 ms on its own;
 * a battery's verdict changes over shifts, not between two docked minutes.
 */
export function fleetVerdicts(db: Db, shiftHours: number): CameraBattery[] {
  return storedBatteryVerdicts(db).map((r) => verdictOf(db, r, shiftHours));
}

/** One camera's verdict as stored at its last docking, else judged now. */
export function verdictOf(
  db: Db,
  r: { serial: string; battery_verdict_json: string | null },
  shiftHours: number,
): CameraBattery {
  if (r.battery_verdict_json) {
    try {
      const v = JSON.parse(r.battery_verdict_json) as StoredVerdict;
      if (v.shiftHours === shiftHours && v.view?.serial === r.serial) return v.view;
    } catch {
      // judged afresh below
    }
  }
  return recentHealth(db, r.serial, shiftHours).view;
}
