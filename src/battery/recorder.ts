/**
 * Stores battery samples: what the camera reports at docking, while docked and at undocking, and
 * the camera's own battery log with its times corrected by the measured clock skew.
 */
import type { BatteryReading } from '../../drivers/types.js';
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
}
