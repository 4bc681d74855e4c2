/**
 * Durable replication of verified recordings to an S3 store with Object Lock. Jobs live in the
 * `jobs` table (kind 'replicate') and survive restarts; one upload runs at a time, and only while
 * no camera is being offloaded, so replication never delays freeing a camera.
 */
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { FailureStreak } from '../log.js';
import type { ReplicationConfig } from '../config.js';
import type { Db } from '../store/db.js';
import type { CustodyLog } from '../store/custody-log.js';
import {
  markReplicated,
  nextReplicationJob,
  replicationFailedAttempt,
  replicationFoundMismatch,
  type ReplicationJob,
} from '../store/replication-jobs.js';
import type { Checkpoints } from '../custody/checkpoints.js';
import { safeSerial, baseName, safeComponent } from '../archive/names.js';
import { nextStep } from '../lib/failure-policy.js';
import type { ObjectStore } from './store.js';
import { ArchiveMismatchError } from './errors.js';

type Job = ReplicationJob;

export function objectKey(dockId: string, j: { camera: string; recording: string; source_path: string }): string {
  return `${safeComponent(dockId, 64)}/${safeSerial(j.camera)}/${j.recording}/${safeComponent(baseName(j.source_path))}`;
}

function httpStatus(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
}

/**
 * What an admin reads in status and the log. A HEAD request's error has no body, so the S3 client
 * can only say "UnknownError"; the HTTP status is what tells a refused key from a missing bucket.
 */
export function describeError(err: unknown): string {
  const message = (err as Error)?.message ?? String(err);
  const status = httpStatus(err);
  if (status === undefined || (message && message !== 'UnknownError')) return message;
  const hint =
    status === 403
      ? ': access denied, check the access key and secret'
      : status === 404
        ? ': not found, check the bucket'
        : '';
  return `the store answered HTTP ${status}${hint}`;
}

/** Errors that retrying will not fix: the queue waits and says so once. */
export function isBlocking(err: unknown): boolean {
  const name = (err as { name?: string })?.name ?? '';
  const status = httpStatus(err);
  return (
    [
      'InvalidAccessKeyId',
      'SignatureDoesNotMatch',
      'AccessDenied',
      'NoSuchBucket',
      'ObjectLockConfigurationNotFoundError',
      'InvalidBucketState',
      'CredentialsError',
    ].includes(name) || status === 403
  );
}

export class Replicator {
  private readonly abort = new AbortController();
  private loop: Promise<void> | null = null;
  private blockedSaid = false;
  private readonly storeRefusing = new FailureStreak();
  /** What storeFailed put in lastError, so that the store's recovery can take it back out. */
  private storeError: string | null = null;
  lastError: string | null = null;

  constructor(
    private readonly db: Db,
    private readonly custody: CustodyLog,
    private readonly checkpoints: Checkpoints,
    private readonly cfg: ReplicationConfig,
    private readonly store: ObjectStore,
    private readonly log: Logger,
    /** True while cameras are being offloaded; uploads wait for it to clear. */
    private readonly ingestBusy: () => boolean,
  ) {}

  start(): void {
    this.loop ??= this.run();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
    this.store.destroy();
  }

  private nextJob(): Job | undefined {
    return nextReplicationJob(this.db);
  }

  private async run(): Promise<void> {
    const signal = this.abort.signal;
    while (!signal.aborted) {
      let job: Job | undefined;
      let read = false;
      try {
        if (!this.ingestBusy()) {
          job = this.nextJob();
          read = true;
        }
      } catch (storeErr) {
        // As below: a store that cannot be read must not end the daemon, and offloading with it.
        this.storeFailed(null, storeErr);
        await sleep(this.cfg.blockedRetryMs, undefined, { signal }).catch(() => undefined);
        continue;
      }
      if (!job) {
        if (read) this.storeWorks();
        await sleep(500, undefined, { signal }).catch(() => undefined);
        continue;
      }
      try {
        await this.replicate(job, signal);
        this.storeWorks();
        this.blockedSaid = false;
        this.lastError = null;
      } catch (err) {
        if (signal.aborted) return;
        try {
          this.failed(job, err);
          this.storeWorks();
        } catch (storeErr) {
          // The store could not take the failure (full or read-only disk). An exception here
          // would end the daemon, and offloading with it; the job is still queued in the store
          // as it was, so waiting and trying it again loses nothing.
          this.storeFailed(job, storeErr, err);
          await sleep(this.cfg.blockedRetryMs, undefined, { signal }).catch(() => undefined);
        }
      }
    }
  }

  /**
   * The store refused the queue's read (no job yet) or the record of a failed attempt (`cause`).
   * Said once per streak: it is tried again every blockedRetryMs for as long as it lasts.
   */
  private storeFailed(job: Job | null, storeErr: unknown, cause?: unknown): void {
    const error = (storeErr as Error)?.message ?? String(storeErr);
    const retryInMs = this.cfg.blockedRetryMs;
    this.lastError = this.storeError = job
      ? `the store did not take the replication's state: ${error}`
      : `the store cannot be read: ${error}`;
    if (!this.storeRefusing.failed()) return;
    if (!job) {
      this.log.error(
        { event: 'replication.store_failed', error, retryInMs },
        `cannot read the replication queue from the store: ${error}; trying again`,
      );
      return;
    }
    this.log.error(
      {
        event: 'replication.store_failed',
        camera: job.camera,
        recording: job.recording,
        error,
        cause: describeError(cause),
        retryInMs,
      },
      `replication of ${job.recording} failed and the store did not take it: ${error}; trying again`,
    );
  }

  /** A round of the queue read and recorded what it had to. */
  private storeWorks(): void {
    const failedForMs = this.storeRefusing.ended();
    if (failedForMs === null) return;
    if (this.lastError === this.storeError) this.lastError = null;
    this.storeError = null;
    this.log.info(
      { event: 'replication.store_restored', failedForMs },
      `the store takes the replication's state again, after ${Math.round(failedForMs / 1000)} s`,
    );
  }

  private async replicate(job: Job, signal: AbortSignal): Promise<void> {
    const key = objectKey(this.cfg.dockId, job);
    const log = this.log.child({ camera: job.camera, recording: job.recording });
    const retainUntil = new Date(Date.now() + this.cfg.objectLock.days * 86_400_000);
    let remote = await this.store.head(key);
    let uploaded = false;
    // An object already there with the same SHA-256 is this recording: never upload it twice.
    if (!remote || remote.metadata.sha256 !== job.sha256) {
      await this.store.checkBucket();
      log.info({ event: 'replication.started', key, bytes: job.bytes }, `uploading ${key}`);
      await this.store.put({
        key,
        file: job.archive_path,
        bytes: job.bytes,
        sha256: job.stored_sha256,
        retainUntil,
        signal,
        metadata: {
          sha256: job.sha256,
          'stored-sha256': job.stored_sha256,
          camera: encodeURIComponent(job.camera),
          recording: job.recording,
          'recorded-at': job.recorded_at ?? '',
          'verified-at': job.verified_at,
          dock: encodeURIComponent(this.cfg.dockId),
        },
      });
      uploaded = true;
      remote = await this.store.head(key);
    }
    if (!remote) throw new Error(`object ${key} is not there after the upload`);
    if (remote.bytes !== job.bytes || remote.metadata.sha256 !== job.sha256) {
      throw new Error(
        `object ${key} does not match: ${remote.bytes} bytes, sha256 ${remote.metadata.sha256 ?? 'missing'}`,
      );
    }
    if (!remote.lockMode || !remote.retainUntil)
      throw Object.assign(new Error(`object ${key} carries no Object Lock retention`), {
        name: 'ObjectLockConfigurationNotFoundError',
      });

    const now = new Date();
    const head = markReplicated(this.db, this.custody, job, now, {
      bucket: this.cfg.bucket,
      key,
      versionId: remote.versionId,
      retainUntil: remote.retainUntil?.toISOString() ?? null,
      lockMode: remote.lockMode,
      uploaded,
    });
    log.info(
      {
        event: 'replication.verified',
        key,
        versionId: remote.versionId,
        retainUntil: remote.retainUntil?.toISOString(),
        uploaded,
      },
      `replicated ${key}`,
    );

    // The custody manifest travels with the object, covered by a signed head.
    const cp = this.checkpoints.signHead() ?? this.checkpoints.latest();
    const events = this.custody.forRecording(job.recording).filter((e) => e.seq <= head.seq);
    const manifest = Buffer.from(
      JSON.stringify(
        { recording: job.recording, camera: job.camera, sha256: job.sha256, object: key, events, checkpoint: cp },
        null,
        2,
      ),
    );
    // `sha256` is the object's own hash on every object of the bucket, so that an auditor checking
    // each object against it finds no exception; the recording's goes beside it.
    const manifestSha256 = createHash('sha256').update(manifest).digest('hex');
    await this.store
      .putSmall(
        `${key}.custody.json`,
        manifest,
        { sha256: manifestSha256, 'recording-sha256': job.sha256, recording: job.recording },
        retainUntil,
      )
      .catch((err: unknown) => {
        log.warn(
          { event: 'replication.manifest_failed', key, error: (err as Error).message },
          'custody manifest upload failed; the recording itself is replicated',
        );
      });
  }

  private failed(job: Job, err: unknown): void {
    const error = describeError(err);
    this.lastError = error;
    if (err instanceof ArchiveMismatchError) {
      // Uploading again would send the same wrong bytes: the job stops here, for a person to look.
      // The evidence itself changed after its verification, so the chain of custody says so, not
      // only the log: whoever answers for the recording later finds when it was noticed.
      replicationFoundMismatch(this.db, this.custody, job, {
        error,
        file: err.file,
        expected: err.expected,
        actual: err.actual,
      });
      this.log.error(
        {
          event: 'replication.archive_mismatch',
          camera: job.camera,
          recording: job.recording,
          file: err.file,
          expected: err.expected,
          actual: err.actual,
        },
        `not replicated: ${error}`,
      );
      return;
    }
    const blocking = isBlocking(err);
    const attempts = job.attempts + 1;
    const step = nextStep(
      { attempt: attempts, paused: blocking, permanent: false },
      this.cfg.retry,
      this.cfg.blockedRetryMs,
    );
    const exhausted = step.action === 'fail';
    const delay = step.action === 'fail' ? 0 : step.delayMs;
    replicationFailedAttempt(this.db, job.recording, { error, exhausted, blocking, notBefore: Date.now() + delay });
    if (blocking) {
      if (!this.blockedSaid)
        this.log.error(
          { event: 'replication.blocked', error, name: (err as Error)?.name },
          `replication waits: ${error}`,
        );
      this.blockedSaid = true;
    } else if (exhausted) {
      // The last word on this upload: nothing retries it until `dockd replicate` queues it again.
      this.log.error(
        { event: 'replication.failed', camera: job.camera, recording: job.recording, attempts, error },
        `upload of ${job.recording} failed ${attempts} times; giving up: ${error} (dockd replicate --recording ${job.recording} queues it again)`,
      );
    } else {
      this.log.warn(
        {
          event: 'replication.retry',
          camera: job.camera,
          recording: job.recording,
          attempt: attempts,
          error,
          retryInMs: delay,
        },
        'upload failed; retrying',
      );
    }
  }
}
