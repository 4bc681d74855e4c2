/**
 * A mass-storage camera's event log in the `timestamp,type` format: one entry a line,
 *
 *     2026-12-05 06:00:42,power.on
 *
 * the time local and on the camera's clock, the type one of the contract's (CAMERA_EVENT_TYPES).
 * The file is untrusted and may be anything: the parser takes bytes, never throws on them, skips
 * and counts every line it cannot read (bad time, unknown type, NUL, bytes that are not ASCII, a
 * line too long), and keeps at most `maxEntries`, the newest, which a log appends last.
 */
import { CAMERA_EVENT_TYPES, type CameraEvent } from '../types.js';
import { parseLocalTime } from './local-time.js';

const LF = 0x0a;
/** `YYYY-MM-DD HH:MM:SS,recording.start` is 36 bytes; a longer line is not an entry. */
const MAX_LINE = 128;
const ENTRY = /^[ \t]*(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})[ \t]*,[ \t]*([a-z]+\.[a-z]+)[ \t]*\r?$/;
/** As many as dockd takes from one docking. */
export const MAX_EVENT_LOG_ENTRIES = 100_000;

export interface ParsedEventLog {
  entries: CameraEvent[];
  /** Lines that are not entries; blank lines are not counted. */
  skipped: number;
  /** Entries left out because there were more than `maxEntries`, the oldest. */
  dropped: number;
}

export function parseEventLog(file: Buffer, maxEntries = MAX_EVENT_LOG_ENTRIES): ParsedEventLog {
  const types: readonly string[] = CAMERA_EVENT_TYPES;
  const entries: CameraEvent[] = [];
  let skipped = 0;
  for (let from = 0; from < file.length;) {
    const lf = file.indexOf(LF, from);
    const end = lf < 0 ? file.length : lf;
    const len = end - from;
    const line = len <= MAX_LINE ? file.toString('latin1', from, end) : null;
    from = end + 1;
    if (line !== null && line.trim() === '') continue;
    const m = line === null ? null : ENTRY.exec(line);
    const at = m ? parseLocalTime(m[1]!) : null;
    if (!m || !at || !types.includes(m[2]!)) {
      skipped++;
      continue;
    }
    entries.push({ at, type: m[2]! });
  }
  const dropped = Math.max(0, entries.length - maxEntries);
  return { entries: dropped > 0 ? entries.slice(dropped) : entries, skipped, dropped };
}
