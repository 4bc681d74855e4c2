import { describe, expect, it } from 'vitest';
import {
  cameraEpisodes,
  isoWeek,
  percentile,
  stageFigures,
  weeklyFigures,
  type CameraLog,
} from '../src/stages/model.js';
import { groupFigures } from '../src/stages/groups.js';
import { SHIFT } from './support/stages-shift.js';

// Monday 30 November 2026, 06:00 UTC.
const T0 = Date.UTC(2026, 10, 30, 6);
const MIN = 60_000;
const at = (minutes: number) => T0 + minutes * MIN;
const log = (camera: string, entries: Array<[number, string]>, extra: Partial<CameraLog> = {}): CameraLog => ({
  camera,
  entries: entries.map(([m, type]) => ({ at: at(m), type })),
  ...extra,
});
const figures = (...logs: CameraLog[]) => stageFigures(logs.map(cameraEpisodes));

describe('the stage model', () => {
  it('counts activations, escalations and direct recordings of one shift as the contract defines them', () => {
    const f = figures(log('DU-1', SHIFT));
    expect(f).toMatchObject({
      cameras: 1,
      displayActivations: 2,
      escalated: 1,
      escalationRate: 0.5,
      directRecordings: 1,
      recordings: 2,
      shifts: 1,
      shiftHours: 8,
    });
    // 2 activations and 2 recordings in 8 shift-hours.
    expect(f.activationsPer100ShiftHours).toBe(25);
    expect(f.recordingsPer100ShiftHours).toBe(25);
    expect(f.displayToRecording).toEqual({ count: 1, medianSeconds: 30, p90Seconds: 30 });
    expect(f.displayOnly).toEqual({ count: 1, medianSeconds: 120, p90Seconds: 120 });
  });

  it('gives the same figures whatever order the entries arrive in', () => {
    const shuffled = [...SHIFT].reverse();
    [shuffled[2], shuffled[7]] = [shuffled[7]!, shuffled[2]!];
    expect(figures(log('DU-1', shuffled))).toEqual(figures(log('DU-1', SHIFT)));
  });

  it('counts entries handed twice once, also a display-on repeated without a display-off between', () => {
    const twice: Array<[number, string]> = [...SHIFT, ...SHIFT, [60.5, 'display.on'], [120.7, 'recording.start']];
    expect(figures(log('DU-1', twice))).toEqual(figures(log('DU-1', SHIFT)));
  });

  it('ends a display-on at the power-off: not escalated by a recording after it, a display-only episode until the power-off', () => {
    const f = figures(
      log('DU-2', [
        [0, 'power.on'],
        [10, 'display.on'],
        [20, 'power.off'],
        [30, 'power.on'],
        [35, 'recording.start'],
        [40, 'power.off'],
      ]),
    );
    // The recording at 35 min started with the display off: direct, and no escalation.
    expect(f).toMatchObject({ displayActivations: 1, escalated: 0, escalationRate: 0, directRecordings: 1, shifts: 2 });
    expect(f.displayOnly).toEqual({ count: 1, medianSeconds: 600, p90Seconds: 600 });
    // Shifts of 20 and 10 minutes.
    expect(f.shiftHours).toBeCloseTo(0.5, 10);
  });

  it('ends a display-on at the docking when the camera logs no power events, and takes docking to docking as the shift', () => {
    const cam = log(
      'DU-3',
      [
        [10, 'display.on'],
        [70, 'recording.start'],
      ],
      { undockedAt: [at(0), at(60)], dockedAt: [at(25), at(600)] },
    );
    const f = figures(cam);
    expect(f).toMatchObject({ displayActivations: 1, escalated: 0, directRecordings: 1, shifts: 2 });
    expect(f.displayOnly.medianSeconds).toBe(15 * 60);
    // 0 → 25 min, then 60 → 600 min.
    expect(f.shiftHours).toBeCloseTo((25 + 540) / 60, 10);
  });

  it('does not count a recording that started before the log began, and starts that shift at the first entry', () => {
    const f = figures(
      log('DU-4', [
        [5, 'recording.stop'],
        [10, 'display.on'],
        [11, 'display.off'],
        [20, 'power.off'],
      ]),
    );
    expect(f).toMatchObject({ recordings: 0, directRecordings: 0, displayActivations: 1, escalated: 0, shifts: 1 });
    expect(f.shiftHours).toBeCloseTo(15 / 60, 10);
  });

  it('ends a shift whose power-off was never logged at its last entry, and the open display-on with no known length', () => {
    const f = figures(
      log('DU-5', [
        [0, 'power.on'],
        [10, 'display.on'],
        [100, 'power.on'],
        [160, 'power.off'],
      ]),
    );
    expect(f).toMatchObject({ displayActivations: 1, escalated: 0, shifts: 2 });
    expect(f.displayOnly.count).toBe(0);
    // 0 → 10 min (the last entry before the second power-on), 100 → 160 min.
    expect(f.shiftHours).toBeCloseTo(70 / 60, 10);
  });

  it('counts only what lies in [from, to), and only the shift hours inside it', () => {
    const eps = [cameraEpisodes(log('DU-1', SHIFT))];
    // From 07:30: the display-only episode at 07:00 is out, the escalation at 08:00 and the direct recording in.
    const f = stageFigures(eps, { from: at(90), to: at(240) });
    expect(f).toMatchObject({ displayActivations: 1, escalated: 1, directRecordings: 1, shifts: 0 });
    expect(f.shiftHours).toBe(2.5);
    expect(stageFigures(eps, { from: at(120), to: at(120) }).displayActivations).toBe(0);
  });

  it('gives no rate, not a zero one, when nothing was activated', () => {
    const f = figures(
      log('DU-6', [
        [0, 'power.on'],
        [480, 'power.off'],
      ]),
    );
    expect(f).toMatchObject({
      displayActivations: 0,
      escalationRate: null,
      shifts: 1,
      shiftHours: 8,
      activationsPer100ShiftHours: 0,
    });
    expect(figures(log('DU-7', []))).toMatchObject({ cameras: 0, shifts: 0, activationsPer100ShiftHours: null });
  });

  it('splits the figures by ISO week', () => {
    const nextWeek = SHIFT.map(([m, t]): [number, string] => [m + 7 * 24 * 60, t]);
    const weeks = weeklyFigures([cameraEpisodes(log('DU-1', [...SHIFT, ...nextWeek.slice(0, 6)]))]);
    expect(weeks.map((w) => [w.week, w.displayActivations, w.escalated, w.shifts])).toEqual([
      ['2026-W49', 2, 1, 1],
      // The second week's log stops after its escalation: its shift ends at that last entry.
      ['2026-W50', 2, 1, 1],
    ]);
    expect(weeks[1]!.from).toBe('2026-12-07T00:00:00.000Z');
    expect(isoWeek(Date.UTC(2027, 0, 1))).toBe('2026-W53');
  });

  it('takes percentiles between ranks: of 1…10 s the median is 5.5 s and p90 9.1 s', () => {
    const v = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    expect(percentile(v, 0.5)).toBe(5.5);
    expect(percentile(v, 0.9)).toBeCloseTo(9.1, 10);
  });

  it('merges groups with fewer shifts than the minimum into "other", and withholds "other" when it is still too small', () => {
    const day = (camera: string, d: number) =>
      log(
        camera,
        SHIFT.map(([m, t]): [number, string] => [m + d * 24 * 60, t]),
      );
    const eps = [...[0, 1, 2].map((d) => day('DU-1', d)), ...[0, 1].map((d) => day('DU-2', d)), day('DU-3', 0)].map(
      cameraEpisodes,
    );
    const byCamera = groupFigures(eps, { from: null, to: null }, (camera) => camera, { minShifts: 3 });
    expect(byCamera.map((g) => [g.group, g.shifts, g.withheld ?? false])).toEqual([
      ['DU-1', 3, false],
      ['other', 3, false],
    ]);
    const strict = groupFigures(eps, { from: null, to: null }, (camera) => camera, { minShifts: 7 });
    expect(strict).toEqual([{ group: 'other', withheld: true, shifts: 6 }]);
  });
});
