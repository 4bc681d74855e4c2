/**
 * The demo's de-escalation part: the seeded pilot of fixtures/stages stored as if twenty cameras
 * had handed their event logs, and the funnel present → display → recording that `dockd stages`
 * computes from them.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { sparkline } from '../battery/format.js';
import { storeCameraEvents } from '../store/camera-settings.js';
import type { Db } from '../store/db.js';
import { stagesOf } from '../stages/read.js';

interface Pilot {
  seed: number;
  rates: number[];
  cameras: Array<{ serial: string; entries: Array<{ at: number; type: string }> }>;
}

/** The generator, from the source tree or beside the built files; null when neither is there. */
async function loadPilot(): Promise<Pilot | null> {
  for (const rel of ['../../../fixtures/stages/generate.mjs', '../../fixtures/stages/generate.mjs']) {
    const file = fileURLToPath(new URL(rel, import.meta.url));
    if (!existsSync(file)) continue;
    const mod = (await import(pathToFileURL(file).href)) as { generatePilot: (o: { seed: number }) => Pilot };
    return mod.generatePilot({ seed: 25 });
  }
  return null;
}

const minutes = (s: number | null) => (s === null ? '-' : `${(s / 60).toFixed(1)} min`);
const percent = (r: number | null) => (r === null ? '-' : `${(r * 100).toFixed(1)} %`);

export async function printPilotFunnel(db: Db): Promise<void> {
  const pilot = await loadPilot();
  if (!pilot) return;
  for (const cam of pilot.cameras)
    storeCameraEvents(
      db,
      cam.serial,
      1,
      cam.entries.map((e) => ({ at: e.at, cameraAt: e.at, type: e.type })),
    );
  const s = stagesOf(db, { from: null, to: null, minGroupSize: 5 });
  const rates = s.weeks.map((w) => w.escalationRate ?? NaN);
  const first = rates[0] ?? null;
  const last = rates.at(-1) ?? null;
  console.log(
    `de-escalation in a simulated pilot (fixtures/stages, seed ${pilot.seed}: ${s.cameras} cameras, ${s.weeks.length} weeks), as dockd stages counts it:`,
  );
  console.log(`  present    ${s.shifts} shifts, ${Math.round(s.shiftHours)} shift-hours`);
  console.log(
    `  display    ${s.displayActivations} activations (${(s.activationsPer100ShiftHours ?? 0).toFixed(1)} per 100 shift-hours); ${s.displayOnly.count} ended without a recording after ${minutes(s.displayOnly.medianSeconds)} (median)`,
  );
  console.log(
    `  recording  ${s.escalated} escalated (${percent(s.escalationRate)}, ${Math.round(s.displayToRecording.medianSeconds ?? 0)} s after the display, median); ${s.directRecordings} recorded without the display`,
  );
  console.log(`  escalation rate by week  ${sparkline(rates)}  ${percent(first)} → ${percent(last)}`);
}
