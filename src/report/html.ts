/**
 * The report page: one self-contained HTML file (inline CSS and SVG, no script, no external
 * resource) rendered from the report model. A Content-Security-Policy that forbids scripts and
 * every fetch backs up the escaping: the file is opened from disk, where nothing else guards it.
 */
import { FLEET_WINDOW_DAYS } from '../battery/fleet.js';
import { profileChangeLine } from '../battery/profiles.js';
import { bytes } from '../lib/format.js';
import { html, trusted, type Markup } from './markup.js';
import { localDay, type ReportCamera, type ReportModel } from './model.js';
import { barChart, percentChart } from './svg.js';
import { stagesSection } from './stages.js';

const CSS = `
:root{--ok:#1b7f3b;--short:#c62828;--degraded:#b26a00;--unknown:#6b7280;--ink:#1f2933;--muted:#6b7280;--line:#e5e7eb;--bg:#f6f7f9}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:var(--ink);background:var(--bg)}
header{background:#1f2933;color:#fff;padding:16px 24px}header h1{margin:0 0 6px;font-size:20px}header dl{display:flex;flex-wrap:wrap;gap:4px 24px;margin:0}
header dt{color:#9aa5b1;font-size:12px}header dd{margin:0;font-family:ui-monospace,"DejaVu Sans Mono",monospace;word-break:break-all}
main{padding:16px 24px;max-width:1800px}section{margin:0 0 24px}h2{font-size:16px;margin:0 0 10px;border-bottom:1px solid var(--line);padding-bottom:4px}
.tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(160px,1fr));gap:12px}.tile{background:#fff;border:1px solid var(--line);border-radius:8px;padding:10px 14px}
.tile b{display:block;font-size:22px}.tile span{color:var(--muted);font-size:12px}.tile.bad{border-color:var(--short);background:#fdecec}.tile.warn{border-color:var(--degraded);background:#fff4e0}
.cams{display:grid;grid-template-columns:repeat(auto-fill,minmax(590px,1fr));gap:14px}
.camera{background:#fff;border:1px solid var(--line);border-left:6px solid var(--unknown);border-radius:8px;padding:12px 14px}
.camera[data-status=ok]{border-left-color:var(--ok)}.camera[data-status=short]{border-left-color:var(--short)}.camera[data-status=degraded]{border-left-color:var(--degraded)}
.camera h3{margin:0;font-size:16px;display:flex;align-items:center;gap:10px;word-break:break-all}.meta{color:var(--muted);font-size:12px;margin:2px 0 8px}
.badge{display:inline-block;border-radius:999px;padding:1px 10px;font-size:12px;font-weight:700;color:#fff;text-transform:uppercase;letter-spacing:.03em;background:var(--unknown)}
.badge.ok{background:var(--ok)}.badge.short{background:var(--short)}.badge.degraded{background:var(--degraded)}.badge.running{background:var(--ok)}.badge.stopped{background:var(--short)}
.stats{display:grid;grid-template-columns:repeat(5,auto);gap:2px 18px;margin-bottom:8px}.stats span{color:var(--muted);font-size:11px;display:block}.stats b{font-size:15px}
.runtime{height:8px;background:var(--line);border-radius:4px;position:relative;margin:4px 0 10px}.runtime i{position:absolute;left:0;top:0;bottom:0;border-radius:4px;background:var(--ok)}
.runtime.short i{background:var(--short)}.runtime em{position:absolute;top:-3px;bottom:-3px;width:2px;background:var(--ink)}
.chart{display:block;max-width:100%;height:auto}.chart .grid{stroke:var(--line)}.chart .axis{fill:var(--muted);font-size:10px}.chart .empty{fill:var(--muted);font-size:12px}
.chart .line{fill:none;stroke:#2563eb;stroke-width:1.5;stroke-linejoin:round}.chart .bar{fill:#3b82f6}.chart .bar.bad{fill:var(--short)}.chart .bar.warn{fill:var(--degraded)}
.chart .bar.present{fill:#9aa5b1}.chart .bar.recording{fill:var(--short)}.chart .threshold{stroke:var(--short);stroke-dasharray:4 3}.chart text.warn{fill:var(--short);paint-order:stroke;stroke:#fff;stroke-width:3px;font-weight:600}.sub{color:var(--muted);font-size:12px;margin:8px 0 2px}
table{border-collapse:collapse;background:#fff;border:1px solid var(--line)}th,td{text-align:left;padding:5px 10px;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:12px;color:var(--muted);font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}code{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:12px;word-break:break-all}
.ok-text{color:var(--ok);font-weight:700}.bad-text{color:var(--short);font-weight:700}.none{color:var(--muted)}
.disk{height:14px;background:var(--line);border-radius:7px;overflow:hidden;max-width:560px}.disk i{display:block;height:100%;background:#3b82f6}.disk.low i{background:var(--short)}
`;

function when(iso: string | null): Markup {
  if (!iso) return html`<span class="none">-</span>`;
  const d = new Date(iso);
  const p = (v: number) => String(v).padStart(2, '0');
  return html`<time datetime="${iso}" title="${iso}">${localDay(d.getTime())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}</time>`;
}

const dash = (v: number | null, unit = ''): string => (v === null ? '-' : `${v}${unit}`);

function header(m: ReportModel): Markup {
  const d = m.daemon;
  const daemon = d.running
    ? html`<span class="badge running">running</span> pid ${d.pid}, version ${d.version}, heartbeat ${when(d.heartbeatAt)}`
    : html`<span class="badge stopped">not running</span> ${d.stoppedAt ? html`stopped ${when(d.stoppedAt)}` : d.heartbeatAt ? html`last heartbeat ${when(d.heartbeatAt)}` : 'never started'}`;
  return html`<header><h1>dockd fleet report</h1><dl>
<div><dt>data dir</dt><dd id="data-dir">${m.dataDir}</dd></div>
<div><dt>generated</dt><dd>${when(m.generatedAt)}</dd></div>
<div><dt>daemon</dt><dd id="daemon" data-running="${d.running}">${daemon}</dd></div>
<div><dt>shift</dt><dd>${m.shiftHours} h</dd></div></dl></header>`;
}

function tiles(m: ReportModel): Markup {
  const short = m.cameras.filter((c) => c.status === 'short');
  const degraded = m.cameras.filter((c) => c.status === 'degraded');
  const failed = m.archive.failed;
  const c = m.custody;
  const custodyOk = c.chain.ok && c.checkpoints.bad.length === 0;
  return html`<section class="tiles">
<div class="tile${short.length ? ' bad' : ''}"><b>${short.length}</b><span>cameras short of a ${m.shiftHours} h shift${short.length ? html`: ${short.map((x) => x.serial).join(', ')}` : ''}</span></div>
<div class="tile${degraded.length ? ' warn' : ''}"><b>${degraded.length}</b><span>degraded batteries (of ${m.cameras.length} cameras)</span></div>
<div class="tile"><b>${m.offloads.count}</b><span>offloads in ${m.offloads.days.length} days, ${bytes(m.offloads.bytes)}</span></div>
<div class="tile${failed ? ' bad' : ''}"><b>${failed}</b><span>recordings failed, still on cameras</span></div>
<div class="tile"><b>${bytes(m.archive.freeBytes)}</b><span>free in the archive</span></div>
<div class="tile${custodyOk ? '' : ' bad'}"><b>${custodyOk ? 'intact' : 'BROKEN'}</b><span>custody chain, ${c.events} events</span></div>
</section>`;
}

function camera(c: ReportCamera, shiftHours: number): Markup {
  const runtime = c.projectedRuntimeHours;
  const scale = Math.max(shiftHours * 1.5, runtime ?? 0);
  const pct = (v: number) => `${Math.min(100, (v / scale) * 100).toFixed(1)}%`;
  const limit = 100 / shiftHours;
  const drains = c.shiftDrains.map((v, i) => ({
    label: String(i + 1),
    value: v,
    title: `shift ${i + 1} of the last ${c.shiftDrains.length}: ${v} %/h`,
    tone: v > limit ? ('bad' as const) : undefined,
  }));
  const chartTitle = `battery percent of ${c.serial}, ${c.chart.samples} samples shown as ${c.chart.points.length} points`;
  return html`<article class="camera" data-serial="${c.serial}" data-status="${c.status}">
<h3><span class="serial">${c.serial}</span><span class="badge ${c.status}">${c.status}</span></h3>
<div class="meta">${c.model ?? 'unknown model'} · ${c.docked ? html`docked in slot ${c.slot}` : html`last seen ${when(c.lastSeen)}`} · now ${c.percent === null ? '-' : `${c.percent}%`}${c.charging ? ' (charging)' : ''}</div>
<div class="stats">
<div><span>health</span><b>${dash(c.healthPercent, ' %')}</b></div>
<div><span>drain</span><b>${dash(c.drainPercentPerHour, ' %/h')}</b></div>
<div><span>runtime from full</span><b class="runtime-h">${dash(runtime, ' h')}</b></div>
<div><span>counted use</span><b>${c.countedHours} h</b></div>
<div><span>trend</span><b>${c.trend}</b></div>
</div>
<div class="runtime${c.status === 'short' ? ' short' : ''}" title="projected runtime ${dash(runtime, ' h')} against a ${shiftHours} h shift">${runtime === null ? '' : html`<i style="width:${pct(runtime)}"></i>`}<em style="left:${pct(shiftHours)}"></em></div>
<div class="sub">battery %, up to ${FLEET_WINDOW_DAYS} days back from the latest of ${c.chart.samples} samples</div>
${percentChart(c.chart.points, { title: chartTitle })}
<div class="sub">drain per shift, %/h (dashed: ${limit.toFixed(1)} %/h lasts exactly ${shiftHours} h)</div>
${drains.length ? barChart(drains, { title: `drain per shift of ${c.serial}`, height: 90, threshold: { value: limit, label: `${shiftHours} h shift` }, cls: 'drain' }) : html`<div class="none">no complete shift yet</div>`}
${profiles(c)}
</article>`;
}

/** Only for a camera the dock has given a profile: before and after is the point of it. */
function profiles(c: ReportCamera): Markup | string {
  if (!c.byProfile.some((p) => p.profile !== null)) return '';
  const line = profileChangeLine(c.byProfile);
  return html`<div class="sub">drain per settings profile${line ? html`: ${line}` : ''}</div>
<table class="profiles"><tr><th>profile</th><th>from</th><th>counted</th><th>drain</th><th>runtime from full</th></tr>${c.byProfile.map(
    (p) =>
      html`<tr data-profile="${p.profile ?? ''}"><td>${p.profile ?? '(before any profile)'}</td><td>${p.from === null ? '-' : localDay(p.from)}</td><td class="num">${p.countedHours} h</td><td class="num">${dash(p.drainPercentPerHour, ' %/h')}</td><td class="num">${dash(p.projectedRuntimeHours, ' h')}</td></tr>`,
  )}</table>`;
}

function offloads(m: ReportModel): Markup {
  const bars = m.offloads.days.map((d) => ({
    label: d.date.slice(5),
    value: d.count,
    title: `${d.date}: ${d.count} recordings, ${bytes(d.bytes)}`,
  }));
  return html`<section id="offloads"><h2>Offloads per day (verified, last ${m.offloads.days.length} days)</h2>
${barChart(bars, { title: 'verified recordings per day', width: 1000, height: 180, labelEvery: 5, cls: 'offloads' })}</section>`;
}

function failures(m: ReportModel): Markup {
  const f = m.failures;
  const recs = f.recordings.length
    ? html`<table id="failed-recordings"><tr><th>error</th><th>recordings</th><th>cameras</th><th>example</th></tr>${f.recordings.map(
        (r) =>
          html`<tr><td><code>${r.error || '(none recorded)'}</code></td><td class="num">${r.count}</td><td>${r.cameras.join(', ')}</td><td><code>${r.example}</code></td></tr>`,
      )}</table>`
    : html`<p class="none">no failed recordings</p>`;
  const events = f.events.length
    ? html`<table id="failure-events"><tr><th>class</th><th>failed attempts</th><th>gave up</th><th>latest</th><th>latest error</th></tr>${f.events.map(
        (e) =>
          html`<tr><td>${e.class}</td><td class="num">${e.count}</td><td class="num">${e.gaveUp}</td><td>${when(e.lastAt)}</td><td><code>${e.lastError ?? ''}</code></td></tr>`,
      )}</table>`
    : html`<p class="none">no failed offload attempts in the custody log</p>`;
  return html`<section id="failures"><h2>Failures</h2><div class="sub">recordings that failed for good, by error (dockd retry puts them back)</div>${recs}
<div class="sub">failed offload attempts in the custody log (offload.failed), by class</div>${events}</section>`;
}

function archive(m: ReportModel): Markup {
  const a = m.archive;
  const used = a.totalBytes && a.freeBytes !== null ? (a.totalBytes - a.freeBytes) / a.totalBytes : null;
  return html`<section id="archive"><h2>Archive</h2>
<table><tr><th>path</th><td><code>${a.path}</code></td></tr>
<tr><th>verified recordings</th><td>${a.verifiedCount} (${bytes(a.verifiedBytes)})</td></tr>
<tr><th>waiting / failed</th><td>${a.pending} pending, ${a.failed} failed</td></tr>
<tr><th>free space</th><td>${bytes(a.freeBytes)} of ${bytes(a.totalBytes)}${used === null ? '' : html` <div class="disk${used > 0.9 ? ' low' : ''}" title="${Math.round(used * 100)}% used"><i style="width:${(used * 100).toFixed(1)}%"></i></div>`}</td></tr></table></section>`;
}

function custody(m: ReportModel): Markup {
  const c = m.custody;
  const chain = c.chain.ok
    ? html`<span class="ok-text">intact</span>`
    : html`<span class="bad-text">BROKEN at seq ${c.chain.firstBadSeq}: ${c.chain.reason}</span>`;
  const cps = c.checkpoints;
  const bad = cps.bad.map((b) => html`<div class="bad-text">checkpoint ${b.seq}: ${b.reason}</div>`);
  return html`<section id="custody"><h2>Custody</h2>
<table><tr><th>chain</th><td id="chain" data-ok="${c.chain.ok}">${chain} (${c.events} events, recomputed now)</td></tr>
<tr><th>head</th><td>${c.head ? html`seq ${c.head.seq} at ${when(c.head.at)}` : html`<span class="none">no events yet</span>`}</td></tr>
<tr><th>latest signed checkpoint</th><td>${c.checkpoint ? html`seq ${c.checkpoint.seq} at ${when(c.checkpoint.at)}, key <code>${c.checkpoint.keyId}</code>; ${c.unsigned ? `${c.unsigned} events since, not yet signed` : 'the head is signed'}` : html`<span class="none">none yet</span>`}</td></tr>
<tr><th>checkpoint signatures</th><td>${cps.ok}/${cps.checked} ok${bad}</td></tr></table>
<p class="sub">Archived files are not re-hashed for this report: dockd verify does that.</p></section>`;
}

export function renderReport(m: ReportModel): string {
  return html`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>dockd fleet report ${localDay(Date.parse(m.generatedAt))}</title>
<style>${trusted(CSS)}</style></head><body>
${header(m)}<main>${tiles(m)}
<section id="cameras"><h2>Cameras and batteries (${m.cameras.length})</h2>${m.cameras.length ? html`<div class="cams">${m.cameras.map((c) => camera(c, m.shiftHours))}</div>` : html`<p class="none">no cameras seen yet</p>`}</section>
${offloads(m)}${stagesSection(m.stages)}${failures(m)}${archive(m)}${custody(m)}</main></body></html>
`.text;
}
