/**
 * `dockd demo`: three simulated cameras dock in a temporary dock; the real daemon offloads,
 * verifies and releases them while the demo narrates the custody log as it grows.
 */
import { existsSync, mkdtempSync, mkdirSync, readFileSync, writeFileSync, renameSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { fleetBattery } from '../battery/fleet.js';
import { sparkline } from '../battery/format.js';
import { randomBytes, createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseConfig } from '../config.js';
import { createLogger } from '../log.js';
import { startDaemon } from '../daemon/daemon.js';
import { CustodyLog } from '../store/custody-log.js';
import { verifyAll } from '../custody/verify.js';
import { bytes, printable } from '../lib/format.js';
import { printPilotFunnel } from './demo-stages.js';
import { openStore } from '../store/db.js';
import { verifiedSources } from '../store/recordings.js';
import pino from 'pino';

interface DemoCamera {
  slot: string;
  serial: string;
  /** A battery personality from fixtures/battery: its log becomes this camera's log. */
  personality: string;
  battery: { percent: number; charging: boolean; healthPercent: number };
  clockOffsetSeconds: number;
  files: Array<[string, number]>;
  faults?: unknown[];
}

const CAMERAS: DemoCamera[] = [
  {
    slot: 'dock1-01',
    serial: 'DU-0042',
    personality: 'healthy',
    battery: { percent: 37, charging: true, healthPercent: 91 },
    clockOffsetSeconds: -42,
    files: [
      ['DCIM/100BODY/REC0001.MP4', 3_000_000],
      ['DCIM/100BODY/REC0002.MP4', 1_500_000],
      ['DCIM/100BODY/REC0003.MP4', 2_200_000],
    ],
    faults: [{ path: 'DCIM/100BODY/REC0002.MP4', kind: 'io-error', atByte: 400_000, times: 1 }],
  },
  {
    slot: 'dock1-02',
    serial: 'DU-0077',
    personality: 'aging',
    battery: { percent: 64, charging: true, healthPercent: 76 },
    clockOffsetSeconds: 3,
    files: [
      ['DCIM/101BODY/REC0107.MP4', 2_500_000],
      ['DCIM/101BODY/../../evil name:1.MP4'.replace('../../', ''), 800_000],
    ],
  },
  {
    slot: 'dock1-03',
    serial: 'DU-0108',
    personality: 'night-ir',
    battery: { percent: 12, charging: true, healthPercent: 95 },
    clockOffsetSeconds: 0,
    files: [
      ['DCIM/100BODY/REC0001.MP4', 4_000_000],
      ['DCIM/100BODY/REC0002.MP4', 1_000_000],
      ['DCIM/100BODY/nächtlicher Einsatz.MP4', 600_000],
    ],
  },
];

/** The personality's log moved so that it ends an hour before now, on the camera's clock. */
function batteryLog(cam: DemoCamera): Array<{ at: string; percent: number; charging: boolean }> {
  for (const rel of ['../../../fixtures/battery', '../../fixtures/battery']) {
    const file = fileURLToPath(new URL(`${rel}/${cam.personality}.json`, import.meta.url));
    if (!existsSync(file)) continue;
    const log = (
      JSON.parse(readFileSync(file, 'utf8')) as {
        batteryLog: Array<{ at: string; percent: number; charging: boolean }>;
      }
    ).batteryLog;
    const last = Math.max(...log.map((e) => Date.parse(e.at)));
    const shift = Date.now() + cam.clockOffsetSeconds * 1000 - 3600_000 - last;
    return log.map((e) => ({ ...e, at: new Date(Date.parse(e.at) + shift).toISOString() }));
  }
  return [];
}

export async function runDemo(opts: { keep: boolean }): Promise<void> {
  const root = mkdtempSync(path.join(os.tmpdir(), 'dockd-demo-'));
  const dataDir = path.join(root, 'data');
  const simDir = path.join(root, 'dock');
  const cfg = parseConfig(
    {
      dataDir,
      sim: { dir: simDir },
      usb: { enabled: false },
      ingest: { minFreeBytes: 0, retry: { attempts: 5, baseDelayMs: 300, maxDelayMs: 2000 } },
      daemon: { heartbeatIntervalMs: 500 },
      log: { level: 'warn' },
    },
    root,
  );
  const logFile = path.join(root, 'dockd.log');
  const daemon = await startDaemon(cfg, createLogger('info', pino.destination({ dest: logFile, sync: false })));
  console.log(`dockd demo — data dir ${dataDir}\n`);
  const sources = new Map<string, string>();
  for (const cam of CAMERAS) {
    const dir = path.join(simDir, cam.slot);
    let total = 0;
    for (const [rel, size] of cam.files) {
      const file = path.join(dir, rel);
      mkdirSync(path.dirname(file), { recursive: true });
      const data = randomBytes(size);
      writeFileSync(file, data);
      sources.set(`${cam.serial}\n${rel}`, createHash('sha256').update(data).digest('hex'));
      total += size;
    }
    const spec = {
      serial: cam.serial,
      model: 'SimCam 2',
      firmware: '4.1.7',
      battery: cam.battery,
      clockOffsetSeconds: cam.clockOffsetSeconds,
      throughputBytesPerSec: 8_000_000,
      faults: cam.faults ?? [],
      batteryLog: batteryLog(cam),
    };
    // camera.json last and by rename, as a real writer of the simulated dock must.
    writeFileSync(path.join(dir, '.camera.json.tmp'), JSON.stringify(spec));
    renameSync(path.join(dir, '.camera.json.tmp'), path.join(dir, 'camera.json'));
    console.log(`→ ${cam.serial} placed in ${cam.slot} with ${cam.files.length} recordings (${bytes(total)})`);
  }
  console.log('');

  const custody = new CustodyLog(daemon.db);
  const started = Date.now();
  let seen = 0;
  const expected = CAMERAS.reduce((n, c) => n + c.files.length, 0);
  let deleted = 0;
  let verifiedBytes = 0;
  const deadline = started + 120_000;
  while (deleted < expected && Date.now() < deadline) {
    for (const e of custody.all()) {
      if (e.seq <= seen) continue;
      seen = e.seq;
      const d = e.details as Record<string, unknown>;
      switch (e.type) {
        case 'camera.docked':
          console.log(
            `  ${e.camera} docked in ${d.slot}: battery ${(d.battery as { percent?: number } | null)?.percent ?? '?'}%, clock skew ${d.clockSkewSeconds ?? '?'} s`,
          );
          break;
        case 'offload.failed':
          console.log(
            `  ! ${printable(String(d.sourcePath ?? e.recording))}: ${d.error} — ${d.willRetry ? `retrying in ${d.retryInMs} ms` : 'giving up'}`,
          );
          break;
        case 'offload.verified':
          verifiedBytes += Number(d.bytes);
          console.log(
            `  ✓ ${e.camera} ${printable(String(d.sourcePath))} ${bytes(Number(d.bytes))} sha256 ${e.sha256?.slice(0, 16)}… (attempt ${d.attempt})`,
          );
          break;
        case 'camera.file_deleted':
          deleted++;
          break;
      }
    }
    await sleep(100);
  }
  const seconds = (Date.now() - started) / 1000;
  const fleet = fleetBattery(daemon.db, cfg.battery.shiftHours);
  const report = await verifyAll(daemon.db);
  const rows = verifiedSources(daemon.db);
  const matching = rows.filter((r) => sources.get(`${r.camera}\n${r.source_path}`) === r.sha256).length;
  await daemon.stop('demo finished');
  console.log('');
  console.log(
    `summary: ${rows.length}/${expected} recordings verified (${bytes(verifiedBytes)}) in ${seconds.toFixed(1)} s, ${deleted} freed from cameras`,
  );
  console.log(`         ${matching}/${expected} SHA-256 values equal the hash of the camera's original file`);
  console.log(
    `         custody chain ${report.chain.ok ? 'intact' : 'BROKEN'} (${report.chain.events} events), archive ${report.files.ok}/${report.files.checked} files re-hashed ok`,
  );
  console.log('');
  console.log(`battery health from the cameras' own logs (shift ${cfg.battery.shiftHours} h):`);
  for (const b of fleet) {
    console.log(
      `  ${b.serial}  ${b.status.padEnd(8)} drain ${b.drainPercentPerHour ?? '-'} %/h, ${b.projectedRuntimeHours ?? '-'} h from full, health ${b.healthPercent ?? '-'} %  ${sparkline(b.shiftDrains)} ${b.trend}`,
    );
  }
  console.log('');
  // After the daemon stopped: the pilot's twenty cameras were never docked here.
  const store = openStore(dataDir);
  try {
    await printPilotFunnel(store);
  } finally {
    store.close();
  }
  if (opts.keep) {
    console.log(`\nkept ${root}: try  npx dockd --data-dir ${dataDir} recordings`);
  } else {
    rmSync(root, { recursive: true, force: true });
  }
  if (rows.length !== expected || matching !== expected || !report.chain.ok || deleted !== expected)
    process.exitCode = 1;
}
