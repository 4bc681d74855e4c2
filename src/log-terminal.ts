/**
 * The daemon's log for a person at a terminal: one readable line per log line, instead of the
 * JSON that journald and log stores take. Only `dockd start` on a TTY uses it.
 */

const LEVELS: Record<number, { name: string; colour: number }> = {
  10: { name: 'TRACE', colour: 2 },
  20: { name: 'DEBUG', colour: 2 },
  30: { name: 'INFO ', colour: 32 },
  40: { name: 'WARN ', colour: 33 },
  50: { name: 'ERROR', colour: 31 },
  60: { name: 'FATAL', colour: 31 },
};

/** Fields every line has, shown in the line's head instead of as key=value. */
const HEAD = new Set(['level', 'time', 'pid', 'hostname', 'msg', 'event', 'mod']);

/**
 * Names, paths and strings that came from a camera reach the messages; a terminal would obey
 * the control characters among them, so they are shown escaped.
 */
function shown(s: string): string {
  return s.replace(/[\p{Cc}]/gu, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

function value(v: unknown): string {
  if (typeof v === 'string') return /[\s"=]/.test(v) || v === '' ? JSON.stringify(v) : shown(v);
  if (v && typeof v === 'object' && 'message' in v && typeof (v as { message: unknown }).message === 'string')
    return JSON.stringify((v as { message: string }).message);
  return shown(JSON.stringify(v) ?? String(v));
}

export function readableLine(json: string, colour: boolean): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return shown(json.trimEnd());
  }
  const paint = (code: number, s: string) => (colour ? `\x1b[${code}m${s}\x1b[0m` : s);
  const level = LEVELS[rec.level as number] ?? { name: String(rec.level).padEnd(5), colour: 0 };
  const time = typeof rec.time === 'number' ? new Date(rec.time).toISOString().slice(11, 23) : '';
  const event = typeof rec.event === 'string' ? paint(36, shown(rec.event)) + ' ' : '';
  const rest = Object.entries(rec)
    .filter(([k, v]) => !HEAD.has(k) && v !== undefined)
    .map(([k, v]) => `${paint(2, shown(k) + '=')}${value(v)}`)
    .join(' ');
  return `${paint(2, time)} ${paint(level.colour, level.name)} ${event}${shown(String(rec.msg ?? ''))}${rest ? '  ' + rest : ''}`;
}

/** A pino destination that writes each line readable to `out`, synchronously like a TTY write. */
export function terminalLogStream(
  colour: boolean,
  out: { write(s: string): unknown } = process.stdout,
): { write(line: string): void } {
  return {
    write(line: string) {
      for (const one of line.split('\n')) if (one) out.write(readableLine(one, colour) + '\n');
    },
  };
}
