/**
 * This dock's state document, read from its own store. Cheap enough to build every publish
 * interval: bounded queries, and a camera's battery series is recomputed only when it has new
 * samples.
 */
import { statfsSync, existsSync } from 'node:fs';
import path from 'node:path';
import type { Db } from '../store/db.js';
import { recentCameras } from '../store/cameras.js';
import { chainHead } from '../store/checkpoints.js';
import { queueCounts } from '../store/recordings.js';
import { replicationBacklog } from '../store/replication-jobs.js';
import { verdictOf } from '../battery/fleet.js';
import { readDaemon } from '../store/heartbeat.js';
import { signCheckpoint, type DockKey } from '../crypto/signing.js';
import {
  MAX_CAMERAS,
  SERIES_BUCKET_MS,
  SERIES_POINTS,
  STATE_FORMAT,
  type BatteryLows,
  type DockCamera,
  type DockState,
} from './document.js';

/** Cameras last seen here longer ago than this are another dock's business now. */
const CAMERA_WINDOW_MS = 30 * 86_400_000;

export interface StateInputs {
  dockId: string;
  version: string;
  startedAt: string;
  publishIntervalMs: number;
  shiftHours: number;
  dataDir: string;
  key: DockKey;
}

export class DockStateBuilder {
  private readonly series = new Map<string, { lastAt: number; count: number; lows: BatteryLows | null }>();

  constructor(
    private readonly db: Db,
    private readonly inputs: StateInputs,
  ) {}

  build(now = new Date(), stoppedAt: string | null = null): DockState {
    const db = this.db;
    const since = new Date(now.getTime() - CAMERA_WINDOW_MS).toISOString();
    const rows = recentCameras(db, since, MAX_CAMERAS);
    const cameras: DockCamera[] = rows.map((r) => {
      const v = verdictOf(db, r, this.inputs.shiftHours);
      const reading = r.battery_json ? (JSON.parse(r.battery_json) as { percent?: number; charging?: boolean }) : null;
      return {
        serial: r.serial,
        model: r.model,
        // A stopped dock holds no camera, whatever its last rows say.
        docked: stoppedAt === null && r.docked === 1,
        lastSeenAt: r.last_seen,
        clockSkewSeconds: r.clock_skew_s,
        battery: v
          ? {
              status: v.status,
              percent: reading?.percent ?? v.percent,
              charging: reading?.charging ?? v.charging,
              healthPercent: v.healthPercent,
              projectedRuntimeHours: v.projectedRuntimeHours,
              drainPercentPerHour: v.drainPercentPerHour,
            }
          : null,
        batteryLows: this.lowsOf(r.serial),
      };
    });
    const head = chainHead(db);
    const key = this.inputs.key;
    return {
      format: STATE_FORMAT,
      dockId: this.inputs.dockId,
      version: this.inputs.version,
      startedAt: this.inputs.startedAt,
      publishedAt: now.toISOString(),
      heartbeatAt: readDaemon(db)?.heartbeat_at ?? null,
      stoppedAt,
      publishIntervalMs: this.inputs.publishIntervalMs,
      shiftHours: this.inputs.shiftHours,
      docked: cameras.filter((c) => c.docked).map((c) => c.serial),
      queue: queueCounts(db),
      replication: replicationBacklog(db),
      archive: { freeBytes: freeBytes(this.inputs.dataDir) },
      cameras,
      // Signed here, not read from the checkpoints: the head as of this document, whatever the
      // checkpoint interval, and no write to a store that may be refusing writes.
      custodyHead: head
        ? { seq: head.seq, hash: head.hash, signature: signCheckpoint(key, head.seq, head.hash), keyId: key.keyId }
        : null,
      publicKey: key.publicKeyB64,
    };
  }

  /** 3-hour lows over the week before the camera's latest sample at this dock. */
  private lowsOf(serial: string): BatteryLows | null {
    const last = this.db
      .prepare<[string], { at: number | null; n: number }>(
        'SELECT max(at) at, count(*) n FROM battery_samples WHERE camera = ?',
      )
      .get(serial);
    if (!last?.at) return null;
    const kept = this.series.get(serial);
    if (kept && kept.lastAt === last.at && kept.count === last.n) return kept.lows;
    const to = Math.floor(last.at / SERIES_BUCKET_MS) * SERIES_BUCKET_MS;
    const from = to - (SERIES_POINTS - 1) * SERIES_BUCKET_MS;
    const percent: Array<number | null> = new Array(SERIES_POINTS).fill(null);
    const rows = this.db
      .prepare<[number, number, string, number], { b: number; p: number }>(
        'SELECT (at / ?) * ? b, min(percent) p FROM battery_samples WHERE camera = ? AND at >= ? GROUP BY b',
      )
      .all(SERIES_BUCKET_MS, SERIES_BUCKET_MS, serial, from);
    for (const r of rows) {
      const i = Math.round((r.b - from) / SERIES_BUCKET_MS);
      if (i >= 0 && i < SERIES_POINTS) percent[i] = Math.round(r.p);
    }
    const first = percent.findIndex((p) => p !== null);
    const lows = first < 0 ? null : { from: from + first * SERIES_BUCKET_MS, percent: percent.slice(first) };
    this.series.set(serial, { lastAt: last.at, count: last.n, lows });
    return lows;
  }
}

function freeBytes(dataDir: string): number | null {
  const archive = path.join(dataDir, 'archive');
  if (!existsSync(archive)) return null;
  try {
    const st = statfsSync(archive);
    return st.bavail * st.bsize;
  } catch {
    return null;
  }
}
