import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { inflateSync } from 'node:zlib';
import { ROOT, TestDock, waitFor } from './support/harness.js';
import { openStore } from '../src/store/db.js';
import { loadConfig } from '../src/config.js';
import { buildReport, MAX_CHART_POINTS, type ReportModel } from '../src/report/model.js';
import { renderReport } from '../src/report/html.js';
import { storeCameraEvents } from '../src/store/camera-settings.js';
import { generatePilot } from '../fixtures/stages/generate.mjs';
import { cli } from './support/harness.js';
import { chromium, tags } from './support/browser.js';

const HOSTILE = '<img src=x onerror=alert(1)>';
const HOSTILE_FILE = 'DCIM/100/<b onmouseover=alert(2)>.MP4';

interface Fixture {
  serial: string;
  clockOffsetSeconds: number;
  battery: Record<string, unknown>;
  batteryLog: Array<{ at: string; percent: number; charging: boolean }>;
}

/** The fixture's log moved so that it ends an hour ago, as in battery.test.ts. */
function fixture(name: string): Fixture {
  const f = JSON.parse(readFileSync(path.join(ROOT, 'fixtures', 'battery', `${name}.json`), 'utf8')) as Fixture;
  const last = Math.max(...f.batteryLog.map((e) => Date.parse(e.at)));
  const shift = Date.now() + f.clockOffsetSeconds * 1000 - 3600_000 - last;
  f.batteryLog = f.batteryLog.map((e) => ({ ...e, at: new Date(Date.parse(e.at) + shift).toISOString() }));
  return f;
}

/** The inner HTML of the element opened at `start`, for elements that do not nest in themselves. */
function elementAt(doc: string, start: number, name: string): string {
  const end = doc.indexOf(`</${name}>`, start);
  return doc.slice(start, end);
}

/** Decoded 8-bit RGB(A) pixels of a PNG, enough to tell a rendered page from a blank one. */
function pngPixels(png: Buffer): { width: number; height: number; channels: number; data: Buffer } {
  expect(png.subarray(1, 4).toString()).toBe('PNG');
  let off = 8;
  let width = 0;
  let height = 0;
  let channels = 0;
  const idat: Buffer[] = [];
  while (off < png.length) {
    const len = png.readUInt32BE(off);
    const type = png.subarray(off + 4, off + 8).toString();
    const body = png.subarray(off + 8, off + 8 + len);
    if (type === 'IHDR') {
      width = body.readUInt32BE(0);
      height = body.readUInt32BE(4);
      expect(body[8]).toBe(8);
      channels = { 2: 3, 6: 4 }[body[9]!] ?? 0;
      expect(channels).toBeGreaterThan(0);
    }
    if (type === 'IDAT') idat.push(body);
    off += 12 + len;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  const data = Buffer.alloc(stride * height);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let x = 0; x < stride; x++) {
      const a = x >= channels ? data[y * stride + x - channels]! : 0;
      const b = y > 0 ? data[(y - 1) * stride + x]! : 0;
      const c = x >= channels && y > 0 ? data[(y - 1) * stride + x - channels]! : 0;
      const p = a + b - c;
      const pa = Math.abs(p - a);
      const pb = Math.abs(p - b);
      const pc = Math.abs(p - c);
      const pred = [0, a, b, (a + b) >> 1, pa <= pb && pa <= pc ? a : pb <= pc ? b : c][filter]!;
      data[y * stride + x] = (line[x]! + pred) & 0xff;
    }
  }
  return { width, height, channels, data };
}

let dock: TestDock | undefined;
let tmp: string | undefined;
afterEach(async () => {
  await dock?.cleanup();
  dock = undefined;
  if (tmp) rmSync(tmp, { recursive: true, force: true });
  tmp = undefined;
});

describe('fleet report', () => {
  it('renders batteries, offloads, failures, archive and custody as one self-contained page that a browser shows', async () => {
    dock = new TestDock({
      battery: { shiftHours: 10, sampleIntervalMs: 200 },
      ingest: { retry: { attempts: 2, baseDelayMs: 50, maxDelayMs: 200 } },
      custody: { checkpointEvery: 5 },
    });
    const names = ['healthy', 'night-ir', 'aging'];
    const serials = names.map((n) => fixture(n).serial);
    for (const name of names) {
      const f = fixture(name);
      // The recording that fails carries a hostile name, so the failures table shows it.
      const files = [1, 2, 3].map((i) => ({
        rel: name === 'night-ir' && i === 2 ? HOSTILE_FILE : `DCIM/100/REC000${i}.MP4`,
        size: 4096 + i,
      }));
      const faults = name === 'night-ir' ? [{ path: HOSTILE_FILE, kind: 'io-error', atByte: 1024 }] : [];
      dock.dock(name, {
        serial: f.serial,
        files,
        spec: { battery: f.battery, clockOffsetSeconds: f.clockOffsetSeconds, batteryLog: f.batteryLog, faults },
      });
    }
    dock.dock('hostile', {
      serial: HOSTILE,
      files: [{ rel: 'DCIM/100/REC0001.MP4', size: 2048 }],
      spec: { model: '<script>alert(3)</script>', battery: { percent: 80, charging: true } },
    });
    const d = dock.start();
    await waitFor('offloads settled', async () => {
      const recs = await dock!.recordings();
      return (
        recs.length === 10 &&
        recs.filter((r) => r.status === 'verified').length === 9 &&
        recs.filter((r) => r.status === 'failed').length === 1
      );
    });
    await d.waitForEvent('custody.checkpoint');

    const model = await dock.json<ReportModel>(['report']);
    expect(model.daemon.running).toBe(true);
    expect(model.dataDir).toBe(dock.dataDir);
    expect(model.cameras.map((c) => c.serial).sort()).toEqual([...serials, HOSTILE].sort());
    const bySerial = new Map(model.cameras.map((c) => [c.serial, c]));
    expect(bySerial.get(fixture('night-ir').serial)!.status).toBe('short');
    expect(bySerial.get(fixture('aging').serial)!.status).toBe('degraded');
    expect(bySerial.get(fixture('healthy').serial)!.status).toBe('ok');
    expect(model.cameras[0]!.status).toBe('short');
    for (const s of serials) expect(bySerial.get(s)!.chart.points.length).toBeGreaterThan(50);
    expect(model.offloads.days).toHaveLength(30);
    // Today's bar, or yesterday's and today's when the test runs across midnight.
    expect(model.offloads.days.slice(-2).reduce((s, d) => s + d.count, 0)).toBe(9);
    expect(model.offloads.count).toBe(9);
    expect(model.failures.recordings).toEqual([
      {
        error: expect.stringMatching(/io-error/),
        count: 1,
        cameras: [fixture('night-ir').serial],
        example: HOSTILE_FILE,
      },
    ]);
    expect(model.failures.events).toEqual([
      expect.objectContaining({
        class: 'transient',
        count: 2,
        gaveUp: 1,
        lastError: expect.stringMatching(/io-error/),
      }),
    ]);
    expect(model.archive).toMatchObject({ verifiedCount: 9, failed: 1 });
    expect(model.archive.verifiedBytes).toBe([...dock.sources.values()].reduce((s, f) => s + f.bytes, 0) - 4098);
    expect(model.archive.freeBytes).toBeGreaterThan(0);
    expect(model.custody.chain.ok).toBe(true);
    expect(model.custody.checkpoint!.seq).toBeGreaterThan(0);
    expect(model.custody.checkpoints.bad).toEqual([]);
    expect(model.custody.head!.seq).toBe(model.custody.events);

    tmp = mkdtempSync(path.join(os.tmpdir(), 'dockd-report-'));
    const file = path.join(tmp, 'report.html');
    const r = await dock.cli(['report', '--html', file]);
    expect(r.code, r.stderr).toBe(0);
    const page = readFileSync(file, 'utf8');
    expect(page).not.toMatch(/<script|<link|<iframe|@import|url\(/i);
    expect(page).toContain('&lt;img src=x onerror=alert(1)&gt;');

    const dom = await chromium(['--dump-dom', `file://${file}`], path.join(tmp, 'profile'));
    const all = tags(dom);
    expect(all.length).toBeGreaterThan(100);
    // Nothing a camera sent became markup: no such elements, no event handler attributes.
    expect(all.filter((t) => ['img', 'script', 'iframe', 'object', 'embed'].includes(t.name))).toEqual([]);
    expect(all.filter((t) => [...t.attrs.keys()].some((k) => k.startsWith('on')))).toEqual([]);
    expect(dom).toContain('<span class="serial">&lt;img src=x onerror=alert(1)&gt;</span>');
    expect(dom).toContain('&lt;script&gt;alert(3)&lt;/script&gt;');
    expect(dom).toContain('<code>DCIM/100/&lt;b onmouseover=alert(2)&gt;.MP4</code>');
    // Self-contained: nothing is fetched from anywhere.
    for (const t of all) {
      for (const [k, v] of t.attrs)
        if (['src', 'href', 'xlink:href', 'action', 'poster'].includes(k))
          expect(v, `${t.name} ${k}`).not.toMatch(/^\s*(https?:|\/\/)/i);
    }

    const articles = [...dom.matchAll(/<article class="camera" data-serial="([^"]*)" data-status="([^"]*)">/g)];
    expect(articles).toHaveLength(4);
    const short = articles.find((a) => a[1] === fixture('night-ir').serial)!;
    expect(short[2]).toBe('short');
    expect(elementAt(dom, short.index, 'h3')).toMatch(/<span class="badge short">short<\/span>/);
    for (const a of articles) {
      const card = elementAt(dom, a.index, 'article');
      expect(card).toMatch(/<svg class="chart"/);
      if (a[1] === HOSTILE || a[1] === '&lt;img src=x onerror=alert(1)&gt;') continue;
      const d = /<path class="line" d="([^"]+)"/.exec(card)![1]!;
      expect(d.match(/[ML]/g)!.length, a[1]).toBeGreaterThan(50);
      expect(card).toMatch(/<svg class="chart drain"/);
    }
    const offloads = /<svg class="chart offloads"[\s\S]*?<\/svg>/.exec(dom)![0];
    expect(offloads.match(/<rect class="bar"/g)).toHaveLength(30);
    expect(
      [...offloads.matchAll(/<title>\d{4}-\d\d-\d\d: (\d+) recordings/g)].reduce((s, m) => s + Number(m[1]), 0),
    ).toBe(9);
    expect(dom).toMatch(/<td id="chain" data-ok="true">/);
    expect(dom).toMatch(/id="daemon" data-running="true"/);
    expect(dom).toMatch(/io-error/);

    const png = path.join(tmp, 'report.png');
    await chromium(['--screenshot=' + png, '--window-size=1280,2000', `file://${file}`], path.join(tmp, 'profile'));
    expect(statSync(png).size).toBeGreaterThan(20_000);
    const img = pngPixels(readFileSync(png));
    expect([img.width, img.height]).toEqual([1280, 2000]);
    const colours = new Set<number>();
    let shortRed = 0;
    for (let i = 0; i < img.data.length; i += img.channels) {
      const [r, g, b] = [img.data[i]!, img.data[i + 1]!, img.data[i + 2]!];
      colours.add((r << 16) | (g << 8) | b);
      if (r === 0xc6 && g === 0x28 && b === 0x28) shortRed++;
    }
    expect(colours.size).toBeGreaterThan(100);
    // The short camera's badge and border are drawn in the "short" colour.
    expect(shortRed).toBeGreaterThan(200);
  });

  it('keeps a year of minute samples per camera small', () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'dockd-report-'));
    const db = openStore(tmp);
    try {
      const now = Date.now();
      const insert = db.prepare(
        'INSERT INTO battery_samples (camera, at, percent, charging, source, visit) VALUES (?, ?, ?, ?, ?, 0)',
      );
      db.prepare("INSERT INTO cameras (serial, first_seen, last_seen) VALUES ('DU-YEAR', ?, ?)").run(
        new Date(now).toISOString(),
        new Date(now).toISOString(),
      );
      db.transaction(() => {
        // A 24 h cycle: ten hours of use from full, then charging back up.
        for (let m = 0; m < 365 * 24 * 60; m++) {
          const h = m % (24 * 60);
          const use = h < 600;
          insert.run(
            'DU-YEAR',
            now - (365 * 24 * 60 - m) * 60_000,
            use ? 100 - h / 10 : Math.min(100, 40 + (h - 600) / 5),
            use ? 0 : 1,
            'device',
          );
        }
      })();
      const model = buildReport(db, loadConfig({ dataDir: tmp, env: {}, cwd: tmp }));
      const cam = model.cameras[0]!;
      expect(cam.chart.samples).toBeGreaterThan(40_000);
      expect(cam.chart.points.length).toBeLessThanOrEqual(MAX_CHART_POINTS);
      // Min and max per bucket: the daily low (40 %) and the full charge both survive.
      expect(Math.min(...cam.chart.points.map((p) => p.percent))).toBeLessThan(41);
      expect(Math.max(...cam.chart.points.map((p) => p.percent))).toBe(100);
      expect(cam.status).toBe('ok');
      expect(renderReport(model).length).toBeLessThan(100_000);
      expect(JSON.stringify(model).length).toBeLessThan(100_000);
    } finally {
      db.close();
    }
  });

  it('shows the de-escalation funnel, the weekly escalation rate and the display-to-recording times of the seeded pilot', async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'dockd-report-'));
    const pilot = generatePilot({ seed: 25 });
    const db = openStore(tmp);
    for (const cam of pilot.cameras)
      storeCameraEvents(
        db,
        cam.serial,
        1,
        cam.entries.map((e) => ({ ...e, cameraAt: e.at })),
      );
    // A camera that never handed a log: no data, not zero.
    db.prepare("INSERT INTO cameras (serial, first_seen, last_seen) VALUES ('DU-OLD', ?, ?)").run(
      new Date().toISOString(),
      new Date().toISOString(),
    );
    db.close();
    const sum = (k: 'shifts' | 'activations' | 'escalated') => pilot.truth.reduce((a, t) => a + t[k], 0);

    const file = path.join(tmp, 'report.html');
    const r = await cli(['--data-dir', tmp, 'report', '--html', file], { env: { DOCKD_CONFIG: '' } });
    expect(r.code, r.stderr).toBe(0);
    const dom = await chromium(['--dump-dom', `file://${file}`], path.join(tmp, 'profile'));
    const section = /<section id="stages">[\s\S]*?<\/section>/.exec(dom)![0];
    expect(section).toContain('20 cameras, 1 without an event log: no data');
    expect(section).toContain(
      `<b id="escalation-rate">${((sum('escalated') / sum('activations')) * 100).toFixed(1)} %</b>`,
    );

    const stages = [
      ...section.matchAll(
        /<g class="stage" data-stage="(\w+)">[\s\S]*?<rect class="bar \w+" x="[^"]+" y="[^"]+" width="([^"]+)"[\s\S]*?<title>\w+: ([^<]+)<\/title>/g,
      ),
    ];
    expect(stages.map((m) => [m[1], m[3]])).toEqual([
      ['present', `${sum('shifts')} shifts`],
      ['display', `${sum('activations')} activations`],
      ['recording', `${sum('escalated')} escalated`],
    ]);
    // The recording bar is the escalated share of the display bar.
    expect(Number(stages[2]![2]) / Number(stages[1]![2])).toBeCloseTo(sum('escalated') / sum('activations'), 2);

    const weekly = /<svg class="chart weekly"[\s\S]*?<\/svg>/.exec(section)![0];
    const weeks = [...weekly.matchAll(/<title>(\d{4}-W\d\d): ([\d.]+) % of (\d+) activations/g)];
    expect(weeks).toHaveLength(8);
    weeks.forEach((m, i) =>
      expect(Number(m[2])).toBeCloseTo((pilot.truth[i]!.escalated / pilot.truth[i]!.activations) * 100, 1),
    );
    expect(weekly.match(/<rect class="bar"/g)).toHaveLength(8);

    const delays = /<svg class="chart delays"[\s\S]*?<\/svg>/.exec(section)![0];
    const buckets = [...delays.matchAll(/<title>[^<:]+: (\d+) escalations<\/title>/g)].map((m) => Number(m[1]));
    expect(buckets).toHaveLength(7);
    expect(buckets.reduce((a, b) => a + b, 0)).toBe(sum('escalated'));
  });
});
