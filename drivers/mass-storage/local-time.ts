/**
 * `YYYY-MM-DD HH:MM:SS` in this machine's local time zone, the way cameras without a time zone
 * setting write their clock: in the time and event files of a mass-storage camera.
 */

const LOCAL_TIME = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})$/;

const two = (n: number) => String(n).padStart(2, '0');

/** The local time of `date`, to the second (truncated). */
export function formatLocalTime(date: Date): string {
  return (
    `${String(date.getFullYear()).padStart(4, '0')}-${two(date.getMonth() + 1)}-${two(date.getDate())} ` +
    `${two(date.getHours())}:${two(date.getMinutes())}:${two(date.getSeconds())}`
  );
}

/**
 * The instant a local time names; null for anything else, a day that does not exist (Feb 30)
 * included. A local time that a daylight-saving change skips or repeats gives the instant
 * JavaScript's Date picks for it.
 */
export function parseLocalTime(text: string): Date | null {
  const m = LOCAL_TIME.exec(text);
  if (!m) return null;
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 59) return null;
  const date = new Date(y, mo - 1, d, h, mi, s);
  // Date rolls Feb 30 over to Mar 2; a camera that wrote it has no such day.
  if (date.getFullYear() !== y || date.getMonth() !== mo - 1 || date.getDate() !== d) return null;
  return date;
}
