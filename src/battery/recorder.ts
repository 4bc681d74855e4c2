/**
 * Stores battery samples: what the camera reports at docking, while docked and at undocking, and
 * the camera's own battery log with its times corrected by the measured clock skew.
 */
import type { BatteryReading, DeviceLogEntry } from '../../drivers/types.js';
import { newDeviceSamples } from './device-log.js';
import type { Db } from '../store/db.js';

export class BatteryRecorder {
  private readonly insert;

  constructor(private readonly db: Db) {
    this.insert = db.prepare(
      `INSERT INTO battery_samples (camera, at, percent, charging, voltage, temperature_c, health_percent, cycle_count, source, visit)
       VALUES (@camera, @at, @percent, @charging, @voltage, @temperatureC, @healthPercent, @cycleCount, @source, @visit)`,
    );
  }

  sample(camera: string, visit: number, reading: BatteryReading, at = Date.now()): void {
    this.insert.run({
      camera,
      at,
      percent: reading.percent,
      charging: reading.charging ? 1 : 0,
      voltage: reading.voltage ?? null,
      temperatureC: reading.temperatureC ?? null,
      healthPercent: reading.healthPercent ?? null,
      cycleCount: reading.cycleCount ?? null,
      source: 'dock',
      visit,
    });
  }

  /**
   * Adds the camera's own log entries not stored at an earlier visit, with times moved onto the
   * dock's clock by the skew measured at this docking. Returns how many were new.
   */
  ingestDeviceLog(camera: string, visit: number, log: DeviceLogEntry[], clockOffsetSeconds: number): number {
    const battery = log.filter((e) => e.type === 'battery');
    if (battery.length === 0) return 0;
    const stored = this.db
      .prepare<[string], { at: number; percent: number; charging: number }>("SELECT at, percent, charging FROM battery_samples WHERE camera = ? AND source = 'device'")
      .all(camera)
      .map((r) => ({ at: r.at, percent: r.percent, charging: r.charging === 1 }));
    const fresh = newDeviceSamples(stored, battery, clockOffsetSeconds);
    this.db.transaction(() => {
      for (const s of fresh) {
        this.insert.run({ camera, at: s.at, percent: s.percent, charging: s.charging ? 1 : 0, voltage: null, temperatureC: null, healthPercent: null, cycleCount: null, source: 'device', visit });
      }
    }).immediate();
    return fresh.length;
  }
}
