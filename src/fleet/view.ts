/**
 * The fleet as `dockd fleet` shows it: every dock with its health and trusted custody head, and
 * every camera once, merged by serial across the docks it used.
 */
import { dockPrefix, lowsToPoints, type BatteryStatus, type DockCamera, type DockState } from './document.js';
import type { FetchedState } from './read.js';
import type { FleetWarning, KeyRing, KeyTrust } from './trust.js';

/** A dock is stale once this many of its own publish intervals pass without a document. */
export const STALE_INTERVALS = 3;

export interface FleetDock {
  dockId: string;
  state: 'running' | 'stopped' | 'stale';
  stale: boolean;
  stopped: boolean;
  /** When the store took its last document. */
  lastSeenAt: string;
  publishedAt: string;
  /** The dock's own heartbeat, by its clock. */
  heartbeatAt: string | null;
  startedAt: string;
  stoppedAt: string | null;
  version: string;
  publishIntervalMs: number;
  /** The dock PC's clock against the store's, from its last document (positive: ahead). */
  clockSkewSeconds: number | null;
  docked: string[];
  cameras: number;
  queue: DockState['queue'];
  replication: DockState['replication'];
  freeBytes: number | null;
  shiftHours: number;
  custodyHead: { seq: number; hash: string; signatureOk: boolean } | null;
  key: { publicKey: string; keyId: string | null; trust: KeyTrust };
}

export interface FleetCamera {
  serial: string;
  model: string | null;
  lastDock: string;
  lastSeenAt: string;
  /** Docked now at a dock that is running. */
  docked: boolean;
  battery: {
    status: BatteryStatus;
    percent: number | null;
    healthPercent: number | null;
    projectedRuntimeHours: number | null;
    drainPercentPerHour: number | null;
    dock: string;
    shiftHours: number;
  };
  clockSkewSeconds: number | null;
  /** Every dock that knows the camera, the latest first. */
  docks: Array<{ dockId: string; lastSeenAt: string }>;
}

export interface BatteryPoint {
  at: number;
  percent: number;
  dockId: string;
}

export interface FleetView {
  generatedAt: string;
  bucket: string;
  docks: FleetDock[];
  cameras: FleetCamera[];
  warnings: FleetWarning[];
  /** Where first-seen keys are remembered; null when they are trusted for this run only. */
  trust: { file: string | null; note: string };
}

export interface FleetHistory {
  /** A camera's battery lows from every dock, by time; made on demand, for the few the page draws. */
  series(serial: string): BatteryPoint[];
}

export function buildFleetView(
  fetched: FetchedState[],
  ring: KeyRing,
  bucket: string,
  now = new Date(),
): FleetView & FleetHistory {
  const warnings: FleetWarning[] = [];
  const docks: FleetDock[] = [];
  const seen: Array<{ dock: FleetDock; cam: DockCamera }> = [];
  for (const f of fetched) {
    if (!f.doc) {
      warnings.push({
        dockId: f.prefix,
        kind: 'unreadable',
        message: `${f.key} is not a usable state document: ${f.error}`,
      });
      continue;
    }
    const doc = f.doc;
    let dockId = doc.dockId;
    if (dockPrefix(doc.dockId) !== f.prefix) {
      warnings.push({
        dockId: f.prefix,
        kind: 'misplaced',
        message: `${f.key} says it is dock ${doc.dockId}, whose documents belong under ${dockPrefix(doc.dockId)}/: shown as ${f.prefix}`,
      });
      dockId = f.prefix;
    }
    const j = ring.judge(dockId, doc, now);
    warnings.push(...j.warnings);
    const lastSeen = f.lastModified ?? new Date(doc.publishedAt);
    const stopped = doc.stoppedAt !== null;
    const stale = !stopped && now.getTime() - lastSeen.getTime() > STALE_INTERVALS * doc.publishIntervalMs;
    const dock: FleetDock = {
      dockId,
      state: stopped ? 'stopped' : stale ? 'stale' : 'running',
      stale,
      stopped,
      lastSeenAt: lastSeen.toISOString(),
      publishedAt: doc.publishedAt,
      heartbeatAt: doc.heartbeatAt,
      startedAt: doc.startedAt,
      stoppedAt: doc.stoppedAt,
      version: doc.version,
      publishIntervalMs: doc.publishIntervalMs,
      clockSkewSeconds: f.lastModified
        ? Math.round((Date.parse(doc.publishedAt) - f.lastModified.getTime()) / 100) / 10
        : null,
      docked: stopped ? [] : doc.docked,
      cameras: doc.cameras.length,
      queue: doc.queue,
      replication: doc.replication,
      freeBytes: doc.archive.freeBytes,
      shiftHours: doc.shiftHours,
      custodyHead: doc.custodyHead
        ? { seq: doc.custodyHead.seq, hash: doc.custodyHead.hash, signatureOk: j.signatureOk }
        : null,
      key: { publicKey: doc.publicKey, keyId: j.keyId, trust: j.trust },
    };
    docks.push(dock);
    for (const cam of doc.cameras) seen.push({ dock, cam });
  }
  const { cameras, series } = mergeCameras(seen);
  docks.sort((a, b) => a.dockId.localeCompare(b.dockId));
  const note = ring.file
    ? `keys not pinned in fleet.keys are trusted on first use and remembered in ${ring.file}`
    : 'no data dir: keys not pinned in fleet.keys are trusted on first use for this run only, and nothing is remembered';
  return { generatedAt: now.toISOString(), bucket, docks, cameras, warnings, trust: { file: ring.file, note }, series };
}

function mergeCameras(seen: Array<{ dock: FleetDock; cam: DockCamera }>): { cameras: FleetCamera[] } & FleetHistory {
  const bySerial = new Map<string, Array<{ dock: FleetDock; cam: DockCamera; at: number; here: boolean }>>();
  for (const s of seen) {
    const list = bySerial.get(s.cam.serial) ?? [];
    // Docked now at a live dock beats any time: two docks' clocks may disagree by minutes.
    list.push({ ...s, at: Date.parse(s.cam.lastSeenAt), here: s.cam.docked && s.dock.state === 'running' });
    bySerial.set(s.cam.serial, list);
  }
  const cameras: FleetCamera[] = [];
  for (const [serial, all] of bySerial) {
    all.sort((a, b) => Number(b.here) - Number(a.here) || b.at - a.at);
    const last = all[0]!;
    const judged = all.find((s) => s.cam.battery) ?? null;
    const b = judged?.cam.battery;
    cameras.push({
      serial,
      model: last.cam.model,
      lastDock: last.dock.dockId,
      lastSeenAt: last.cam.lastSeenAt,
      docked: last.here,
      battery: {
        status: b?.status ?? 'unknown',
        percent: b?.percent ?? null,
        healthPercent: b?.healthPercent ?? null,
        projectedRuntimeHours: b?.projectedRuntimeHours ?? null,
        drainPercentPerHour: b?.drainPercentPerHour ?? null,
        dock: judged?.dock.dockId ?? last.dock.dockId,
        shiftHours: judged?.dock.shiftHours ?? last.dock.shiftHours,
      },
      clockSkewSeconds: last.cam.clockSkewSeconds,
      docks: all.map((s) => ({ dockId: s.dock.dockId, lastSeenAt: s.cam.lastSeenAt })),
    });
  }
  cameras.sort((a, b) => (a.serial < b.serial ? -1 : a.serial > b.serial ? 1 : 0));
  const series = (serial: string): BatteryPoint[] =>
    (bySerial.get(serial) ?? [])
      .flatMap((s) =>
        lowsToPoints(s.cam.batteryLows).map((p) => ({ at: p.at, percent: p.percent, dockId: s.dock.dockId })),
      )
      .sort((x, y) => x.at - y.at);
  return { cameras, series };
}
