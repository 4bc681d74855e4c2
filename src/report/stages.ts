/**
 * The report's de-escalation section: the funnel present → display → recording, the weekly
 * escalation rate, and how long escalations took, all inline SVG like the battery charts.
 */
import type { StagesJson } from '../stages/read.js';
import { html, type Markup } from './markup.js';
import { barChart } from './svg.js';

const n = (v: number) => (Math.round(v * 10) / 10).toString();
const pct = (r: number | null) => (r === null ? '-' : `${(r * 100).toFixed(1)} %`);
const secs = (s: number | null) => (s === null ? '-' : s < 120 ? `${Math.round(s)} s` : `${(s / 60).toFixed(1)} min`);

/**
 * Three stages as bars. Present counts shifts, the other two count situations, so only display
 * and recording share a scale: the recording bar is the escalated share of the display bar.
 */
function funnel(s: StagesJson): Markup {
  const w = 560;
  const full = w - 190;
  const display = full * 0.8;
  const recording = s.displayActivations ? display * (s.escalated / s.displayActivations) : 0;
  const row = (i: number, stage: string, width: number, count: string, cls: string) =>
    html`<g class="stage" data-stage="${stage}"><text class="axis" x="0" y="${22 + i * 34}">${stage}</text><rect class="bar ${cls}" x="${n(90 + (full - width) / 2)}" y="${8 + i * 34}" width="${n(Math.max(width, 1))}" height="24"><title>${stage}: ${count}</title></rect><text class="axis" x="${w}" y="${22 + i * 34}" text-anchor="end">${count}</text></g>`;
  return html`<svg class="chart funnel" viewBox="0 0 ${w} 110" width="${w}" height="110" role="img"><title>present → display → recording</title>
${row(0, 'present', full, `${s.shifts} shifts`, 'present')}${row(1, 'display', display, `${s.displayActivations} activations`, 'display')}${row(2, 'recording', recording, `${s.escalated} escalated`, 'recording')}</svg>`;
}

export function stagesSection(s: StagesJson): Markup {
  if (!s.cameras) {
    return html`<section id="stages"><h2>De-escalation</h2><p class="none">no camera has handed an event log yet${s.camerasWithoutData ? ` (${s.camerasWithoutData} cameras without one: no data)` : ''}</p></section>`;
  }
  const weeks = s.weeks.map((w) => ({
    label: w.week.slice(5),
    value: (w.escalationRate ?? 0) * 100,
    title: `${w.week}: ${pct(w.escalationRate)} of ${w.displayActivations} activations escalated, ${w.shifts} shifts`,
  }));
  const delays = (s.delays ?? []).map((b) => ({
    label: b.label,
    value: b.count,
    title: `${b.label}: ${b.count} escalations`,
  }));
  return html`<section id="stages"><h2>De-escalation (${s.cameras} cameras${s.camerasWithoutData ? `, ${s.camerasWithoutData} without an event log: no data` : ''})</h2>
<div class="tiles">
<div class="tile"><b id="escalation-rate">${pct(s.escalationRate)}</b><span>of ${s.displayActivations} display activations escalated to a recording</span></div>
<div class="tile"><b>${s.directRecordings}</b><span>recordings started without the display</span></div>
<div class="tile"><b>${s.activationsPer100ShiftHours === null ? '-' : n(s.activationsPer100ShiftHours)}</b><span>activations per 100 of ${Math.round(s.shiftHours)} shift-hours</span></div>
<div class="tile"><b>${secs(s.displayOnly.medianSeconds)}</b><span>median display-only episode (${s.displayOnly.count})</span></div>
</div>
<div class="sub">the staged procedure: shifts out, display activations, escalations to a recording</div>
${funnel(s)}
<div class="sub">escalation rate per ISO week, %</div>
${barChart(weeks, { title: 'escalation rate per week', width: 1000, height: 160, unit: '%', labelEvery: 1, cls: 'weekly' })}
<div class="sub">time from display-on to recording (median ${secs(s.displayToRecording.medianSeconds)}, p90 ${secs(s.displayToRecording.p90Seconds)})</div>
${barChart(delays, { title: 'escalations by time from display-on to recording', height: 160, labelEvery: 1, cls: 'delays' })}
</section>`;
}
