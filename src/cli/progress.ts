/**
 * A docked camera's progress as status shows it, from two sources read at different moments:
 * the store (what is verified now) and the daemon's last heartbeat (bytes in flight then). A
 * file that finished after the heartbeat is in both; counted twice, the bytes done would jump
 * up and then back when the next heartbeat came.
 */

import type { VisitCounts } from '../store/recordings.js';

/** The camera's recordings of this visit, as the store has them now. */
export interface VisitTotals extends VisitCounts {
  visit: number;
}

/** The camera as the daemon saw it at its last heartbeat. */
export interface LiveCamera {
  serial: string;
  inflightBytes: number;
  rateBytesPerSec?: number | null;
  /** Visit and verified bytes of that visit at the same moment as inflightBytes. */
  visit?: number;
  verifiedBytes?: number;
}

export interface CameraProgress {
  recordingsDone: number;
  recordingsTotal: number;
  bytesDone: number;
  bytesTotal: number;
  rateBytesPerSec: number | null;
  etaSeconds: number | null;
}

export function cameraProgress(t: VisitTotals, live: LiveCamera | undefined): CameraProgress {
  const sameVisit = live !== undefined && (live.visit === undefined || live.visit === t.visit);
  let inflight = sameVisit ? Math.max(0, live.inflightBytes) : 0;
  // What the daemon had verified plus what it had in flight, at one instant: the store's
  // verified bytes can only have grown since, by files that were among those in flight.
  if (sameVisit && live.verifiedBytes !== undefined)
    inflight = Math.max(0, live.verifiedBytes + inflight - t.bytesDone);
  inflight = Math.min(inflight, t.bytesToDo);
  const bytesDone = t.bytesDone + inflight;
  if (t.toDo === 0) {
    // Nothing left to copy: no rate to show, whatever the last heartbeat still measured.
    return {
      recordingsDone: t.done,
      recordingsTotal: t.total,
      bytesDone,
      bytesTotal: t.bytesTotal,
      rateBytesPerSec: null,
      etaSeconds: 0,
    };
  }
  const rate = sameVisit && live.rateBytesPerSec && live.rateBytesPerSec > 0 ? live.rateBytesPerSec : null;
  const left = Math.max(0, t.bytesToDo - inflight);
  // A file still to go is never "0s" away: at the least it has to be hashed and committed.
  const eta = rate === null ? null : Math.max(1, Math.ceil(left / rate));
  return {
    recordingsDone: t.done,
    recordingsTotal: t.total,
    bytesDone,
    bytesTotal: t.bytesTotal,
    rateBytesPerSec: rate,
    etaSeconds: eta,
  };
}
