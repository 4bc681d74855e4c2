/**
 * docs/log-events.md is what IT builds alerts on, so it must name exactly the events the code
 * emits. The set is read from the source on every run: an event added anywhere in src/ or
 * drivers/ fails this test until the catalogue has its row.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '..');
const CATALOGUE = path.join(ROOT, 'docs', 'log-events.md');
const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'];

interface Emission {
  name: string;
  where: string;
  /** The pino method of the call, when the literal sits directly in `log.<level>({ event: … })`. */
  level: string | null;
}

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return tsFiles(p);
    return e.isFile() && e.name.endsWith('.ts') ? [p] : [];
  });
}

function emissions(): Emission[] {
  const found: Emission[] = [];
  const literal = /\bevent\s*:\s*(['"`])([^'"`$\\\s]+)\1/g;
  for (const file of [...tsFiles(path.join(ROOT, 'src')), ...tsFiles(path.join(ROOT, 'drivers'))]) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(literal)) {
      const before = text.slice(Math.max(0, m.index - 40), m.index);
      const level = /\.(trace|debug|info|warn|error|fatal)\(\s*\{\s*$/.exec(before)?.[1] ?? null;
      const line = text.slice(0, m.index).split('\n').length;
      found.push({ name: m[2]!, where: `${path.relative(ROOT, file)}:${line}`, level });
    }
  }
  return found;
}

interface Row {
  name: string;
  levels: string[];
  line: number;
}

/** Rows of the tables below the `## Events` heading; the tables above it describe fields. */
function catalogue(): Row[] {
  const rows: Row[] = [];
  let inEvents = false;
  readFileSync(CATALOGUE, 'utf8')
    .split('\n')
    .forEach((text, i) => {
      if (/^## /.test(text)) inEvents = /^## Events\b/.test(text);
      const m = inEvents ? /^\|\s*`([^`]+)`\s*\|([^|]*)\|/.exec(text) : null;
      if (!m) return;
      const levels = m[2]!
        .split(/,|\/|\bor\b/)
        .map((l) => l.trim())
        .filter(Boolean);
      rows.push({ name: m[1]!, levels, line: i + 1 });
    });
  return rows;
}

describe('log event catalogue (docs/log-events.md)', () => {
  const code = emissions();
  const rows = catalogue();
  const documented = new Map(rows.map((r) => [r.name, r]));

  it('finds events in the code and rows in the catalogue', () => {
    // Guards the scanners themselves: a regex that silently matched nothing would pass the rest.
    expect(code.length).toBeGreaterThan(20);
    expect(rows.length).toBeGreaterThan(20);
  });

  it('documents every event the code logs', () => {
    const missing = code.filter((e) => !documented.has(e.name)).map((e) => `${e.name} (${e.where})`);
    expect(missing, 'add a row to docs/log-events.md for each').toEqual([]);
  });

  it('lists no event that the code does not log', () => {
    const emitted = new Set(code.map((e) => e.name));
    const stale = rows.filter((r) => !emitted.has(r.name)).map((r) => `${r.name} (docs/log-events.md:${r.line})`);
    expect(stale, 'remove these rows, or log them again').toEqual([]);
  });

  it('lists each event once, with a pino level', () => {
    const seen = new Set<string>();
    const dupes = rows.filter((r) => (seen.has(r.name) ? true : (seen.add(r.name), false))).map((r) => r.name);
    expect(dupes).toEqual([]);
    const bad = rows
      .filter((r) => r.levels.some((l) => !LEVELS.includes(l)))
      .map((r) => `${r.name}: ${r.levels.join(', ')}`);
    expect(bad).toEqual([]);
  });

  it('gives each event the level the code logs it at', () => {
    const wrong = code
      .filter((e) => e.level && documented.has(e.name) && !documented.get(e.name)!.levels.includes(e.level))
      .map(
        (e) =>
          `${e.name}: logged at ${e.level} (${e.where}), catalogue says ${documented.get(e.name)!.levels.join(' or ')}`,
      );
    expect(wrong).toEqual([]);
  });
});
