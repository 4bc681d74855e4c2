/** Inline SVG charts for the report page, drawn from numbers the model already bounded. */
import { html, type Markup } from './markup.js';
import type { ChartPoint } from './model.js';

const HOUR_MS = 3_600_000;
const n = (v: number): string => (Math.round(v * 10) / 10).toString();

function shortTime(ms: number): string {
  const d = new Date(ms);
  const p = (v: number) => String(v).padStart(2, '0');
  return `${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
}

/**
 * Battery percent against time, 0–100 %. The line breaks where samples are further apart than a
 * shift gap (or 1 % of the span): a camera left in a drawer did not drain in a straight line.
 */
export function percentChart(
  points: readonly ChartPoint[],
  opts: { title: string; width?: number; height?: number },
): Markup {
  const w = opts.width ?? 560;
  const h = opts.height ?? 170;
  const left = 34;
  const right = 8;
  const top = 8;
  const bottom = 22;
  const pw = w - left - right;
  const ph = h - top - bottom;
  const y = (p: number) => top + ph * (1 - p / 100);
  const grid = [0, 25, 50, 75, 100].map(
    (p) =>
      html`<line class="grid" x1="${left}" x2="${w - right}" y1="${n(y(p))}" y2="${n(y(p))}"/><text class="axis" x="${left - 4}" y="${n(y(p) + 3.5)}" text-anchor="end">${p}%</text>`,
  );
  if (points.length === 0) {
    return html`<svg class="chart" viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" role="img"><title>${opts.title}</title>${grid}<text class="empty" x="${left + pw / 2}" y="${top + ph / 2}" text-anchor="middle">no battery samples</text></svg>`;
  }
  const from = points[0]!.at;
  const to = points.at(-1)!.at;
  const span = to - from || 1;
  const x = (t: number) => left + (pw * (t - from)) / span;
  const gap = Math.max(4 * HOUR_MS, span / 100);
  // Under an hour the five labels would all read the same minute.
  const ticks = (span < HOUR_MS ? [1] : [0, 0.25, 0.5, 0.75, 1]).map((f) => {
    const tx = left + pw * f;
    const anchor = f === 0 ? 'start' : f === 1 ? 'end' : 'middle';
    return html`<line class="grid" x1="${n(tx)}" x2="${n(tx)}" y1="${top}" y2="${top + ph}"/><text class="axis" x="${n(tx)}" y="${h - 6}" text-anchor="${anchor}">${shortTime(from + span * f)}</text>`;
  });
  let d = '';
  points.forEach((p, i) => {
    const move = i === 0 || p.at - points[i - 1]!.at > gap;
    d += `${move ? 'M' : 'L'}${n(x(p.at))} ${n(y(p.percent))}`;
  });
  return html`<svg class="chart" viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" role="img"><title>${opts.title}</title>${grid}${ticks}<path class="line" d="${d}" data-points="${points.length}"/></svg>`;
}

export interface Bar {
  label: string;
  value: number;
  /** Tooltip text. */
  title: string;
  tone?: 'bad' | 'warn';
}

/** Vertical bars from zero; `threshold` draws a dashed line (e.g. the drain a shift allows). */
export function barChart(
  bars: readonly Bar[],
  opts: {
    title: string;
    width?: number;
    height?: number;
    unit?: string;
    labelEvery?: number;
    threshold?: { value: number; label: string };
    cls?: string;
  },
): Markup {
  const w = opts.width ?? 560;
  const h = opts.height ?? 150;
  const left = 34;
  const right = 8;
  const top = 10;
  const bottom = opts.labelEvery ? 22 : 6;
  const pw = w - left - right;
  const ph = h - top - bottom;
  const max = Math.max(1, opts.threshold?.value ?? 0, ...bars.map((b) => b.value)) * 1.1;
  const y = (v: number) => top + ph * (1 - v / max);
  const slot = pw / Math.max(1, bars.length);
  const bw = Math.max(1, slot * 0.75);
  const unit = opts.unit ?? '';
  const rects = bars.map((b, i) => {
    const bx = left + i * slot + (slot - bw) / 2;
    const label =
      opts.labelEvery && (bars.length - 1 - i) % opts.labelEvery === 0
        ? html`<text class="axis" x="${n(bx + bw / 2)}" y="${h - 6}" text-anchor="middle">${b.label}</text>`
        : '';
    const by = y(b.value);
    return html`<rect class="bar${b.tone ? ` ${b.tone}` : ''}" x="${n(bx)}" y="${n(by)}" width="${n(bw)}" height="${n(top + ph - by)}"><title>${b.title}</title></rect>${label}`;
  });
  const t = opts.threshold;
  const line = t
    ? html`<line class="threshold" x1="${left}" x2="${w - right}" y1="${n(y(t.value))}" y2="${n(y(t.value))}"/><text class="axis warn" x="${w - right}" y="${n(y(t.value) - 3)}" text-anchor="end">${t.label}</text>`
    : '';
  const top0 = Math.max(...bars.map((b) => b.value), 0);
  return html`<svg class="chart${opts.cls ? ` ${opts.cls}` : ''}" viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" role="img"><title>${opts.title}</title><line class="grid" x1="${left}" x2="${w - right}" y1="${n(y(0))}" y2="${n(y(0))}"/><text class="axis" x="${left - 4}" y="${n(y(0) + 3.5)}" text-anchor="end">0${unit}</text>${top0 > 0 ? html`<line class="grid" x1="${left}" x2="${w - right}" y1="${n(y(top0))}" y2="${n(y(top0))}"/><text class="axis" x="${left - 4}" y="${n(y(top0) + 3.5)}" text-anchor="end">${n(top0)}${unit}</text>` : ''}${rects}${line}</svg>`;
}
