/**
 * Stores battery samples: what the camera reports at docking, while docked and at undocking, and
 * the camera's own battery log with its times corrected by the measured clock skew.
 */
import type { BatteryReading, DeviceLogEntry } from '../../drivers/types.js';
import { newDeviceSamples } from './device-log.js';
import type { Db } from '../store/db.js';
import { cameraSerials } from '../store/cameras.js';

/** Samples deleted per statement, so that a first prune of years of them never holds the store for long. */
const PRUNE_BATCH = 5000;

export class BatteryRecorder {
  private readonly insert;

  /** `keepDays` 0 keeps every sample. */
  constructor(
    private readonly db: Db,
    private readonly keepDays = 0,
  ) {
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
    const earliest = this.cutoff();
    // An entry handed again keeps its camera timestamp whatever the skew is now (the contract).
    const known = new Set(
      this.db
        .prepare<[string, number], { camera_at: number; percent: number; charging: number }>(
          "SELECT camera_at, percent, charging FROM battery_samples WHERE camera = ? AND source = 'device' AND at >= ? AND camera_at IS NOT NULL",
        )
        .all(camera, earliest)
        .map((r) => `${r.camera_at}|${r.percent}|${r.charging}`),
    );
    const battery = log.filter(
      (e) =>
        e.type === 'battery' &&
        !known.has(`${e.at instanceof Date ? e.at.getTime() : NaN}|${e.percent}|${e.charging ? 1 : 0}`),
    );
    if (battery.length === 0) return 0;
    const stored = this.db
      .prepare<[string, number], { at: number; percent: number; charging: number }>(
        "SELECT at, percent, charging FROM battery_samples WHERE camera = ? AND source = 'device' AND at >= ?",
      )
      .all(camera, earliest)
      .map((r) => ({ at: r.at, percent: r.percent, charging: r.charging === 1 }));
    const fresh = newDeviceSamples(stored, battery, clockOffsetSeconds, { earliest });
    const insert = this.db.prepare(
      `INSERT INTO battery_samples (camera, at, percent, charging, source, visit, camera_at) VALUES (@camera, @at, @percent, @charging, 'device', @visit, @cameraAt)`,
    );
    this.db
      .transaction(() => {
        for (const s of fresh) {
          insert.run({
            camera,
            at: s.at,
            percent: s.percent,
            charging: s.charging ? 1 : 0,
            visit,
            cameraAt: Math.round(s.at + clockOffsetSeconds * 1000),
          });
        }
      })
      .immediate();
    return fresh.length;
  }

  /** The oldest sample time kept (dock clock); 0 when every sample is kept. */
  cutoff(now = Date.now()): number {
    return this.keepDays > 0 ? now - this.keepDays * 86_400_000 : 0;
  }

  /**
   * Deletes samples older than `keepDays`: a dock samples each camera every minute it is docked,
   * and unpruned that grows the store by gigabytes a year for a fleet. The health verdicts look at
   * the last 30 days. Deleted per camera and in batches, each its own short transaction, with the
   * event loop let go in between; an abort stops it between batches (what is left goes at the
   * next sweep). Returns how many were deleted.
   */
  async prune(now = Date.now(), signal?: AbortSignal): Promise<number> {
    const cutoff = this.cutoff(now);
    if (cutoff === 0) return 0;
    const cameras = cameraSerials(this.db);
    const del = this.db.prepare<[string, number, number]>(
      'DELETE FROM battery_samples WHERE id IN (SELECT id FROM battery_samples WHERE camera = ? AND at < ? LIMIT ?)',
    );
    let deleted = 0;
    for (const serial of cameras) {
      for (;;) {
        const n = del.run(serial, cutoff, PRUNE_BATCH).changes;
        deleted += n;
        if (n < PRUNE_BATCH) break;
        if (signal?.aborted) return deleted;
        await new Promise((r) => setImmediate(r));
      }
    }
    return deleted;
  }
}
