/**
 * The fleet report as data: everything `dockd report` shows, read from the store in one go.
 * `--json` prints this object and the HTML page is a rendering of it, so what the page says is
 * what the tests check.
 */
import { existsSync, statfsSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../config.js';
import type { Db } from '../store/db.js';
import { camerasForReport } from '../store/cameras.js';
import { custodyEventCount, custodyHeadAt } from '../store/custody-log.js';
import { archiveCounts, failedRecordingsByError, offloadFailuresByClass, verifiedSince } from '../store/reports.js';
import { cameraSamples, fleetBattery, FLEET_WINDOW_DAYS, type CameraBattery } from '../battery/fleet.js';
import type { BatterySample } from '../battery/model.js';
import { isRunning, readDaemon } from '../store/heartbeat.js';
import { verifyChain } from '../custody/verify.js';
import { checkCheckpoints } from '../custody/checkpoints.js';
import { latestCheckpoint } from '../store/checkpoints.js';
import { drainByProfile, type ProfileDrain } from '../battery/profiles.js';
import { profileHistory } from '../store/camera-settings.js';
import { loadDockPublicKey } from '../crypto/signing.js';
import { stagesOf, type StagesJson } from '../stages/read.js';

const DAY_MS = 86_400_000;
export const REPORT_DAYS = 30;
/** Per camera chart; min and max of each time bucket are kept, so peaks and troughs survive. */
export const MAX_CHART_POINTS = 480;

export interface ChartPoint {
  at: number;
  percent: number;
}

export interface ReportCamera extends CameraBattery {
  model: string | null;
  slot: string | null;
  docked: boolean;
  lastSeen: string;
  /** Battery percent over the last FLEET_WINDOW_DAYS of samples, down-sampled. */
  chart: { from: number | null; to: number | null; samples: number; points: ChartPoint[] };
  /** Drain under each settings profile the camera ran within the same window. */
  byProfile: ProfileDrain[];
}

export interface ReportModel {
  generatedAt: string;
  dataDir: string;
  daemon: {
    running: boolean;
    pid: number | null;
    version: string | null;
    heartbeatAt: string | null;
    stoppedAt: string | null;
  };
  shiftHours: number;
  cameras: ReportCamera[];
  offloads: { days: Array<{ date: string; count: number; bytes: number }>; count: number; bytes: number };
  failures: {
    recordings: Array<{ error: string; count: number; cameras: string[]; example: string }>;
    events: Array<{ class: string; count: number; gaveUp: number; lastError: string | null; lastAt: string }>;
  };
  archive: {
    path: string;
    verifiedCount: number;
    verifiedBytes: number;
    freeBytes: number | null;
    totalBytes: number | null;
    pending: number;
    failed: number;
  };
  custody: {
    events: number;
    head: { seq: number; at: string } | null;
    chain: { ok: boolean; firstBadSeq: number | null; reason: string | null };
    checkpoint: { seq: number; at: string; keyId: string } | null;
    /** Events appended since the latest signed checkpoint. */
    unsigned: number;
    checkpoints: { checked: number; ok: number; bad: Array<{ seq: number; reason: string }> };
  };
  /** De-escalation statistics over every stored event log (docs/stages.md), with the delay histogram. */
  stages: StagesJson;
}

const SEVERITY: Record<string, number> = { short: 0, degraded: 1, unknown: 2, ok: 3 };

export function buildReport(db: Db, cfg: Config, now = Date.now()): ReportModel {
  const d = readDaemon(db);
  const running = isRunning(d, now);
  return {
    generatedAt: new Date(now).toISOString(),
    dataDir: cfg.dataDir,
    daemon: {
      running,
      pid: d?.pid ?? null,
      version: d?.version ?? null,
      heartbeatAt: d?.heartbeat_at ?? null,
      stoppedAt: d?.stopped_at ?? null,
    },
    shiftHours: cfg.battery.shiftHours,
    cameras: cameras(db, cfg.battery.shiftHours, running),
    offloads: offloads(db, now),
    failures: failures(db),
    archive: archive(db, cfg.dataDir),
    custody: custody(db, cfg.dataDir),
    stages: stagesOf(db, { from: null, to: null, minGroupSize: cfg.privacy.minGroupSize, delays: true }),
  };
}

function cameras(db: Db, shiftHours: number, running: boolean): ReportCamera[] {
  const rows = new Map(camerasForReport(db).map((r) => [r.serial, r]));
  const newest = db.prepare<[string], { at: number | null }>('SELECT max(at) at FROM battery_samples WHERE camera = ?');
  return fleetBattery(db, shiftHours)
    .map((b): ReportCamera => {
      const r = rows.get(b.serial);
      // The same window fleetBattery judges the camera on, so the chart shows what the status is from.
      const last = newest.get(b.serial)?.at ?? null;
      const samples = last === null ? [] : cameraSamples(db, b.serial, Math.max(0, last - FLEET_WINDOW_DAYS * DAY_MS));
      return {
        ...b,
        model: r?.model ?? null,
        slot: r?.slot ?? null,
        // The docked flag is only as fresh as the daemon that set it.
        docked: running && r?.docked === 1,
        lastSeen: r?.last_seen ?? '',
        chart: {
          from: samples[0]?.at ?? null,
          to: samples.at(-1)?.at ?? null,
          samples: samples.length,
          points: downsample(samples, MAX_CHART_POINTS),
        },
        byProfile: drainByProfile(samples, profileHistory(db, b.serial), shiftHours),
      };
    })
    .sort(
      (a, b) =>
        (SEVERITY[a.status] ?? 9) - (SEVERITY[b.status] ?? 9) ||
        (a.serial < b.serial ? -1 : a.serial > b.serial ? 1 : 0),
    );
}

/** At most `max` points: each of max/2 equal time buckets keeps its lowest and highest sample, in time order. */
export function downsample(samples: readonly BatterySample[], max: number): ChartPoint[] {
  if (samples.length <= max) return samples.map((s) => ({ at: s.at, percent: s.percent }));
  const buckets = Math.max(1, Math.floor(max / 2));
  const from = samples[0]!.at;
  const span = samples.at(-1)!.at - from || 1;
  const out: ChartPoint[] = [];
  let i = 0;
  for (let b = 0; b < buckets && i < samples.length; b++) {
    const end = b === buckets - 1 ? Infinity : from + ((b + 1) * span) / buckets;
    let lo: BatterySample | undefined;
    let hi: BatterySample | undefined;
    for (; i < samples.length && samples[i]!.at < end; i++) {
      const s = samples[i]!;
      if (!lo || s.percent < lo.percent) lo = s;
      if (!hi || s.percent > hi.percent) hi = s;
    }
    if (!lo || !hi) continue;
    for (const s of lo === hi ? [lo] : lo.at <= hi.at ? [lo, hi] : [hi, lo]) out.push({ at: s.at, percent: s.percent });
  }
  return out;
}

export function localDay(ms: number): string {
  const d = new Date(ms);
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
}

function offloads(db: Db, now: number): ReportModel['offloads'] {
  const days = new Map<string, { date: string; count: number; bytes: number }>();
  const today = new Date(now);
  // Local calendar days: the admin reads "Tuesday", not a UTC offset.
  for (let k = REPORT_DAYS - 1; k >= 0; k--) {
    const date = localDay(new Date(today.getFullYear(), today.getMonth(), today.getDate() - k, 12).getTime());
    days.set(date, { date, count: 0, bytes: 0 });
  }
  const since = new Date(today.getFullYear(), today.getMonth(), today.getDate() - (REPORT_DAYS - 1)).toISOString();
  let count = 0;
  let bytes = 0;
  for (const r of verifiedSince(db, since)) {
    const day = days.get(localDay(Date.parse(r.verified_at)));
    if (!day) continue;
    day.count++;
    day.bytes += r.bytes;
    count++;
    bytes += r.bytes;
  }
  return { days: [...days.values()], count, bytes };
}

function failures(db: Db): ReportModel['failures'] {
  const recordings = failedRecordingsByError(db).map((r) => ({
    ...r,
    cameras: (JSON.parse(r.cameras) as string[]).sort(),
  }));
  const events = offloadFailuresByClass(db).map(({ lastSeq: _, ...r }) => ({ ...r, class: r.class ?? 'unclassified' }));
  return { recordings, events };
}

function archive(db: Db, dataDir: string): ReportModel['archive'] {
  const p = path.join(dataDir, 'archive');
  // What the archive holds on disk: the ciphertext's size for recordings encrypted at rest.
  const c = archiveCounts(db);
  let freeBytes: number | null = null;
  let totalBytes: number | null = null;
  if (existsSync(p)) {
    const st = statfsSync(p);
    freeBytes = st.bavail * st.bsize;
    totalBytes = st.blocks * st.bsize;
  }
  return { path: p, ...c, freeBytes, totalBytes };
}

function custody(db: Db, dataDir: string): ReportModel['custody'] {
  const chain = verifyChain(db);
  const head = custodyHeadAt(db) ?? null;
  const cp = latestCheckpoint(db);
  const checks = checkCheckpoints(db, loadDockPublicKey(dataDir));
  return {
    events: custodyEventCount(db),
    head,
    chain: { ok: chain.ok, firstBadSeq: chain.firstBadSeq, reason: chain.reason },
    checkpoint: cp ? { seq: cp.seq, at: cp.at, keyId: cp.keyId } : null,
    unsigned: Math.max(0, (head?.seq ?? 0) - (cp?.seq ?? 0)),
    checkpoints: { checked: checks.checked, ok: checks.ok, bad: checks.bad },
  };
}
