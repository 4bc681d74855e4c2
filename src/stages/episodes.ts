/**
 * One camera's event log read as the staged procedure: which display activations escalated to a
 * recording, which recordings started with the display off, and when the camera was out on a
 * shift. Pure: no store, no clock. Times are true times (dock clock, ms), as the store keeps them.
 *
 * The log comes from the camera and is not trusted to be tidy:
 * - entries may arrive in any order and twice: they are sorted, and an entry that repeats the
 *   state the camera is already in (a second display.on, a second recording.start) changes
 *   nothing, so a duplicate is never a second activation or recording;
 * - a display-on that sees no display-off ends at the power-off or the docking; at the camera's
 *   next power-on (it lost power without logging) it ends too, after an unknown time;
 * - a log that begins inside a recording or with the display on (its first entry a
 *   recording.stop or display.off) says nothing about how that recording or display-on began,
 *   so neither is counted;
 * - unknown entry types are ignored.
 */

export interface CameraLogEntry {
  at: number;
  type: string;
}

export interface CameraLog {
  camera: string;
  entries: readonly CameraLogEntry[];
  /** When the camera was put into a dock (true time, ms); ends open episodes and shifts. */
  dockedAt?: readonly number[];
  /** When it was taken out of one: the start of a shift when the log has no power events. */
  undockedAt?: readonly number[];
}

export interface Activation {
  camera: string;
  /** The display.on. */
  at: number;
  /** ms from the display-on to the recording that escalated it; null when none followed. */
  escalatedAfterMs: number | null;
  /** How long the display stayed on without any recording; null when it recorded or its end is unknown. */
  displayOnlyMs: number | null;
}

export interface RecordingStart {
  camera: string;
  at: number;
  /** Started with the display off. */
  direct: boolean;
}

export interface Shift {
  camera: string;
  from: number;
  to: number;
}

export interface CameraEpisodes {
  camera: string;
  activations: Activation[];
  recordings: RecordingStart[];
  shifts: Shift[];
}

/** Within one millisecond, the order a camera must have written them in. */
const ORDER: Record<string, number> = {
  'power.on': 0,
  'display.on': 1,
  'recording.start': 2,
  'recording.stop': 3,
  'display.off': 4,
  'power.off': 5,
};

type Step = { at: number; type: string } | { at: number; type: 'docked' | 'undocked' };

function steps(log: CameraLog): Step[] {
  const out: Step[] = [];
  for (const e of log.entries) if (e.type in ORDER && Number.isFinite(e.at)) out.push(e);
  for (const at of log.dockedAt ?? []) out.push({ at, type: 'docked' });
  for (const at of log.undockedAt ?? []) out.push({ at, type: 'undocked' });
  // A docking at the same millisecond as an entry comes after it: the camera logged, then docked.
  const rank = (s: Step) => ORDER[s.type] ?? (s.type === 'docked' ? 6 : -1);
  out.sort((a, b) => a.at - b.at || rank(a) - rank(b));
  // Sorted, an entry handed twice sits next to its twin.
  return out.filter((s, i) => i === 0 || s.at !== out[i - 1]!.at || s.type !== out[i - 1]!.type);
}

export function cameraEpisodes(log: CameraLog): CameraEpisodes {
  const { camera } = log;
  const activations: Activation[] = [];
  const recordings: RecordingStart[] = [];
  const shifts: Shift[] = [];
  const all = steps(log);
  const powered = all.some((s) => s.type === 'power.on' || s.type === 'power.off');

  let open: Activation | null = null;
  let recordedDuring = false;
  let recording = false;
  let shiftFrom: number | null = null;
  /** An undocking: where the current stretch off the dock began. */
  let boundary: number | null = null;
  let firstSinceBoundary: number | null = null;
  let lastEntry: number | null = null;
  /** A power-off already closed the shift: a repeated one must not make another. */
  let off = false;

  const endActivation = (at: number | null) => {
    if (open) {
      if (open.escalatedAfterMs === null && !recordedDuring && at !== null) open.displayOnlyMs = at - open.at;
      activations.push(open);
    }
    open = null;
  };
  const endShift = (from: number | null, to: number | null) => {
    if (from !== null && to !== null && to > from) shifts.push({ camera, from, to });
    shiftFrom = null;
  };
  const reset = (at: number | null) => {
    endActivation(at);
    recording = false;
  };

  for (const s of all) {
    if (s.type === 'docked' || s.type === 'undocked') {
      reset(s.at);
      if (s.type === 'docked') {
        if (powered) endShift(shiftFrom, s.at);
        else endShift(boundary ?? firstSinceBoundary, firstSinceBoundary === null ? null : s.at);
      } else if (!powered) {
        // Undocked twice with no docking between (a docking the store missed): the log says when it was out.
        endShift(boundary ?? firstSinceBoundary, firstSinceBoundary === null ? null : lastEntry);
      }
      // Docked to undocked is time on the dock, never a shift.
      boundary = s.type === 'undocked' ? s.at : null;
      firstSinceBoundary = null;
      off = false;
      continue;
    }
    firstSinceBoundary ??= s.at;
    switch (s.type) {
      case 'power.on':
        // A second power-on: the camera lost power after its last entry without logging it.
        // How long a display stayed on before that is unknown.
        reset(null);
        if (shiftFrom !== null) endShift(shiftFrom, lastEntry);
        shiftFrom = s.at;
        off = false;
        break;
      case 'power.off':
        reset(s.at);
        // No power-on since the docking: the shift began before the log did.
        if (shiftFrom !== null || !off) endShift(shiftFrom ?? boundary ?? firstSinceBoundary, s.at);
        off = true;
        break;
      case 'display.on':
        if (!open) {
          open = { camera, at: s.at, escalatedAfterMs: null, displayOnlyMs: null };
          recordedDuring = recording;
        }
        break;
      case 'display.off':
        endActivation(s.at);
        break;
      case 'recording.start':
        if (recording) break;
        recording = true;
        if (open) {
          open.escalatedAfterMs ??= s.at - open.at;
          recordedDuring = true;
        }
        recordings.push({ camera, at: s.at, direct: open === null });
        break;
      case 'recording.stop':
        recording = false;
        break;
    }
    lastEntry = s.at;
  }
  endActivation(null);
  if (powered) endShift(shiftFrom, lastEntry);
  else if (firstSinceBoundary !== null) endShift(boundary ?? firstSinceBoundary, lastEntry);
  return { camera, activations, recordings, shifts };
}
