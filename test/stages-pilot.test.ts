/**
 * The seeded pilot (fixtures/stages/generate.mjs) goes through the store and `dockd stages`;
 * what comes out must be what the generator put in.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { generatePilot } from '../fixtures/stages/generate.mjs';
import { openStore } from '../src/store/db.js';
import { storeCameraEvents } from '../src/store/camera-settings.js';
import { cli } from './support/harness.js';

const HOUR = 3_600_000;
const root = mkdtempSync(path.join(os.tmpdir(), 'dockd-pilot-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

interface WeekJson {
  week: string;
  from: string;
  shifts: number;
  shiftHours: number;
  displayActivations: number;
  escalated: number;
  escalationRate: number;
  directRecordings: number;
}

describe('the seeded pilot', () => {
  it('20 cameras over 8 weeks: dockd stages recovers every week exactly as generated, and the rates it was given within three standard errors', async () => {
    const pilot = generatePilot({ seed: 25 });
    expect(pilot.cameras).toHaveLength(20);
    const dataDir = path.join(root, 'data');
    const db = openStore(dataDir);
    for (const cam of pilot.cameras) {
      // Handed twice, as a ring buffer is at the next docking: stored once.
      const entries = cam.entries.map((e) => ({ at: e.at, cameraAt: e.at, type: e.type }));
      storeCameraEvents(db, cam.serial, 1, entries);
      storeCameraEvents(db, cam.serial, 2, entries.slice(-40));
    }
    db.close();

    const r = await cli(['--data-dir', dataDir, 'stages', '--json'], { env: { DOCKD_CONFIG: '' } });
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout) as { cameras: number; weeks: WeekJson[]; escalationRate: number };
    expect(out.cameras).toBe(20);
    expect(out.weeks).toHaveLength(8);
    out.weeks.forEach((w, i) => {
      const t = pilot.truth[i]!;
      expect(Date.parse(w.from)).toBe(pilot.start + i * 7 * 24 * HOUR);
      expect([w.shifts, w.displayActivations, w.escalated, w.directRecordings]).toEqual([
        t.shifts,
        t.activations,
        t.escalated,
        t.directRecordings,
      ]);
      expect(w.shiftHours).toBeCloseTo(t.shiftMs / HOUR, 6);
      // The rate drawn from is recovered as well as a binomial sample of this size allows.
      expect(Math.abs(w.escalationRate - t.rate)).toBeLessThan(
        3 * Math.sqrt((t.rate * (1 - t.rate)) / w.displayActivations),
      );
    });
    const mean = pilot.rates.reduce((a, b) => a + b, 0) / pilot.rates.length;
    const n = out.weeks.reduce((a, w) => a + w.displayActivations, 0);
    expect(Math.abs(out.escalationRate - mean)).toBeLessThan(3 * Math.sqrt((mean * (1 - mean)) / n));
    // The drift the generator was given is visible: the first fortnight escalated more than the last.
    const rate = (ws: WeekJson[]) =>
      ws.reduce((a, w) => a + w.escalated, 0) / ws.reduce((a, w) => a + w.displayActivations, 0);
    expect(rate(out.weeks.slice(0, 2))).toBeGreaterThan(rate(out.weeks.slice(-2)) + 0.05);
  });

  it('is the pilot whose funnel dockd demo prints', async () => {
    const pilot = generatePilot({ seed: 25 });
    const sum = (k: 'shifts' | 'activations' | 'escalated' | 'directRecordings') =>
      pilot.truth.reduce((a, t) => a + t[k], 0);
    const r = await cli(['demo'], { env: { DOCKD_CONFIG: '' } });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`present    ${sum('shifts')} shifts`);
    expect(r.stdout).toContain(`display    ${sum('activations')} activations`);
    expect(r.stdout).toContain(
      `recording  ${sum('escalated')} escalated (${((sum('escalated') / sum('activations')) * 100).toFixed(1)} %`,
    );
    expect(r.stdout).toContain(`${sum('directRecordings')} recorded without the display`);
  });
});
