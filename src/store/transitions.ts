/**
 * Every change of a recording's state, and of the camera deletion queued for it, as one named
 * transition. Each writes its rows and appends the custody event that records it in the same
 * SQLite transaction (invariant 4), so neither can be committed without the other. Nothing else
 * in dockd writes `recordings` or their `release` jobs: docs/ARCHITECTURE.md draws the states.
 *
 * A transition called inside a transaction of the caller's (a planner's batch) joins it; called
 * alone it opens its own. Which of those is relaxed (no fsync of its own) is decided here, with
 * the rule of `relaxedTransaction`: never for a commit that lets a recording leave the camera.
 */
import type { Db } from './db.js';
import { relaxedTransaction } from './db.js';
import type { CustodyLog } from './custody-log.js';
import { officerAt } from './officers.js';
import { markLeftCamera, type RecordingRow } from './recordings.js';
import { queueReplication } from './replication-jobs.js';

/** What a listing says of one file, in the store's terms (a driver's RecordingEntry fits). */
export interface ListedFile {
  path: string;
  id: string;
  identity: string;
  bytes: number;
}

/** A listed file about to become a recording: its new id and its times on the dock's clock. */
export interface DiscoveredFile extends ListedFile {
  recordingId: string;
  modifiedAt: string | null;
  recordedAt: string | null;
}

/** A known recording found under a listed name. */
export interface KnownRow {
  id: string;
  bytes: number;
  status: string;
  source_identity: string | null;
  bytes_done: number;
}

export interface Verification {
  sha256: string;
  storedSha256: string;
  storedBytes: number;
  bytes: number;
  archivePath: string;
  at: Date;
  attempt: number;
  resumedFrom: number;
  resumeRefused: boolean;
  verifiedSource: boolean;
  /** age recipients when the archive holds ciphertext. */
  encryptedTo: string[] | null;
  /** Queue the camera's copy for deletion (`ingest.deleteFromCamera`). */
  release: boolean;
  /** Queue an upload to the object store. */
  replicate: boolean;
}

export interface CopyFailure {
  attempt: number;
  error: string;
  class: string;
  /** The dock's own interruption (camera gone, disk low, store unwritable): no attempt is spent. */
  interrupted: boolean;
  exhausted: boolean;
  retryInMs: number;
  /** Bytes of the staging file that are durable and can be resumed from. */
  keptBytes: number;
}

export interface DeleteFailure {
  attempt: number;
  error: string;
  /** The camera left mid-deletion: no fault of the deletion, no attempt is spent. */
  paused: boolean;
  exhausted: boolean;
  notBefore: number;
}

export interface LostTrack {
  noticedBy: 'copy' | 'release';
  /** What the camera holds under the name now; null when nothing. */
  now: { bytes: number; identity: string } | null;
}

export class Transitions {
  private readonly s;

  constructor(
    private readonly db: Db,
    private readonly custody: CustodyLog,
  ) {
    this.s = {
      releases: db.prepare<[string, number], RecordingRow>(
        `SELECT r.* FROM jobs j JOIN recordings r ON r.id = j.recording
         WHERE r.camera = ? AND j.kind = 'release' AND j.state = 'queued' AND j.not_before <= ? AND r.status = 'verified' AND r.deleted_from_camera = 0
         ORDER BY j.id LIMIT 64`,
      ),
      offloads: db.prepare<[string, number, number], RecordingRow>(
        "SELECT * FROM recordings WHERE camera = ? AND status = 'pending' AND deleted_from_camera = 0 AND not_before <= ? ORDER BY rowid LIMIT ?",
      ),
      nextWake: db.prepare<[string, string], { t: number | null }>(
        `SELECT min(t) t FROM (
           SELECT not_before t FROM recordings WHERE camera = ? AND status = 'pending' AND deleted_from_camera = 0
           UNION ALL
           SELECT j.not_before FROM jobs j JOIN recordings r ON r.id = j.recording
           WHERE r.camera = ? AND j.kind = 'release' AND j.state = 'queued' AND r.status = 'verified' AND r.deleted_from_camera = 0)`,
      ),
      start: db.prepare("UPDATE recordings SET status = 'copying' WHERE id = ?"),
      reset: db.prepare("UPDATE recordings SET status = 'pending' WHERE id = ? AND status = 'copying'"),
      durable: db.prepare('UPDATE recordings SET bytes_done = ? WHERE id = ?'),
      verified: db.prepare(
        "UPDATE recordings SET status = 'verified', sha256 = ?, stored_sha256 = ?, stored_bytes = ?, archive_path = ?, verified_at = ?, attempts = attempts + 1, last_error = NULL, bytes_done = bytes WHERE id = ?",
      ),
      // A row a listing found replaced on the camera meanwhile stays as the listing left it.
      backToPending: db.prepare(
        "UPDATE recordings SET status = 'pending', attempts = attempts + ?, last_error = ?, not_before = ?, bytes_done = ? WHERE id = ? AND deleted_from_camera = 0",
      ),
      failed: db.prepare(
        "UPDATE recordings SET status = 'failed', attempts = attempts + 1, last_error = ? WHERE id = ? AND deleted_from_camera = 0",
      ),
      queueRelease: db.prepare(
        "INSERT OR IGNORE INTO jobs (recording, kind, state, created_at, updated_at) VALUES (?, 'release', 'queued', ?, ?)",
      ),
      released: db.prepare('UPDATE recordings SET deleted_from_camera = 1 WHERE id = ?'),
      releaseDone: db.prepare(
        "UPDATE jobs SET state = 'done', attempts = attempts + 1, last_error = NULL, updated_at = ? WHERE recording = ? AND kind = 'release'",
      ),
      releaseRetry: db.prepare(
        "UPDATE jobs SET state = ?, attempts = attempts + ?, last_error = ?, not_before = ?, updated_at = ? WHERE recording = ? AND kind = 'release'",
      ),
      releaseTouched: db.prepare("UPDATE jobs SET updated_at = ? WHERE recording = ? AND kind = 'release'"),
      releaseAttempts: db.prepare<[string], { attempts: number }>(
        "SELECT attempts FROM jobs WHERE recording = ? AND kind = 'release'",
      ),
      find: db.prepare<[string, string], KnownRow>(
        'SELECT id, bytes, status, source_identity, bytes_done FROM recordings WHERE camera = ? AND source_path = ? AND deleted_from_camera = 0',
      ),
      insert: db.prepare(
        `INSERT INTO recordings (id, camera, source_path, source_id, source_identity, bytes, modified_at, recorded_at, status, seen_visit, discovered_at)
         VALUES (@id, @camera, @sourcePath, @sourceId, @identity, @bytes, @modifiedAt, @recordedAt, 'pending', @visit, @now)`,
      ),
      // A row archived before identities were kept gets none from a later listing: that would
      // vouch for whatever the camera holds now (see releaseOne).
      touch: db.prepare(
        `UPDATE recordings SET seen_visit = ?, source_id = ?,
           source_identity = CASE WHEN source_identity IS NULL AND status IN ('verified','deleted') THEN NULL ELSE ? END
         WHERE id = ?`,
      ),
      unseen: db.prepare<[string, number], { id: string; source_path: string }>(
        "SELECT id, source_path FROM recordings WHERE camera = ? AND deleted_from_camera = 0 AND status IN ('pending','failed') AND seen_visit < ?",
      ),
      leftCamera: db.prepare<[string], { left: number }>(
        'SELECT deleted_from_camera <> 0 AS left FROM recordings WHERE id = ?',
      ),
      vanished: db.prepare(
        "UPDATE recordings SET status = 'failed', last_error = 'no longer on the camera', deleted_from_camera = 2 WHERE id = ?",
      ),
    };
  }

  /** Runs `fn` in one durable write transaction, or inside the caller's. */
  private durable<T>(fn: () => T): T {
    return this.db.inTransaction ? fn() : this.db.transaction(fn).immediate();
  }

  /** Runs `fn` in one relaxed write transaction (see relaxedTransaction), or inside the caller's. */
  private relaxed<T>(fn: () => T): T {
    return this.db.inTransaction ? fn() : relaxedTransaction(this.db, fn);
  }

  /** A batch of transitions committed together (a listing's 500 rows); relaxed, as a listing is redone. */
  batch<T>(fn: () => T): T {
    return relaxedTransaction(this.db, fn);
  }

  // ---- the queue, as ingest reads it

  /** Verified recordings whose deletion from the camera is due. */
  dueReleases(camera: string, now: number): RecordingRow[] {
    return this.s.releases.all(camera, now);
  }

  /** Pending recordings whose next attempt is due, oldest first. */
  dueOffloads(camera: string, now: number, limit: number): RecordingRow[] {
    return this.s.offloads.all(camera, now, limit);
  }

  /**
   * When the camera's next waiting task becomes due; null when it has none. Counts exactly what
   * dueReleases and dueOffloads can return: a deletion queued for a recording retention has
   * since removed would otherwise keep the camera's workers waking every 10 ms.
   */
  nextDue(camera: string): number | null {
    return this.s.nextWake.get(camera, camera)?.t ?? null;
  }

  releaseAttempts(id: string): number {
    return this.s.releaseAttempts.get(id)?.attempts ?? 0;
  }

  // ---- discovery: a camera's listing becomes rows

  /** The recording that holds this name on the camera, if any. */
  known(camera: string, sourcePath: string): KnownRow | undefined {
    return this.s.find.get(camera, sourcePath);
  }

  /** pending ← (nothing): a file the store has not seen. */
  discover(camera: string, visit: number, f: DiscoveredFile, now: string, extra: Record<string, unknown> = {}): void {
    this.relaxed(() => {
      const officer = f.recordedAt ? officerAt(this.db, camera, f.recordedAt) : null;
      this.s.insert.run({
        id: f.recordingId,
        camera,
        sourcePath: f.path,
        sourceId: f.id,
        identity: f.identity,
        bytes: f.bytes,
        modifiedAt: f.modifiedAt,
        recordedAt: f.recordedAt,
        visit,
        now,
      });
      this.custody.append({
        type: 'recording.discovered',
        camera,
        recording: f.recordingId,
        details: {
          sourcePath: f.path,
          bytes: f.bytes,
          modifiedAt: f.modifiedAt,
          recordedAt: f.recordedAt,
          officer,
          ...extra,
        },
      });
    });
  }

  /**
   * A known file seen again at this visit, with the same content: no custody event, nothing
   * changed. Notes the file's id and identity for this session, except on an archived row that
   * has no identity: only its SHA-256 can say whether the camera still holds its content.
   */
  seenAgain(id: string, visit: number, f: ListedFile): void {
    this.s.touch.run(visit, f.id, f.identity, id);
  }

  /**
   * The camera holds other content under a known name: the known row lets go of it (see
   * markLeftCamera, no deletion in its name) and the content now there is discovered as a
   * recording of its own, in one transaction. Returns whether a queued deletion was cancelled.
   */
  replacedOnCamera(
    camera: string,
    visit: number,
    old: KnownRow,
    f: DiscoveredFile,
    noticedBy: 'listing' | 'copy' | 'release',
    now: string,
  ): boolean {
    return this.relaxed(() => {
      const cancelled = markLeftCamera(
        this.db,
        old.id,
        'replaced on the camera before it was verified',
        now,
      ).releaseCancelled;
      this.discover(camera, visit, f, now, { replaces: old.id });
      this.custody.append({
        type: 'recording.replaced_on_camera',
        camera,
        recording: old.id,
        details: {
          sourcePath: f.path,
          noticedBy,
          before: { bytes: old.bytes, identity: old.source_identity },
          after: { bytes: f.bytes, identity: f.identity },
          status: old.status,
          deletionCancelled: cancelled,
          replacedBy: f.recordingId,
        },
      });
      return cancelled;
    });
  }

  /** failed ← pending|failed: what a complete listing of this visit no longer showed. */
  vanishedFromListing(camera: string, visit: number): { id: string; sourcePath: string }[] {
    return this.durable(() =>
      this.s.unseen.all(camera, visit).map((r) => {
        this.s.vanished.run(r.id);
        this.custody.append({
          type: 'recording.vanished',
          camera,
          recording: r.id,
          details: { sourcePath: r.source_path },
        });
        return { id: r.id, sourcePath: r.source_path };
      }),
    );
  }

  // ---- offload

  /** copying ← pending. */
  markCopying(rec: RecordingRow, attempt: number, resumeFrom: number): void {
    this.relaxed(() => {
      this.s.start.run(rec.id);
      this.custody.append({
        type: 'offload.started',
        camera: rec.camera,
        recording: rec.id,
        details: { attempt, resumeFrom, sourcePath: rec.source_path, bytes: rec.bytes },
      });
    });
  }

  /** The staging file holds `bytes` durable bytes: a resumed copy may start there. */
  saveProgress(id: string, bytes: number): void {
    this.s.durable.run(bytes, id);
  }

  /**
   * verified ← copying, with the camera's deletion and the upload queued in the same durable
   * commit: once it is on disk the camera may be freed (invariant 1).
   */
  markVerified(rec: RecordingRow, v: Verification): void {
    this.durable(() => {
      const at = v.at.toISOString();
      this.s.verified.run(v.sha256, v.storedSha256, v.storedBytes, v.archivePath, at, rec.id);
      this.custody.append({
        type: 'offload.verified',
        camera: rec.camera,
        recording: rec.id,
        sha256: v.sha256,
        at: v.at,
        details: {
          sourcePath: rec.source_path,
          archivePath: v.archivePath,
          bytes: v.bytes,
          attempt: v.attempt,
          resumedFrom: v.resumedFrom,
          ...(v.resumeRefused ? { resumeRefused: true } : {}),
          verifiedSource: v.verifiedSource,
          ...(v.encryptedTo
            ? { encryptedTo: v.encryptedTo, storedSha256: v.storedSha256, storedBytes: v.storedBytes }
            : {}),
          officer: officerAt(this.db, rec.camera, rec.recorded_at ?? rec.discovered_at),
        },
      });
      if (v.release) this.s.queueRelease.run(rec.id, at, at);
      if (v.replicate) queueReplication(this.db, rec.id, at);
    });
  }

  /**
   * pending ← copying (to be retried, or resumed when interrupted) or failed ← copying (exhausted).
   * A row a listing let go of while it was copied stays as the listing left it: the attempt is
   * still closed in custody, as one that will not be retried.
   */
  copyFailed(rec: RecordingRow, f: CopyFailure): void {
    this.relaxed(() => {
      const changed = f.exhausted
        ? this.s.failed.run(f.error, rec.id).changes
        : this.s.backToPending.run(f.interrupted ? 0 : 1, f.error, Date.now() + f.retryInMs, f.keptBytes, rec.id)
            .changes;
      const willRetry = !f.exhausted && changed > 0;
      this.custody.append({
        type: 'offload.failed',
        camera: rec.camera,
        recording: rec.id,
        details: {
          sourcePath: rec.source_path,
          attempt: f.attempt,
          error: f.error,
          class: f.class,
          willRetry,
          retryInMs: willRetry ? f.retryInMs : null,
          keptBytes: f.keptBytes,
          ...(changed === 0 ? { leftCamera: true } : {}),
        },
      });
    });
  }

  /** pending ← copying after dockd's own bookkeeping failed mid-copy. False when it was not copying. */
  copyInterrupted(rec: RecordingRow, reason: string, error: string): boolean {
    return this.durable(() => {
      if (this.s.reset.run(rec.id).changes === 0) return false;
      this.custody.append({
        type: 'offload.interrupted',
        camera: rec.camera,
        recording: rec.id,
        details: { reason, error },
      });
      return true;
    });
  }

  /** pending ← copying for every copy a crash or a power cut interrupted; run at start-up. */
  copiesInterruptedByRestart(rows: RecordingRow[]): number {
    return this.durable(() => {
      for (const rec of rows) {
        this.s.reset.run(rec.id);
        this.custody.append({
          type: 'offload.interrupted',
          camera: rec.camera,
          recording: rec.id,
          details: { reason: 'daemon restarted', keptBytes: rec.bytes_done },
        });
      }
      return rows.length;
    });
  }

  // ---- release: the camera's copy is deleted once verified

  /**
   * deleted_from_camera ← on camera: the driver deleted it, or it was already gone (the archive
   * holds the content). Relaxed: lost in a power cut, the deletion is simply done again.
   */
  markDeletedFromCamera(rec: RecordingRow, alreadyGone: boolean): void {
    this.relaxed(() => {
      this.s.released.run(rec.id);
      this.s.releaseDone.run(new Date().toISOString(), rec.id);
      this.custody.append({
        type: 'camera.file_deleted',
        camera: rec.camera,
        recording: rec.id,
        sha256: rec.sha256,
        details: alreadyGone ? { sourcePath: rec.source_path, alreadyGone: true } : { sourcePath: rec.source_path },
      });
    });
  }

  /**
   * No change of state: notes on the deletion job that the camera is about to be asked. The
   * write is the point: a store that cannot take it (full, read-only) could not record the
   * deletion either, and nothing is deleted from a camera that the store cannot put on record.
   */
  beforeDeletion(rec: RecordingRow): void {
    this.relaxed(() => this.s.releaseTouched.run(new Date().toISOString(), rec.id));
  }

  /** The deletion failed: queued again after `notBefore`, or failed for a person to retry. */
  deleteFailed(rec: RecordingRow, f: DeleteFailure): void {
    this.relaxed(() => {
      this.s.releaseRetry.run(
        f.exhausted ? 'failed' : 'queued',
        f.paused ? 0 : 1,
        f.error,
        f.notBefore,
        new Date().toISOString(),
        rec.id,
      );
      this.custody.append({
        type: 'camera.file_delete_failed',
        camera: rec.camera,
        recording: rec.id,
        details: { sourcePath: rec.source_path, error: f.error, attempt: f.attempt, willRetry: !f.exhausted },
      });
    });
  }

  /**
   * The camera no longer holds, under the recording's name, the content the row is bound to
   * (checked after a copy or before a deletion): the row lets go of the name and nothing is
   * deleted in its name. Returns whether a queued deletion was cancelled, or null when a listing
   * had already let go of the name (and said so in custody) while the copy ran.
   */
  lostTrack(rec: RecordingRow, t: LostTrack): { releaseCancelled: boolean } | null {
    return this.durable(() => {
      if (this.s.leftCamera.get(rec.id)?.left) return null;
      const when = t.noticedBy === 'copy' ? 'while it was copied' : 'before it was deleted';
      const error = t.now ? `replaced on the camera ${when}` : `left the camera ${when}`;
      const { releaseCancelled } = markLeftCamera(this.db, rec.id, error, new Date().toISOString());
      this.custody.append({
        type: t.now ? 'recording.replaced_on_camera' : 'recording.vanished',
        camera: rec.camera,
        recording: rec.id,
        details: {
          sourcePath: rec.source_path,
          noticedBy: t.noticedBy,
          before: { bytes: rec.bytes, identity: rec.source_identity },
          after: t.now ? { bytes: t.now.bytes, identity: t.now.identity } : null,
          status: rec.status,
          deletionCancelled: releaseCancelled,
        },
      });
      return { releaseCancelled };
    });
  }
}
