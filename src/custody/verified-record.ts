/**
 * What the chain of custody says was archived for a recording: the hashes of its
 * `offload.verified` event. The `recordings` table is a convenience copy anyone with the
 * database can rewrite; the event is hash-chained and signed at checkpoints, so checks of the
 * archive hold files and rows to it, not the other way round.
 */
import type { Db } from '../store/db.js';
import { latestOffloadVerifiedQuery } from '../store/custody-log.js';

export interface VerifiedRecord {
  /** SHA-256 of the recording as it left the camera (the plaintext, when encrypted). */
  sha256: string;
  /** SHA-256 of the archived file: the age file when encrypted, else `sha256`. */
  storedSha256: string;
  /** Size of the archived file, when the event says (every event dockd writes does). */
  storedBytes: number | null;
  encrypted: boolean;
}

/** Recording fields the table holds and custody also vouches for. */
export interface RecordingHashes {
  sha256: string | null;
  stored_sha256: string | null;
}

export class VerifiedRecords {
  private readonly latest;

  constructor(db: Db) {
    this.latest = latestOffloadVerifiedQuery(db);
  }

  /** Null when custody holds no `offload.verified` event with a hash for the recording. */
  of(recording: string): VerifiedRecord | null {
    const row = this.latest(recording);
    if (!row?.sha256) return null;
    const d = parseDetails(row.details);
    const stored = typeof d.storedSha256 === 'string' ? d.storedSha256 : null;
    const bytes = typeof d.storedBytes === 'number' ? d.storedBytes : typeof d.bytes === 'number' ? d.bytes : null;
    return {
      sha256: row.sha256,
      storedSha256: stored ?? row.sha256,
      storedBytes: bytes,
      encrypted: stored !== null && stored !== row.sha256,
    };
  }
}

/** Which of the row's hashes disagree with custody, in words; empty when none does. */
export function rowDisagreements(row: RecordingHashes, custody: VerifiedRecord | null): string[] {
  if (!custody) return ['custody holds no offload.verified event for it'];
  const out: string[] = [];
  if (row.sha256 !== custody.sha256)
    out.push(`recordings.sha256 is ${row.sha256 ?? 'null'}, custody says ${custody.sha256}`);
  // Rows from before encryption at rest have no stored hash: the plain one stands for it.
  const stored = row.stored_sha256 ?? row.sha256;
  if (stored !== custody.storedSha256)
    out.push(`recordings.stored_sha256 is ${stored ?? 'null'}, custody says ${custody.storedSha256}`);
  return out;
}

function parseDetails(text: string): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}
