/**
 * Turns a camera's listing into recording rows, a batch per transaction, so a camera with
 * 100,000 recordings is planned in bounded memory: nothing is held but the current batch.
 */
import type { Logger } from 'pino';
import type { CameraSession, RecordingEntry, UnreadableEntry } from '../../drivers/types.js';
import type { CustodyLog } from '../custody/log.js';
import { relaxedTransaction, type Db } from '../store/db.js';
import { markLeftCamera } from '../store/recordings.js';
import { newRecordingId } from '../archive/names.js';
import { officerAt } from '../officers.js';

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
  private readonly find;
  private readonly insert;
  private readonly touch;
  private readonly vanishedRows;
  private readonly markVanished;

  constructor(
    private readonly db: Db,
    private readonly custody: CustodyLog,
    private readonly log: Logger,
    /** Told of a recording whose partial copy is worthless now that the camera replaced it. */
    private readonly onReplaced: (recordingId: string) => void = () => undefined,
  ) {
    this.find = db.prepare<[string, string], KnownRow>(
      'SELECT id, bytes, status, source_identity, bytes_done FROM recordings WHERE camera = ? AND source_path = ? AND deleted_from_camera = 0',
    );
    this.insert = db.prepare(
      `INSERT INTO recordings (id, camera, source_path, source_id, source_identity, bytes, modified_at, recorded_at, status, seen_visit, discovered_at)
       VALUES (@id, @camera, @sourcePath, @sourceId, @identity, @bytes, @modifiedAt, @recordedAt, 'pending', @visit, @now)`,
    );
    this.touch = db.prepare('UPDATE recordings SET seen_visit = ?, source_id = ?, source_identity = ? WHERE id = ?');
    this.vanishedRows = db.prepare<[string, number], { id: string; source_path: string }>(
      "SELECT id, source_path FROM recordings WHERE camera = ? AND deleted_from_camera = 0 AND status IN ('pending','failed') AND seen_visit < ?",
    );
    this.markVanished = db.prepare(
      "UPDATE recordings SET status = 'failed', last_error = 'no longer on the camera', deleted_from_camera = 2 WHERE id = ?",
    );
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
    this.db
      .transaction(() => {
        for (const r of this.vanishedRows.all(serial, visit)) {
          this.markVanished.run(r.id);
          this.custody.append({
            type: 'recording.vanished',
            camera: serial,
            recording: r.id,
            details: { sourcePath: r.source_path },
          });
          this.log.warn(
            { event: 'recording.vanished', camera: serial, recording: r.id, sourcePath: r.source_path },
            'a recording left the camera before it was verified',
          );
          result.vanished++;
        }
      })
      .immediate();
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
    const cancelled = markLeftCamera(
      this.db,
      old.id,
      'replaced on the camera before it was verified',
      now,
    ).releaseCancelled;
    const id = this.discover(serial, visit, e, skew, now, { replaces: old.id });
    this.custody.append({
      type: 'recording.replaced_on_camera',
      camera: serial,
      recording: old.id,
      details: {
        sourcePath: e.path,
        noticedBy,
        before: { bytes: old.bytes, identity: old.source_identity },
        after: { bytes: e.bytes, identity: e.identity },
        status: old.status,
        deletionCancelled: cancelled,
        replacedBy: id,
      },
    });
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

  private discover(
    serial: string,
    visit: number,
    e: RecordingEntry,
    skew: number | null,
    now: string,
    extra: Record<string, unknown> = {},
  ): string {
    const id = newRecordingId();
    const modifiedAt = validTime(e.modifiedAt);
    // The camera's clock says when; the measured skew turns that into dock time.
    const recordedAt = modifiedAt ? validTime(new Date(e.modifiedAt!.getTime() - (skew ?? 0) * 1000)) : null;
    const officer = recordedAt ? officerAt(this.db, serial, recordedAt) : null;
    this.insert.run({
      id,
      camera: serial,
      sourcePath: e.path,
      sourceId: e.id,
      identity: e.identity,
      bytes: e.bytes,
      modifiedAt,
      recordedAt,
      visit,
      now,
    });
    this.custody.append({
      type: 'recording.discovered',
      camera: serial,
      recording: id,
      details: { sourcePath: e.path, bytes: e.bytes, modifiedAt, recordedAt, officer, ...extra },
    });
    return id;
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
    relaxedTransaction(this.db, () => {
      for (const e of entries) {
        if (!validEntry(e)) {
          result.skipped++;
          this.log.error(
            { event: 'recording.unlistable', camera: serial, sourcePath: String(e.path).slice(0, 512), bytes: e.bytes },
            'camera listed a recording with an impossible size or path',
          );
          continue;
        }
        const existing = this.find.get(serial, e.path);
        if (!existing) {
          this.discover(serial, visit, e, skew, now);
          result.discovered++;
        } else if (sameContent(existing, e)) {
          this.touch.run(visit, e.id, e.identity, existing.id);
          result.known++;
        } else {
          this.replace(serial, visit, existing, e, skew, 'listing');
          result.replaced++;
        }
      }
    });
  }
}

export interface KnownRow {
  id: string;
  bytes: number;
  status: string;
  source_identity: string | null;
  bytes_done: number;
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
