import { statfsSync, existsSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../config.js';
import type { Db } from '../store/db.js';
import { camerasForStatus } from '../store/cameras.js';
import { openRecordingsByCamera, queueCounts, visitCountsQuery, type QueueCounts } from '../store/recordings.js';
import { isRunning, readDaemon } from '../store/heartbeat.js';
import { replicationBacklog, replicationFailed, type Backlog } from '../store/replication-jobs.js';
import { fleetVerdicts } from '../battery/fleet.js';
import { cameraProgress, type CameraProgress, type LiveCamera } from './progress.js';
import { ago, bar, bytes, duration, printable, table } from '../lib/format.js';
import { paint, type Paint } from './terminal.js';

export interface CameraStatus {
  serial: string;
  slot: string | null;
  docked: boolean;
  model: string | null;
  battery: { percent: number; charging: boolean } | null;
  pending: number;
  failed: number;
  progress: CameraProgress | null;
}

export interface StatusJson {
  daemon: {
    running: boolean;
    pid: number | null;
    startedAt: string | null;
    heartbeatAt: string | null;
    stoppedAt: string | null;
    version: string | null;
  };
  cameras: CameraStatus[];
  queue: QueueCounts;
  /** `storeUnwritable`: why offloading is paused for the dock's own storage (read-only, failing), else null. */
  archive: { path: string; freeBytes: number | null; diskLow: boolean; storeUnwritable: string | null };
  /** Cameras refused because another docked camera reports the same serial. */
  conflicts: SerialConflict[];
  replication: (Backlog & { enabled: boolean; failed: number; lastError: string | null }) | null;
  fleet: { shiftHours: number; short: string[]; degraded: string[] };
}

export interface SerialConflict {
  serial: string;
  slot: string;
  dockedIn: string;
  since: string;
}

interface Progress {
  cameras?: LiveCamera[];
  diskLow?: boolean;
  storeUnwritable?: string | null;
  conflicts?: SerialConflict[];
  replicationError?: string | null;
}

export function statusOf(db: Db, cfg: Config): StatusJson {
  const d = readDaemon(db);
  const running = isRunning(d);
  const progress: Progress = running && d?.progress_json ? (JSON.parse(d.progress_json) as Progress) : {};
  const live = new Map((progress.cameras ?? []).map((c) => [c.serial, c]));
  const counts = new Map<string, { pending: number; failed: number }>();
  for (const r of openRecordingsByCamera(db)) {
    const c = counts.get(r.camera) ?? { pending: 0, failed: 0 };
    if (r.status === 'failed') c.failed += r.n;
    else c.pending += r.n;
    counts.set(r.camera, c);
  }
  const visitTotals = visitCountsQuery(db);
  const cams = camerasForStatus(db);
  const cameras: CameraStatus[] = cams.map((c) => {
    const docked = running && c.docked === 1;
    const battery = c.battery_json ? (JSON.parse(c.battery_json) as { percent: number; charging: boolean }) : null;
    const prog = docked
      ? cameraProgress({ visit: c.visit, ...visitTotals(c.serial, c.visit)! }, live.get(c.serial))
      : null;
    return {
      serial: c.serial,
      slot: c.slot,
      docked,
      model: c.model,
      battery: battery ? { percent: battery.percent, charging: battery.charging } : null,
      pending: counts.get(c.serial)?.pending ?? 0,
      failed: counts.get(c.serial)?.failed ?? 0,
      progress: prog,
    };
  });
  const archivePath = path.join(cfg.dataDir, 'archive');
  let freeBytes: number | null = null;
  if (existsSync(archivePath)) {
    const st = statfsSync(archivePath);
    freeBytes = st.bavail * st.bsize;
  }
  return {
    daemon: {
      running,
      pid: d?.pid ?? null,
      startedAt: d?.started_at ?? null,
      heartbeatAt: d?.heartbeat_at ?? null,
      stoppedAt: d?.stopped_at ?? null,
      version: d?.version ?? null,
    },
    cameras,
    queue: queueCounts(db),
    archive: {
      path: archivePath,
      freeBytes,
      diskLow: progress.diskLow ?? false,
      storeUnwritable: progress.storeUnwritable ?? null,
    },
    conflicts: progress.conflicts ?? [],
    replication: cfg.replication
      ? {
          enabled: true,
          ...replicationBacklog(db),
          failed: replicationFailed(db),
          lastError: progress.replicationError ?? null,
        }
      : null,
    fleet: fleetLine(db, cfg.battery.shiftHours),
  };
}

function fleetLine(db: Db, shiftHours: number): StatusJson['fleet'] {
  const fleet = fleetVerdicts(db, shiftHours);
  return {
    shiftHours,
    short: fleet.filter((c) => c.status === 'short').map((c) => c.serial),
    degraded: fleet.filter((c) => c.status === 'degraded').map((c) => c.serial),
  };
}

export function renderStatus(s: StatusJson, opts: { bars?: boolean; paint?: Paint } = {}): string {
  const p = opts.paint ?? paint(false);
  const out: string[] = [];
  const d = s.daemon;
  out.push(
    d.running
      ? `daemon   ${p.good('running')}  pid ${d.pid}  version ${d.version}  up since ${d.startedAt}  heartbeat ${ago(d.heartbeatAt)}`
      : `daemon   ${p.bad('NOT RUNNING')}${d.stoppedAt ? `  (stopped ${ago(d.stoppedAt)})` : d.heartbeatAt ? `  (last heartbeat ${ago(d.heartbeatAt)})` : ''}`,
  );
  const failed = `${s.queue.failed} failed`;
  out.push(
    `queue    ${s.queue.pending} pending  ${s.queue.active} copying  ${s.queue.failed ? p.bad(failed) : failed}  ${s.queue.verified} verified`,
  );
  out.push(
    `archive  ${s.archive.path}  ${bytes(s.archive.freeBytes)} free${s.archive.diskLow ? `  ${p.bad('OFFLOADING PAUSED: disk below ingest.minFreeBytes')}` : ''}`,
  );
  if (s.archive.storeUnwritable)
    out.push(
      `archive  ${p.bad(`OFFLOADING PAUSED: cannot write the archive (${printable(s.archive.storeUnwritable)})`)}`,
    );
  for (const c of s.conflicts) {
    out.push(
      p.bad(
        `CONFLICT camera in ${printable(c.slot)} reports serial ${printable(c.serial)}, already docked in ${printable(c.dockedIn)}: not offloaded (since ${c.since})`,
      ),
    );
  }
  if (s.replication) {
    const r = s.replication;
    const gaveUp = r.failed
      ? `  ${p.bad(`${r.failed} FAILED`)} (retries exhausted: dockd replicate --all queues them again)`
      : '';
    out.push(
      `replicate ${r.count} waiting (${bytes(r.bytes)})${r.oldestAt ? `, oldest since ${r.oldestAt}` : ''}${gaveUp}${r.lastError ? `  ${p.bad('LAST ERROR:')} ${r.lastError}` : ''}`,
    );
  }
  if (s.fleet.short.length) {
    const n = s.fleet.short.length;
    out.push(
      `battery  ${p.warn(`${n} camera${n === 1 ? '' : 's'} will not last a ${s.fleet.shiftHours} h shift`)}: ${s.fleet.short.map(printable).join(', ')}`,
    );
  }
  if (s.fleet.degraded.length)
    out.push(
      `battery  ${p.warn(`${s.fleet.degraded.length} degraded`)} (health below 80 %): ${s.fleet.degraded.map(printable).join(', ')}`,
    );
  const docked = s.cameras.filter((c) => c.docked);
  out.push('');
  if (docked.length === 0) {
    out.push(`no cameras docked (${s.cameras.length} known: dockd cameras)`);
  } else {
    const rows = docked.map((c) => {
      const pr = c.progress;
      const frac = pr && pr.bytesTotal > 0 ? pr.bytesDone / pr.bytesTotal : 1;
      return [
        printable(c.slot),
        printable(c.serial),
        c.battery ? `${c.battery.percent}%${c.battery.charging ? ' ⚡' : ''}` : '-',
        pr ? `${pr.recordingsDone}/${pr.recordingsTotal}` : '-',
        pr ? `${bytes(pr.bytesDone)} / ${bytes(pr.bytesTotal)}` : '-',
        opts.bars ? bar(frac) : `${Math.floor(frac * 100)}%`,
        pr?.rateBytesPerSec ? `${bytes(pr.rateBytesPerSec)}/s` : '-',
        pr && pr.etaSeconds !== null ? duration(pr.etaSeconds) : '-',
        c.failed ? p.bad(`${c.failed} failed`) : '',
      ];
    });
    out.push(table(['SLOT', 'CAMERA', 'BATTERY', 'FILES', 'BYTES', 'DONE', 'RATE', 'ETA', ''], rows));
  }
  return out.join('\n');
}
