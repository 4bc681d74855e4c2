/**
 * The city-wide page of `dockd fleet --html`: one self-contained file (inline CSS and SVG, no
 * script, nothing fetched) with the docks and their health, the cameras that will not last a
 * shift wherever they dock, and each camera's battery history across the docks it used. Every
 * string in it came from a document anyone with write access could have written: it goes
 * through the `html` tag, which escapes it.
 */
import { bytes } from '../lib/format.js';
import { html, trusted, type Markup } from '../report/markup.js';
import { percentChart } from '../report/svg.js';
import type { BatteryPoint, FleetCamera, FleetDock, FleetView } from './view.js';

/** Charts beyond this many would make a page nobody scrolls; the table lists every camera. */
export const MAX_HISTORIES = 200;
const DOCK_COLOURS = ['#2563eb', '#d97706', '#059669', '#7c3aed', '#db2777', '#0891b2', '#65a30d', '#dc2626'];

const CSS = `
:root{--ok:#1b7f3b;--short:#c62828;--degraded:#b26a00;--unknown:#6b7280;--ink:#1f2933;--muted:#6b7280;--line:#e5e7eb;--bg:#f6f7f9}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:var(--ink);background:var(--bg)}
header{background:#1f2933;color:#fff;padding:16px 24px}header h1{margin:0 0 6px;font-size:20px}header p{margin:0;color:#cbd2d9}
main{padding:16px 24px;max-width:1800px}section{margin:0 0 24px}h2{font-size:16px;margin:0 0 10px;border-bottom:1px solid var(--line);padding-bottom:4px}
table{border-collapse:collapse;background:#fff;border:1px solid var(--line)}th,td{text-align:left;padding:5px 10px;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:12px;color:var(--muted);font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}code{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:12px;word-break:break-all}
.badge{display:inline-block;border-radius:999px;padding:1px 10px;font-size:12px;font-weight:700;color:#fff;text-transform:uppercase;background:var(--unknown)}
.badge.running,.badge.ok{background:var(--ok)}.badge.stale,.badge.short,.badge.bad{background:var(--short)}.badge.stopped{background:var(--unknown)}.badge.degraded{background:var(--degraded)}
.warnings div{background:#fdecec;border:1px solid var(--short);border-radius:6px;padding:8px 12px;margin:0 0 8px;font-weight:600;color:var(--short);word-break:break-word}
.none{color:var(--muted)}.ok-text{color:var(--ok);font-weight:700}.bad-text{color:var(--short);font-weight:700}
.histories{display:grid;grid-template-columns:repeat(auto-fill,minmax(590px,1fr));gap:14px}
.history{background:#fff;border:1px solid var(--line);border-left:6px solid var(--unknown);border-radius:8px;padding:12px 14px}
.history[data-status=ok]{border-left-color:var(--ok)}.history[data-status=short]{border-left-color:var(--short)}.history[data-status=degraded]{border-left-color:var(--degraded)}
.history h3{margin:0 0 4px;font-size:16px;display:flex;gap:10px;align-items:center;word-break:break-all}.meta{color:var(--muted);font-size:12px;margin:0 0 6px}
.chart{display:block;max-width:100%;height:auto}.chart .grid{stroke:var(--line)}.chart .axis{fill:var(--muted);font-size:10px}.chart .empty{fill:var(--muted);font-size:12px}
.chart .line{fill:none;stroke:#2563eb;stroke-width:1.5;stroke-linejoin:round}.legend{font-size:12px;color:var(--muted)}.legend i{display:inline-block;width:10px;height:10px;border-radius:2px;margin:0 4px 0 10px;vertical-align:-1px}
`;

function when(iso: string | null): Markup {
  if (!iso) return html`<span class="none">-</span>`;
  return html`<time datetime="${iso}">${iso.replace('T', ' ').slice(0, 19)}</time>`;
}

function dockRow(d: FleetDock): Markup {
  const head = d.custodyHead;
  return html`<tr class="dock" data-dock="${d.dockId}" data-state="${d.state}">
<td><code>${d.dockId}</code></td><td><span class="badge ${d.state}">${d.state}</span></td><td>${when(d.lastSeenAt)}</td>
<td class="num">${d.docked.length}</td><td class="num">${d.queue.pending} pending, ${d.queue.failed} failed</td>
<td class="num">${d.replication.count} (${bytes(d.replication.bytes)})</td><td class="num">${bytes(d.freeBytes)}</td>
<td data-signature-ok="${head ? head.signatureOk : 'none'}">${head ? html`seq ${head.seq} ${head.signatureOk ? html`<span class="ok-text">signed</span>` : html`<span class="bad-text">SIGNATURE BAD</span>`}` : html`<span class="none">-</span>`}</td>
<td><code>${d.key.keyId ?? '-'}</code> ${d.key.trust}</td><td>${d.version}</td></tr>`;
}

function docks(v: FleetView): Markup {
  if (!v.docks.length)
    return html`<section id="docks"><h2>Docks</h2><p class="none">no dock publishes its state to this bucket yet</p></section>`;
  const counts = (s: FleetDock['state']) => v.docks.filter((d) => d.state === s).length;
  return html`<section id="docks"><h2>Docks (${v.docks.length}: ${counts('running')} running, ${counts('stale')} stale, ${counts('stopped')} stopped)</h2>
<table><tr><th>dock</th><th>state</th><th>last seen</th><th>docked</th><th>offload queue</th><th>to replicate</th><th>free</th><th>custody head</th><th>key</th><th>version</th></tr>
${v.docks.map(dockRow)}</table></section>`;
}

const atRisk = (c: FleetCamera) => c.battery.status === 'short' || c.battery.status === 'degraded';

function shortList(v: FleetView): Markup {
  const cams = v.cameras.filter(atRisk);
  const body = cams.length
    ? html`<table><tr><th>camera</th><th>battery</th><th>runtime from full</th><th>health</th><th>judged at</th><th>last dock</th><th>docks used</th></tr>${cams.map(
        (
          c,
        ) => html`<tr data-serial="${c.serial}"><td><code>${c.serial}</code></td><td><span class="badge ${c.battery.status}">${c.battery.status}</span></td>
<td class="num">${c.battery.projectedRuntimeHours === null ? '-' : `${c.battery.projectedRuntimeHours} h of ${c.battery.shiftHours} h`}</td><td class="num">${c.battery.healthPercent === null ? '-' : `${c.battery.healthPercent} %`}</td>
<td><code>${c.battery.dock}</code></td><td><code>${c.lastDock}</code> ${when(c.lastSeenAt)}</td><td>${c.docks.map((d) => d.dockId).join(', ')}</td></tr>`,
      )}</table>`
    : html`<p class="none">every camera lasts a shift</p>`;
  return html`<section id="short"><h2>Cameras that will not last a shift, wherever they dock (${cams.length})</h2>${body}</section>`;
}

/** Which dock held the camera, along the same time axis as its chart. */
function dockStrip(points: readonly BatteryPoint[], colour: (dock: string) => string): Markup {
  const w = 560;
  const left = 34;
  const right = 8;
  if (points.length === 0) return html``;
  const from = points[0]!.at;
  const span = points.at(-1)!.at - from || 1;
  const x = (t: number) => left + ((w - left - right) * (t - from)) / span;
  const rects = points.map((p, i) => {
    const x0 = x(p.at);
    const x1 = i + 1 < points.length ? x(points[i + 1]!.at) : w - right;
    return html`<rect x="${x0.toFixed(1)}" y="0" width="${Math.max(1, x1 - x0).toFixed(1)}" height="8" fill="${colour(p.dockId)}"><title>${p.dockId}</title></rect>`;
  });
  return html`<svg class="chart strip" viewBox="0 0 ${w} 8" width="${w}" height="8" role="img"><title>dock of each point</title>${rects}</svg>`;
}

function histories(v: FleetView, series: (serial: string) => BatteryPoint[]): Markup {
  const ranked = [...v.cameras]
    .sort((a, b) => Number(atRisk(b)) - Number(atRisk(a)) || Date.parse(b.lastSeenAt) - Date.parse(a.lastSeenAt))
    .slice(0, MAX_HISTORIES);
  const colours = new Map(v.docks.map((d, i) => [d.dockId, DOCK_COLOURS[i % DOCK_COLOURS.length]!]));
  const colour = (dock: string) => colours.get(dock) ?? '#9ca3af';
  const cards = ranked.map((c) => {
    const points = series(c.serial);
    const used = [...new Set(points.map((p) => p.dockId))];
    return html`<article class="history" data-serial="${c.serial}" data-status="${c.battery.status}">
<h3><code>${c.serial}</code><span class="badge ${c.battery.status}">${c.battery.status}</span></h3>
<div class="meta">${c.model ?? 'unknown model'} · last at <code>${c.lastDock}</code> ${when(c.lastSeenAt)}${c.docked ? ' (docked now)' : ''} · docks used: ${c.docks.map((d) => d.dockId).join(', ')}</div>
${percentChart(points, { title: `battery of ${c.serial}: lowest percent per 3 hours, from ${used.length} dock${used.length === 1 ? '' : 's'}` })}
${dockStrip(points, colour)}
<div class="legend">${used.map((d) => html`<i style="background:${colour(d)}"></i>${d}`)}</div></article>`;
  });
  const more =
    v.cameras.length > ranked.length
      ? html`<p class="none">${v.cameras.length - ranked.length} more cameras in the table below</p>`
      : '';
  return html`<section id="history"><h2>Battery history across docks</h2>${cards.length ? html`<div class="histories">${cards}</div>` : html`<p class="none">no cameras seen yet</p>`}${more}</section>`;
}

function cameraTable(v: FleetView): Markup {
  return html`<section id="cameras"><h2>Every camera (${v.cameras.length})</h2>${
    v.cameras.length
      ? html`<table><tr><th>camera</th><th>battery</th><th>last dock</th><th>last seen</th><th>docked</th><th>docks used</th></tr>${v.cameras.map(
          (c) =>
            html`<tr><td><code>${c.serial}</code></td><td><span class="badge ${c.battery.status}">${c.battery.status}</span></td><td><code>${c.lastDock}</code></td><td>${when(c.lastSeenAt)}</td><td>${c.docked ? 'yes' : 'no'}</td><td>${c.docks.map((d) => d.dockId).join(', ')}</td></tr>`,
        )}</table>`
      : html`<p class="none">none</p>`
  }</section>`;
}

export function renderFleetPage(v: FleetView, series: (serial: string) => BatteryPoint[]): string {
  const warnings = v.warnings.length
    ? html`<section class="warnings" id="warnings">${v.warnings.map((w) => html`<div data-kind="${w.kind}">${w.message}</div>`)}</section>`
    : '';
  return html`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>dockd fleet ${v.generatedAt.slice(0, 10)}</title>
<style>${trusted(CSS)}</style></head><body>
<header><h1>dockd fleet: bucket ${v.bucket}</h1><p>generated ${when(v.generatedAt)} · ${v.docks.length} docks · ${v.cameras.length} cameras · ${v.trust.note}</p></header>
<main>${warnings}${docks(v)}${shortList(v)}${histories(v, series)}${cameraTable(v)}</main></body></html>
`.text;
}
