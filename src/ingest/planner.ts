/**
 * Turns a camera's listing into recording rows, a batch per transaction, so a camera with
 * 100,000 recordings is planned in bounded memory: nothing is held but the current batch.
 */
import type { Logger } from 'pino';
import type { CameraSession, RecordingEntry, UnreadableEntry } from '../../drivers/types.js';
import type { CustodyLog } from '../store/custody-log.js';
import type { Db } from '../store/db.js';
import { Transitions, type DiscoveredFile, type KnownRow } from '../store/transitions.js';
import { newRecordingId } from '../archive/names.js';

const BATCH = 500;
const MAX_PATH = 4096;
const UNREADABLE_LINES = 100;

export interface PlanResult {
  discovered: number;
  known: number;
  /** Known names that now hold other content: each became a new recording. */
  replaced: number;
  vanished: number;
  skipped: number;
  /** Entries the camera listed that cannot be offloaded (links, device nodes, vanished files). */
  unreadable: number;
}

export class Planner {
  private readonly tx: Transitions;

  constructor(
    db: Db,
    custody: CustodyLog,
    private readonly log: Logger,
    /** Told of a recording whose partial copy is worthless now that the camera replaced it. */
    private readonly onReplaced: (recordingId: string) => void = () => undefined,
  ) {
    this.tx = new Transitions(db, custody);
  }

  async plan(
    serial: string,
    visit: number,
    session: CameraSession,
    clockSkewSeconds: number | null = null,
  ): Promise<PlanResult> {
    const result: PlanResult = { discovered: 0, known: 0, replaced: 0, vanished: 0, skipped: 0, unreadable: 0 };
    let batch: RecordingEntry[] = [];
    const onUnreadable = (u: UnreadableEntry) => {
      // A camera full of device nodes must not flood the log: the rest are counted in camera.listed.
      if (++result.unreadable > UNREADABLE_LINES) return;
      const sourcePath = String(u.path).slice(0, MAX_PATH);
      this.log.warn(
        { event: 'recording.unreadable', camera: serial, sourcePath, reason: u.reason, code: u.code },
        `cannot offload ${sourcePath} from the camera (${u.reason}); it stays there`,
      );
    };
    for await (const entry of session.list({ onUnreadable })) {
      batch.push(entry);
      if (batch.length >= BATCH) {
        this.applyBatch(serial, visit, batch, result, clockSkewSeconds);
        batch = [];
      }
    }
    this.applyBatch(serial, visit, batch, result, clockSkewSeconds);
    for (const r of this.tx.vanishedFromListing(serial, visit)) {
      this.log.warn(
        { event: 'recording.vanished', camera: serial, recording: r.id, sourcePath: r.sourcePath },
        'a recording left the camera before it was verified',
      );
      result.vanished++;
    }
    return result;
  }

  /**
   * The camera holds other content under a known recording's name (renumbered after it was
   * emptied, rewritten, grown while it was copied). The known row keeps what it was bound to,
   * is never deleted from the camera on its account, and the content now there becomes a
   * recording of its own. Runs inside the caller's transaction. Returns the new recording's id.
   */
  replace(
    serial: string,
    visit: number,
    old: KnownRow,
    e: RecordingEntry,
    skew: number | null,
    noticedBy: 'listing' | 'copy' | 'release',
  ): string {
    const now = new Date().toISOString();
    const id = newRecordingId();
    this.tx.replacedOnCamera(serial, visit, old, this.discovered(id, e, skew), noticedBy, now);
    this.log.warn(
      {
        event: 'recording.replaced_on_camera',
        camera: serial,
        recording: old.id,
        replacedBy: id,
        sourcePath: e.path,
        status: old.status,
        noticedBy,
      },
      `${e.path} on camera ${serial} is not the file that was ${old.status === 'verified' ? 'archived' : 'being copied'}; it is kept and offloaded as a recording of its own`,
    );
    // A copy under way still writes its staging file: it finds the change itself when it ends.
    if (old.status === 'pending' || old.status === 'failed') this.onReplaced(old.id);
    return id;
  }

  /** The listed file as the store records it: its times turned to dock time by the measured skew. */
  private discovered(recordingId: string, e: RecordingEntry, skew: number | null): DiscoveredFile {
    const modifiedAt = validTime(e.modifiedAt);
    // The camera's clock says when; the measured skew turns that into dock time.
    const recordedAt = modifiedAt ? validTime(new Date(e.modifiedAt!.getTime() - (skew ?? 0) * 1000)) : null;
    return { recordingId, path: e.path, id: e.id, identity: e.identity, bytes: e.bytes, modifiedAt, recordedAt };
  }

  private applyBatch(
    serial: string,
    visit: number,
    entries: RecordingEntry[],
    result: PlanResult,
    skew: number | null,
  ): void {
    if (entries.length === 0) return;
    const now = new Date().toISOString();
    this.tx.batch(() => {
      for (const e of entries) {
        if (!validEntry(e)) {
          result.skipped++;
          this.log.error(
            { event: 'recording.unlistable', camera: serial, sourcePath: String(e.path).slice(0, 512), bytes: e.bytes },
            'camera listed a recording with an impossible size or path',
          );
          continue;
        }
        const existing = this.tx.known(serial, e.path);
        if (!existing) {
          this.tx.discover(serial, visit, this.discovered(newRecordingId(), e, skew), now);
          result.discovered++;
        } else if (sameContent(existing, e)) {
          this.tx.seenAgain(existing.id, visit, e);
          result.known++;
        } else {
          this.replace(serial, visit, existing, e, skew, 'listing');
          result.replaced++;
        }
      }
    });
  }
}

/** Rows stored before identities were kept are bound by their size alone, until they are seen again. */
export function sameContent(row: Pick<KnownRow, 'bytes' | 'source_identity'>, e: RecordingEntry): boolean {
  return row.source_identity === null ? row.bytes === e.bytes : row.source_identity === e.identity;
}

function validTime(d: Date | null | undefined): string | null {
  if (!d) return null;
  const t = d.getTime();
  // Dates a camera cannot honestly have (toISOString throws past year 275760).
  return Number.isFinite(t) && Math.abs(t) < 8.64e15 ? d.toISOString() : null;
}

function validEntry(e: RecordingEntry): boolean {
  return (
    typeof e.path === 'string' &&
    e.path.length > 0 &&
    e.path.length <= MAX_PATH &&
    typeof e.id === 'string' &&
    e.id.length <= MAX_PATH &&
    typeof e.identity === 'string' &&
    e.identity.length <= MAX_PATH &&
    Number.isSafeInteger(e.bytes) &&
    e.bytes >= 0
  );
}
