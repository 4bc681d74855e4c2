import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseCameraFile } from '../drivers/simulated/camera-file.js';
import {
  DEDUP_TOLERANCE_MS,
  MAX_LOG_ENTRIES_PER_VISIT,
  newDeviceSamples,
  type DeviceLogInput,
} from '../src/battery/device-log.js';
import { formatBatteryHealth, sparkline } from '../src/battery/format.js';
import {
  assessBattery,
  normalizeSamples,
  type BatteryHealth,
  type BatterySample,
  type BatteryStatus,
  type SampleSource,
  type TrendLabel,
} from '../src/battery/model.js';

const H = 3_600_000;
const MIN = 60_000;
const T0 = Date.UTC(2026, 10, 2, 6);

function at(
  hours: number,
  percent: number,
  charging = false,
  source: SampleSource = 'device',
  visit?: number,
): BatterySample {
  return { at: T0 + hours * H, percent, charging, source, ...(visit === undefined ? {} : { visit }) };
}

function assess(
  samples: BatterySample[],
  opts: { healthPercent?: number | null; shiftHours?: number; now?: number; windowHours?: number } = {},
): BatteryHealth {
  return assessBattery({
    samples,
    healthPercent: opts.healthPercent ?? 95,
    shiftHours: opts.shiftHours ?? 10,
    now: opts.now,
    windowHours: opts.windowHours,
  });
}

/** Shifts a day apart, each `hours` long at the given drain with a sample every 30 min, then charged on the dock. */
function shiftSeries(drains: number[], hours = 8): BatterySample[] {
  const out: BatterySample[] = [];
  drains.forEach((d, i) => {
    const base = i * 24;
    for (let k = 0; k <= hours * 2; k++) out.push(at(base + k / 2, 100 - (d * k) / 2));
    out.push(at(base + hours + 0.25, 100 - d * hours, true, 'dock', i + 1));
    out.push(at(base + hours + 4, 100, true, 'dock', i + 1));
  });
  return out;
}

interface Fixture {
  serial: string;
  healthPercent: number;
  clockOffsetSeconds: number;
  batteryLog: Array<{ at: string; percent: number; charging: boolean }>;
  expected: {
    shiftHours: number;
    status: BatteryStatus;
    drainPercentPerHour: { min: number; max: number } | null;
    trend: TrendLabel;
  };
}

const FIXTURES = ['healthy', 'night-ir', 'aging', 'new-camera', 'charging-only'] as const;
const fixtureText = (name: string): string =>
  readFileSync(new URL(`../fixtures/battery/${name}.json`, import.meta.url), 'utf8');
const fixture = (name: string): Fixture => JSON.parse(fixtureText(name)) as Fixture;
const toLog = (f: Fixture): DeviceLogInput[] =>
  f.batteryLog.map((e) => ({ at: new Date(e.at), percent: e.percent, charging: e.charging }));
const NOW = Date.UTC(2026, 11, 1);

function assessFixture(name: string): { f: Fixture; samples: BatterySample[]; h: BatteryHealth } {
  const f = fixture(name);
  const samples = newDeviceSamples(new Set(), toLog(f), f.clockOffsetSeconds, { now: NOW });
  const h = assessBattery({ samples, healthPercent: f.healthPercent, shiftHours: f.expected.shiftHours });
  return { f, samples, h };
}

describe('fixtures', () => {
  it.each(FIXTURES)('%s: status, drain and trend match what the fixture states', (name) => {
    const { f, samples, h } = assessFixture(name);
    expect(samples).toHaveLength(f.batteryLog.length);
    expect(h.status).toBe(f.expected.status);
    expect(h.trend.label).toBe(f.expected.trend);
    if (f.expected.drainPercentPerHour === null) {
      expect(h.drainPercentPerHour).toBeNull();
    } else {
      expect(h.drainPercentPerHour).toBeGreaterThanOrEqual(f.expected.drainPercentPerHour.min);
      expect(h.drainPercentPerHour).toBeLessThanOrEqual(f.expected.drainPercentPerHour.max);
    }
  });

  it.each(FIXTURES)('%s is also a valid simulated camera.json', (name) => {
    const spec = parseCameraFile(fixtureText(name));
    expect(spec.serial).toBe(fixture(name).serial);
    expect(spec.batteryLog).toHaveLength(fixture(name).batteryLog.length);
  });

  it('healthy: about 15 h from a full charge over five shifts, stable', () => {
    const { h } = assessFixture('healthy');
    expect(h.projectedRuntimeHours).toBeGreaterThan(14);
    expect(h.projectedRuntimeHours).toBeLessThan(17);
    expect(h.shifts).toHaveLength(5);
    for (const s of h.shifts) expect(s.hours).toBeGreaterThan(9);
  });

  it('night-ir: short on every one of its shifts, not just on average', () => {
    const { h } = assessFixture('night-ir');
    expect(h.projectedRuntimeHours).toBeLessThan(7.5);
    expect(h.shifts).toHaveLength(4);
    for (const s of h.shifts) expect(100 / s.drainPercentPerHour).toBeLessThan(10);
  });

  it('aging: degraded, not short on its average, with drain rising shift after shift', () => {
    const { h } = assessFixture('aging');
    expect(h.projectedRuntimeHours).toBeGreaterThan(10);
    expect(h.shifts.map((s) => s.drainPercentPerHour)).toEqual([7, 8, 8.5, 9.5, 10.5].map((d) => expect.closeTo(d, 0)));
    expect(h.trend.slopePercentPerHourPerShift).toBeGreaterThan(0.6);
    expect(h.trend.slopePercentPerHourPerShift).toBeLessThan(1.1);
    // Its last shift alone would be short: the rising trend is the early warning.
    expect(100 / h.shifts.at(-1)!.drainPercentPerHour).toBeLessThan(10);
  });

  it('new-camera: a projection below the shift from 30 min of data is unknown, not short', () => {
    const { h } = assessFixture('new-camera');
    expect(h.countedHours).toBeCloseTo(0.5, 1);
    expect(h.projectedRuntimeHours).toBeLessThan(10);
    expect(h.status).toBe('unknown');
  });

  it('charging-only: the trickle between 99 and 100 % would be hours of "drain" if charging counted', () => {
    const { samples, h } = assessFixture('charging-only');
    const nonRisingChargingHours = samples.slice(1).reduce((sum, b, i) => {
      const a = samples[i]!;
      return b.percent <= a.percent ? sum + (b.at - a.at) / H : sum;
    }, 0);
    expect(nonRisingChargingHours).toBeGreaterThan(10);
    expect(samples.some((s, i) => i > 0 && s.percent < samples[i - 1]!.percent)).toBe(true);
    expect(h.countedHours).toBe(0);
    expect(h.drainPercentPerHour).toBeNull();
    expect(h.projectedRuntimeHours).toBeNull();
    expect(h.shifts).toEqual([]);
  });
});

describe('drain', () => {
  it('the contract example: 100 % at 06:00, 55 % at 10:00 is 11.25 %/h, 8.9 h, short for 10 h', () => {
    const log = [
      { at: new Date('2026-11-27T06:00:00Z'), percent: 100, charging: false },
      { at: new Date('2026-11-27T10:00:00Z'), percent: 55, charging: false },
    ];
    const h = assess(newDeviceSamples(new Set(), log, 0, { now: NOW }), { healthPercent: 91 });
    expect(h.drainPercentPerHour).toBe(11.25);
    expect(h.status).toBe('short');
    const view = formatBatteryHealth(h);
    expect(view.drainPercentPerHour).toBe(11.25);
    expect(view.projectedRuntimeHours).toBe(8.9);
  });

  it('is weighted by time, not a mean of interval rates', () => {
    const h = assess([at(0, 100), at(1, 90), at(4, 84)]);
    // 16 % over 4 h; the mean of 10 %/h and 2 %/h would be 6.
    expect(h.drainPercentPerHour).toBe(4);
    expect(h.countedHours).toBe(4);
  });

  it('never counts an interval with a charging sample at either end', () => {
    const samples = [
      at(0, 100),
      at(1, 90),
      // On a vehicle charger while recording: charging, yet the percent falls and then sits.
      at(1.5, 90, true),
      at(3.5, 88, true),
      at(8, 88, true),
    ];
    const h = assess(samples, { shiftHours: 12 });
    expect(h.drainPercentPerHour).toBe(10);
    expect(h.countedHours).toBe(1);
    // Counting the non-rising charging intervals (2 % over 7 h) would give 12/8 = 1.5 %/h and `ok`.
    expect(h.status).toBe('short');
  });

  it('leaves out rises without charging, zero-length intervals and gaps over 24 h', () => {
    const h = assess([
      at(0, 100),
      at(1, 92),
      at(1.5, 94), // gauge noise
      at(1.5, 93), // same instant, another reading
      at(2.5, 85),
      at(30, 80), // a day and more in a drawer
      at(31, 72),
    ]);
    // Counted: 0→1 (8 % / 1 h), 1.5/94→1.5/93 is zero length, 1.5/93→2.5 (8 % / 1 h), 30→31 (8 % / 1 h).
    expect(h.countedHours).toBe(3);
    expect(h.drainPercentPerHour).toBe(8);
  });

  it('does not count dock samples of one visit: a full battery often reports "not charging" on the dock', () => {
    const night: BatterySample[] = [];
    for (let k = 0; k <= 20; k++) night.push(at(-10 + k / 2, 100, false, 'dock', 1));
    const shift: BatterySample[] = [];
    for (let k = 1; k <= 16; k++) shift.push(at(k / 2, 100 - 5 * k));
    const docking = at(8.1, 20, true, 'dock', 2);
    const h = assess([...night, ...shift, docking], { shiftHours: 12 });
    expect(h.drainPercentPerHour).toBe(10);
    expect(h.status).toBe('short');
    // Without visits the samples are taken at their word, and the idle night dilutes the drain.
    const stripped = [...night.map(({ visit: _v, ...s }) => s), ...shift, docking];
    expect(assess(stripped, { shiftHours: 12 }).drainPercentPerHour).toBeCloseTo(80 / 18, 6);
  });

  it('ignores samples that are not readings: percent out of range, NaN, bad source', () => {
    const bad = [
      { ...at(0.5, 150) },
      { ...at(0.5, Number.NaN) },
      { ...at(0.5, 50), at: Number.NaN },
      { ...at(0.5, 50), source: 'camera' as SampleSource },
      { ...at(0.5, 50), charging: 'no' as unknown as boolean },
    ];
    expect(assess([at(0, 100), ...bad, at(2, 80)]).drainPercentPerHour).toBe(10);
  });

  it('only the window counts when one is given', () => {
    const old = shiftSeries([5, 5, 5]);
    const recent = shiftSeries([12]).map((s) => ({ ...s, at: s.at + 10 * 24 * H }));
    const all = assess([...old, ...recent]);
    expect(all.status).toBe('ok');
    const now = T0 + 10 * 24 * H + 20 * H;
    const windowed = assess([...old, ...recent], { windowHours: 48, now });
    expect(windowed.drainPercentPerHour).toBeCloseTo(12, 9);
    expect(windowed.status).toBe('short');
    expect(assess([...old, ...recent], { windowHours: 48, now: now + 30 * 24 * H }).status).toBe('unknown');
  });
});

describe('status', () => {
  it('short wins over degraded', () => {
    expect(assess([at(0, 100), at(2, 70)], { healthPercent: 70 }).status).toBe('short');
  });

  it('degraded needs only the health figure', () => {
    expect(assess([], { healthPercent: 79.9 }).status).toBe('degraded');
    expect(assess([at(0, 100), at(0.5, 90)], { healthPercent: 79 }).status).toBe('degraded');
  });

  it('short needs an hour of data: less is unknown however bad it looks', () => {
    expect(assess([at(0, 100), at(0.99, 70)]).status).toBe('unknown');
    expect(assess([at(0, 100), at(1, 70)]).status).toBe('short');
  });

  it('is ok at exactly the shift length, short just below it', () => {
    expect(assess([at(0, 100), at(2, 80)], { shiftHours: 10 }).status).toBe('ok');
    expect(assess([at(0, 100), at(2, 79.9)], { shiftHours: 10 }).status).toBe('short');
  });

  it('zero drain over an hour or more is ok with no runtime projected', () => {
    const h = assess([at(0, 100), at(3, 100)]);
    expect(h.drainPercentPerHour).toBe(0);
    expect(h.projectedRuntimeHours).toBeNull();
    expect(h.status).toBe('ok');
  });

  it('no health figure is never degraded; no samples at all is unknown', () => {
    expect(assess([], { healthPercent: null }).status).toBe('unknown');
    expect(assess([at(0, 100), at(2, 90)], { healthPercent: null }).status).toBe('ok');
  });

  it('rejects a shift length that cannot be compared with', () => {
    expect(() => assess([], { shiftHours: 0 })).toThrow(RangeError);
    expect(() => assess([], { shiftHours: Number.NaN })).toThrow(RangeError);
  });
});

describe('duplicates', () => {
  it('exact duplicates count once; same-instant samples that differ are kept', () => {
    const a = at(0, 100);
    const out = normalizeSamples([a, { ...a }, at(0, 100, true), at(0, 100, false, 'dock'), at(0, 99)]);
    expect(out).toHaveLength(4);
  });

  it('the same history sent twice, in any order, gives the same answer', () => {
    const { samples, h } = assessFixture('aging');
    const twice = [...samples, ...samples.map((s) => ({ ...s }))].reverse();
    expect(assessBattery({ samples: twice, healthPercent: 78, shiftHours: 10 })).toEqual(h);
  });

  it('a log reported again at the next visit adds nothing, though the skew measured one second off', () => {
    const f = fixture('healthy');
    const first = newDeviceSamples([], toLog(f), f.clockOffsetSeconds, { now: NOW });
    const second = newDeviceSamples(first, toLog(f), f.clockOffsetSeconds - 1, { now: NOW });
    expect(second).toEqual([]);
    const byTime = newDeviceSamples(new Set(first.map((s) => s.at)), toLog(f), f.clockOffsetSeconds + 2, { now: NOW });
    expect(byTime).toEqual([]);
  });

  it('only entries new since the last visit are returned, and they must match in value as well as time', () => {
    const f = fixture('healthy');
    const log = toLog(f);
    const stored = newDeviceSamples([], log.slice(0, 100), f.clockOffsetSeconds, { now: NOW });
    const fresh = newDeviceSamples(stored, log, f.clockOffsetSeconds, { now: NOW });
    expect(fresh).toHaveLength(log.length - 100);
    expect(fresh[0]!.at).toBe(log[100]!.at.getTime() - f.clockOffsetSeconds * 1000);
    // A reading at the same moment with another percent is a different reading.
    const changed = [{ ...log[0]!, percent: log[0]!.percent! - 1 }];
    expect(newDeviceSamples(stored, changed, f.clockOffsetSeconds, { now: NOW })).toHaveLength(1);
  });

  it('the callback form is asked with the corrected candidate and the tolerance', () => {
    const seen: Array<[number, number]> = [];
    const out = newDeviceSamples(
      (c, tol) => {
        seen.push([c.at, tol]);
        return c.percent === 90;
      },
      [
        { at: new Date(T0), percent: 90, charging: false },
        { at: new Date(T0 + H), percent: 80, charging: false },
      ],
      60,
      { now: NOW },
    );
    expect(seen).toEqual([
      [T0 - 60_000, DEDUP_TOLERANCE_MS],
      [T0 + H - 60_000, DEDUP_TOLERANCE_MS],
    ]);
    expect(out.map((s) => s.percent)).toEqual([80]);
  });

  it('repeats within one log count once', () => {
    const e = { at: new Date(T0), percent: 50, charging: false };
    expect(newDeviceSamples([], [e, { ...e }, { ...e, at: new Date(T0) }], 0, { now: NOW })).toHaveLength(1);
  });
});

describe('clock skew', () => {
  it('the true time is the camera time minus the offset', () => {
    const [s] = newDeviceSamples([], [{ at: new Date('2026-11-27T11:00:00Z'), percent: 60, charging: false }], 3600, {
      now: NOW,
    });
    expect(s).toEqual({ at: Date.parse('2026-11-27T10:00:00Z'), percent: 60, charging: false, source: 'device' });
  });

  it('an uncorrected hour puts the end of a night shift among the dock charging samples', () => {
    // Night shift 19:00–05:00 true time at 8 %/h on a camera an hour ahead; docked and charging
    // from 05:05, with a dock sample every 5 min.
    const start = Date.UTC(2026, 10, 20, 19);
    const cameraLog: DeviceLogInput[] = [];
    for (let k = 0; k <= 20; k++)
      cameraLog.push({ at: new Date(start + k * 30 * MIN + 3600_000), percent: 100 - 4 * k, charging: false });
    const dock: BatterySample[] = [];
    for (let k = 0; k < 24; k++)
      dock.push({
        at: start + 10 * H + 5 * MIN + k * 5 * MIN,
        percent: Math.min(100, 20 + k * 3),
        charging: true,
        source: 'dock',
        visit: 7,
      });

    const corrected = assess([...dock, ...newDeviceSamples([], cameraLog, 3600, { now: NOW })]);
    expect(corrected.drainPercentPerHour).toBe(8);
    expect(corrected.countedHours).toBe(10);
    expect(corrected.shifts).toMatchObject([{ start, end: start + 10 * H, percentUsed: 80 }]);

    // Read as if the clocks agreed, the shift starts an hour late and its last hour falls inside
    // the charging, where it cannot count.
    const raw = assess([...dock, ...newDeviceSamples([], cameraLog, 0, { now: NOW })]);
    expect(raw.countedHours).toBe(9);
    expect(raw.shifts).toMatchObject([{ start: start + H, end: start + 10 * H }]);
  });

  it('the same entries read with and without the correction never match as duplicates', () => {
    const f = fixture('night-ir');
    const corrected = newDeviceSamples([], toLog(f), f.clockOffsetSeconds, { now: NOW });
    expect(newDeviceSamples(corrected, toLog(f), 0, { now: NOW })).toHaveLength(corrected.length);
    expect(newDeviceSamples(corrected, toLog(f), f.clockOffsetSeconds, { now: NOW })).toEqual([]);
  });
});

describe('charging', () => {
  function docked(from: number, ratePerMin: number, minutes: number, visit = 1, startHour = 10): BatterySample[] {
    const out: BatterySample[] = [];
    for (let m = 0; m <= minutes; m++)
      out.push(at(startHour + m / 60, Math.min(100, from + ratePerMin * m), true, 'dock', visit));
    return out;
  }

  it('rate from dock samples and minutes to full from the latest reading', () => {
    const h = assess(docked(40, 0.5, 60));
    expect(h.chargeRatePercentPerHour).toBeCloseTo(30, 9);
    expect(h.minutesToFull).toBeCloseTo(60, 9);
    expect(formatBatteryHealth(h).minutesToFull).toBe(60);
  });

  it('full-to-full intervals do not slow the rate, and a full battery is 0 minutes from full', () => {
    const h = assess(docked(70, 1, 90));
    expect(h.chargeRatePercentPerHour).toBeCloseTo(60, 9);
    expect(h.minutesToFull).toBe(0);
  });

  it('device charging entries, short data, other visits and a camera off the dock give no figure', () => {
    const device = docked(40, 0.5, 60).map((s) => ({ ...s, source: 'device' as const }));
    expect(assess(device).chargeRatePercentPerHour).toBeNull();
    expect(assess(docked(40, 0.5, 10)).chargeRatePercentPerHour).toBeNull();
    // Two 6-minute visits; only an interval bridging them would reach the 15 minutes needed.
    const bridged = [...docked(40, 0.5, 6, 1), ...docked(60, 0.5, 6, 2, 10.5)];
    expect(assess(bridged).chargeRatePercentPerHour).toBeNull();
    const undocked = [...docked(40, 0.5, 60), at(11.5, 70)];
    const h = assess(undocked);
    expect(h.chargeRatePercentPerHour).toBeCloseTo(30, 9);
    expect(h.minutesToFull).toBeNull();
  });
});

describe('shifts and trend', () => {
  it('labels rising, stable and falling at ±0.5 %/h per shift', () => {
    expect(assess(shiftSeries([6, 6.6, 7.2, 7.8])).trend.label).toBe('rising');
    expect(assess(shiftSeries([6, 6.4, 6.8, 7.2])).trend.label).toBe('stable');
    expect(assess(shiftSeries([9, 9.1, 8.9, 9])).trend.label).toBe('stable');
    expect(assess(shiftSeries([10, 9, 8, 7])).trend.label).toBe('falling');
    const t = assess(shiftSeries([6, 6.6, 7.2, 7.8])).trend;
    expect(t.slopePercentPerHourPerShift).toBeCloseTo(0.6, 9);
    expect(t.shifts).toBe(4);
  });

  it('needs three shifts, and fits only the last five', () => {
    expect(assess(shiftSeries([6, 9])).trend).toEqual({
      label: 'unknown',
      slopePercentPerHourPerShift: null,
      shifts: 2,
    });
    const h = assess(shiftSeries([12, 5, 6, 7, 8, 9]));
    expect(h.shifts).toHaveLength(6);
    expect(h.trend).toEqual({ label: 'rising', slopePercentPerHourPerShift: expect.closeTo(1, 9), shifts: 5 });
  });

  it('a shift ends at a charging sample or a gap over 4 h; short excursions do not count toward the trend', () => {
    const samples = [
      ...shiftSeries([6, 7, 8]),
      // Camera switched off over a long break: a 5 h gap splits the day in two.
      ...[at(72, 100), at(73, 92), at(78, 90), at(79, 82)],
      // Ten minutes off the dock between two charges.
      at(80, 95, true),
      at(80.1, 95),
      at(80.25, 93),
      at(80.3, 93, true),
    ];
    const h = assess(samples);
    expect(h.shifts.map((s) => s.countedHours)).toEqual([8, 8, 8, 1, 1, expect.closeTo(0.15, 9)]);
    expect(h.shifts[3]).toMatchObject({
      start: T0 + 72 * H,
      end: T0 + 73 * H,
      hours: 1,
      percentUsed: 8,
      drainPercentPerHour: 8,
    });
    expect(h.shifts[4]).toMatchObject({ start: T0 + 78 * H, end: T0 + 79 * H, drainPercentPerHour: 8 });
    expect(h.shifts[5]!.countedHours).toBeCloseTo(0.15, 9);
    // The 0.15 h excursion and its 13 %/h are left out of the trend; the five it fits are 6, 7, 8, 8, 8.
    expect(h.trend.shifts).toBe(5);
    expect(h.trend.slopePercentPerHourPerShift).toBeCloseTo(0.5, 9);
  });

  it('reports each shift from its first to its last sample', () => {
    const [s] = assess(shiftSeries([7.5])).shifts;
    expect(s).toEqual({
      start: T0,
      end: T0 + 8 * H,
      hours: 8,
      countedHours: 8,
      startPercent: 100,
      endPercent: 40,
      percentUsed: 60,
      drainPercentPerHour: 7.5,
    });
  });
});

describe('sparkline', () => {
  it('scales from the lowest to the highest value', () => {
    expect(sparkline([1, 2, 3, 4, 5, 6, 7, 8])).toBe('▁▂▃▄▅▆▇█');
    expect(sparkline([7, 10.5])).toBe('▁█');
    expect(sparkline([0, 5, 10])).toBe('▁▅█');
  });

  it('is empty for no values and the middle bar for constant ones', () => {
    expect(sparkline([])).toBe('');
    expect(sparkline([6.5, 6.5, 6.5])).toBe('▄▄▄');
  });

  it('shows non-finite values as gaps and survives a long series', () => {
    expect(sparkline([Number.NaN, 1, Number.POSITIVE_INFINITY, 3])).toBe(' ▁ █');
    expect(sparkline([Number.NaN, Number.NaN])).toBe('  ');
    const long = Array.from({ length: 300_000 }, (_, i) => i % 8);
    expect(sparkline(long).slice(0, 8)).toBe('▁▂▃▄▅▆▇█');
  });

  it('draws the per-shift drain of the aging fixture as a climb', () => {
    const { h } = assessFixture('aging');
    expect(sparkline(h.shifts.map((s) => s.drainPercentPerHour))).toBe('▁▃▄▆█');
  });
});

describe('hostile device logs', () => {
  const good = { at: new Date(T0), percent: 50, charging: false };

  it('drops entries that are not plausible readings and keeps the one that is', () => {
    const hostile = [
      { at: new Date(T0 + 1000), percent: -1, charging: false },
      { at: new Date(T0 + 2000), percent: 100.5, charging: false },
      { at: new Date(T0 + 3000), percent: Number.NaN, charging: false },
      { at: new Date(T0 + 4000), percent: Number.POSITIVE_INFINITY, charging: false },
      { at: new Date(T0 + 5000), percent: '50', charging: false },
      { at: new Date(T0 + 6000), charging: false },
      { at: new Date('not a date'), percent: 50, charging: false },
      { at: '2026-11-02T06:00:07Z', percent: 50, charging: false },
      { at: new Date('1999-12-31T23:59:59Z'), percent: 50, charging: false },
      { at: new Date('1970-01-01T00:00:00Z'), percent: 50, charging: false },
      { at: new Date(NOW + 25 * H), percent: 50, charging: false },
      { at: new Date(8.64e15), percent: 50, charging: false },
      { at: new Date(T0 + 8000), percent: 50, charging: 'yes' },
      null,
      42,
      good,
    ] as unknown as DeviceLogInput[];
    expect(newDeviceSamples([], hostile, 0, { now: NOW })).toEqual([
      { at: T0, percent: 50, charging: false, source: 'device' },
    ]);
  });

  it('drops entries older than the samples kept, on the dock clock', () => {
    const log = [
      { at: new Date(T0 - 1), percent: 40, charging: false },
      { at: new Date(T0), percent: 41, charging: false },
      { at: new Date(T0 + 3600_000), percent: 42, charging: false },
    ];
    // The camera's clock an hour ahead: its T0 + 1 h entry is T0 on the dock's.
    expect(newDeviceSamples([], log, 3600, { now: NOW, earliest: T0 }).map((s) => s.percent)).toEqual([42]);
    expect(newDeviceSamples([], log, 0, { now: NOW, earliest: T0 }).map((s) => s.percent)).toEqual([41, 42]);
  });

  it('an entry a little ahead of the dock clock is kept, and a missing charging flag reads as not charging', () => {
    const out = newDeviceSamples([], [{ at: new Date(NOW + 23 * H), percent: 50 }], 0, { now: NOW });
    expect(out).toEqual([{ at: NOW + 23 * H, percent: 50, charging: false, source: 'device' }]);
  });

  it('an offset that is not a number stores nothing, and a log that is not an array is ignored', () => {
    expect(newDeviceSamples([], [good], Number.NaN, { now: NOW })).toEqual([]);
    expect(newDeviceSamples([], [good], Number.POSITIVE_INFINITY, { now: NOW })).toEqual([]);
    expect(newDeviceSamples([], { length: 1, 0: good } as unknown as DeviceLogInput[], 0, { now: NOW })).toEqual([]);
  });

  it('an offset that throws times out of range drops them', () => {
    expect(newDeviceSamples([], [good], -400 * 24 * 3600, { now: NOW })).toEqual([]);
    expect(newDeviceSamples([], [good], 40 * 365 * 24 * 3600, { now: NOW })).toEqual([]);
  });

  it('takes at most the newest entries allowed per visit', () => {
    const n = MAX_LOG_ENTRIES_PER_VISIT + 500;
    const flood: DeviceLogInput[] = Array.from({ length: n }, (_, i) => ({
      at: new Date(T0 + i * 1000),
      percent: i % 101,
      charging: false,
    }));
    const out = newDeviceSamples([], flood, 0, { now: NOW });
    expect(out).toHaveLength(MAX_LOG_ENTRIES_PER_VISIT);
    expect(out[0]!.at).toBe(T0 + 500 * 1000);
    expect(out.at(-1)!.at).toBe(T0 + (n - 1) * 1000);
    expect(newDeviceSamples([], flood.slice(0, 10), 0, { now: NOW, maxEntries: 3 }).map((s) => s.percent)).toEqual([
      7, 8, 9,
    ]);
  });
});
