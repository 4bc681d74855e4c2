/**
 * Turns a camera's listing into recording rows, a batch per transaction, so a camera with
 * 100,000 recordings is planned in bounded memory: nothing is held but the current batch.
 */
import type { Logger } from 'pino';
import type { CameraSession, RecordingEntry, UnreadableEntry } from '../../drivers/types.js';
import type { CustodyLog } from '../custody/log.js';
import { relaxedTransaction, type Db } from '../store/db.js';
import { newRecordingId } from '../archive/names.js';
import { officerAt } from '../officers.js';

const BATCH = 500;
const MAX_PATH = 4096;
const UNREADABLE_LINES = 100;

export interface PlanResult {
  discovered: number;
  known: number;
  vanished: number;
  skipped: number;
  /** Entries the camera listed that cannot be offloaded (links, device nodes, vanished files). */
  unreadable: number;
}

export class Planner {
  private readonly find;
  private readonly insert;
  private readonly touch;
  private readonly resize;
  private readonly vanishedRows;
  private readonly markVanished;

  constructor(
    private readonly db: Db,
    private readonly custody: CustodyLog,
    private readonly log: Logger,
  ) {
    this.find = db.prepare<[string, string], { id: string; bytes: number; status: string }>(
      'SELECT id, bytes, status FROM recordings WHERE camera = ? AND source_path = ? AND deleted_from_camera = 0',
    );
    this.insert = db.prepare(
      `INSERT INTO recordings (id, camera, source_path, source_id, bytes, modified_at, recorded_at, status, seen_visit, discovered_at)
       VALUES (@id, @camera, @sourcePath, @sourceId, @bytes, @modifiedAt, @recordedAt, 'pending', @visit, @now)`,
    );
    this.touch = db.prepare('UPDATE recordings SET seen_visit = ?, source_id = ? WHERE id = ?');
    this.resize = db.prepare("UPDATE recordings SET bytes = ?, bytes_done = 0, seen_visit = ?, source_id = ?, status = 'pending', attempts = 0, last_error = NULL WHERE id = ?");
    this.vanishedRows = db.prepare<[string, number], { id: string; source_path: string }>(
      "SELECT id, source_path FROM recordings WHERE camera = ? AND deleted_from_camera = 0 AND status IN ('pending','failed') AND seen_visit < ?",
    );
    this.markVanished = db.prepare("UPDATE recordings SET status = 'failed', last_error = 'no longer on the camera' WHERE id = ?");
  }

  async plan(serial: string, visit: number, session: CameraSession, clockSkewSeconds: number | null = null): Promise<PlanResult> {
    const result: PlanResult = { discovered: 0, known: 0, vanished: 0, skipped: 0, unreadable: 0 };
    let batch: RecordingEntry[] = [];
    const onUnreadable = (u: UnreadableEntry) => {
      // A camera full of device nodes must not flood the log: the rest are counted in camera.listed.
      if (++result.unreadable > UNREADABLE_LINES) return;
      const sourcePath = String(u.path).slice(0, MAX_PATH);
      this.log.warn({ event: 'recording.unreadable', camera: serial, sourcePath, reason: u.reason, code: u.code }, `cannot offload ${sourcePath} from the camera (${u.reason}); it stays there`);
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
          this.custody.append({ type: 'recording.vanished', camera: serial, recording: r.id, details: { sourcePath: r.source_path } });
          this.log.warn({ event: 'recording.vanished', camera: serial, recording: r.id, sourcePath: r.source_path }, 'a recording left the camera before it was verified');
          result.vanished++;
        }
      })
      .immediate();
    return result;
  }

  private applyBatch(serial: string, visit: number, entries: RecordingEntry[], result: PlanResult, skew: number | null): void {
    if (entries.length === 0) return;
    const now = new Date().toISOString();
    relaxedTransaction(this.db, () => {
        for (const e of entries) {
          if (!validEntry(e)) {
            result.skipped++;
            this.log.error({ event: 'recording.unlistable', camera: serial, sourcePath: String(e.path).slice(0, 512), bytes: e.bytes }, 'camera listed a recording with an impossible size or path');
            continue;
          }
          const existing = this.find.get(serial, e.path);
          if (!existing) {
            const id = newRecordingId();
            const modifiedAt = validTime(e.modifiedAt);
            // The camera's clock says when; the measured skew turns that into dock time.
            const recordedAt = modifiedAt ? validTime(new Date(e.modifiedAt!.getTime() - (skew ?? 0) * 1000)) : null;
            const officer = recordedAt ? officerAt(this.db, serial, recordedAt) : null;
            this.insert.run({ id, camera: serial, sourcePath: e.path, sourceId: e.id, bytes: e.bytes, modifiedAt, recordedAt, visit, now });
            this.custody.append({ type: 'recording.discovered', camera: serial, recording: id, details: { sourcePath: e.path, bytes: e.bytes, modifiedAt, recordedAt, officer } });
            result.discovered++;
          } else if (existing.bytes !== e.bytes && existing.status !== 'verified') {
            this.resize.run(e.bytes, visit, e.id, existing.id);
            this.custody.append({ type: 'recording.changed', camera: serial, recording: existing.id, details: { sourcePath: e.path, bytes: e.bytes, previousBytes: existing.bytes } });
            result.known++;
          } else {
            if (existing.bytes !== e.bytes) {
              this.log.warn({ event: 'recording.changed_after_verify', camera: serial, recording: existing.id, bytes: e.bytes }, 'a verified recording still on the camera changed size; the archived copy is kept');
            }
            this.touch.run(visit, e.id, existing.id);
            result.known++;
          }
        }
    });
  }
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
    Number.isSafeInteger(e.bytes) &&
    e.bytes >= 0
  );
}
