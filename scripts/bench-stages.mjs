#!/usr/bin/env node
/**
 * `dockd stages` on a store of about 100,000 camera events: the seeded pilot generator
 * (fixtures/stages/generate.mjs) scaled to 100 cameras over 28 weeks, stored through the store
 * module, then the command timed as an evaluator runs it. The target is an answer in under a
 * second, Node's start-up included; `dockd --version` is timed beside it for that start-up.
 *
 *   node scripts/bench-stages.mjs                  # 100 cameras × 28 weeks, 5 timed runs each
 *   node scripts/bench-stages.mjs --cameras 20 --weeks 8 --runs 3
 *
 * Needs a build (npm run build).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { BIN, ROOT, log, median, rm } from './bench-lib.mjs';
import { generatePilot } from '../fixtures/stages/generate.mjs';

const { values } = parseArgs({
  options: {
    cameras: { type: 'string', default: '100' },
    weeks: { type: 'string', default: '28' },
    runs: { type: 'string', default: '5' },
  },
});
const CAMERAS = Number(values.cameras);
const WEEKS = Number(values.weeks);
const RUNS = Number(values.runs);

/** User and system time of this process's waited-for children, from /proc (Linux). */
function childCpuSeconds() {
  const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
  // cutime and cstime, fields 16 and 17 of stat, in clock ticks of 1/100 s.
  return (Number(fields[13]) + Number(fields[14])) / 100;
}

const { openStore } = await import(pathToFileURL(path.join(ROOT, 'dist/src/store/db.js')).href);
const { storeCameraEvents } = await import(pathToFileURL(path.join(ROOT, 'dist/src/store/camera-settings.js')).href);

const dataDir = mkdtempSync(path.join(os.tmpdir(), 'dockd-bench-stages-'));
try {
  // From 30 % down to 15 % over the weeks, so every week has its own rate.
  const rates = Array.from({ length: WEEKS }, (_, i) => 0.3 - (0.15 * i) / Math.max(1, WEEKS - 1));
  const pilot = generatePilot({ seed: 25, cameras: CAMERAS, rates });
  const db = openStore(dataDir);
  let events = 0;
  for (const cam of pilot.cameras) {
    events += storeCameraEvents(
      db,
      cam.serial,
      1,
      cam.entries.map((e) => ({ at: e.at, cameraAt: e.at, type: e.type })),
    );
  }
  db.close();
  log(`stored ${events.toLocaleString('en')} events of ${CAMERAS} cameras over ${WEEKS} weeks in ${dataDir}`);

  const env = { ...process.env, DOCKD_CONFIG: '' };
  const time = (args) => {
    const t0 = performance.now();
    const cpu0 = childCpuSeconds();
    execFileSync(process.execPath, [BIN, '--data-dir', dataDir, ...args], {
      env,
      stdio: ['ignore', 'ignore', 'inherit'],
      maxBuffer: 256 * 1024 * 1024,
    });
    return { wall: (performance.now() - t0) / 1000, cpu: childCpuSeconds() - cpu0 };
  };
  const month = new Date(pilot.start + 4 * 7 * 86_400_000).toISOString();
  const monthEnd = new Date(pilot.start + 8 * 7 * 86_400_000).toISOString();
  const cases = [
    ['--version', ['--version']],
    ['stages --json', ['stages', '--json']],
    ['stages --by week --csv', ['stages', '--by', 'week', '--csv']],
    ['stages --by camera --json', ['stages', '--by', 'camera', '--json']],
    ['stages --from/--to (4 weeks) --json', ['stages', '--from', month, '--to', monthEnd, '--json']],
  ];
  time(['stages', '--json']);
  const rows = cases.map(([label, args]) => {
    const runs = Array.from({ length: RUNS }, () => time(args));
    const wall = runs.map((r) => r.wall);
    return {
      label,
      median: median(wall),
      min: Math.min(...wall),
      max: Math.max(...wall),
      cpu: median(runs.map((r) => r.cpu)),
    };
  });
  // On a shared machine the wall clock measures the neighbours too; CPU time is the command's own.
  console.log(
    `\n${events.toLocaleString('en')} events, ${CAMERAS} cameras, ${WEEKS} weeks; seconds, median of ${RUNS} (min–max), load ${os.loadavg()[0].toFixed(1)}`,
  );
  console.log(`  ${'command'.padEnd(38)} wall                    CPU (user + system)`);
  for (const r of rows)
    console.log(
      `  ${r.label.padEnd(38)} ${r.median.toFixed(3)}  (${r.min.toFixed(3)}–${r.max.toFixed(3)})   ${r.cpu.toFixed(2)}`,
    );
} finally {
  rm(dataDir);
}
