/**
 * The object store as dockd needs it: put a recording under Object Lock with its SHA-256 in the
 * metadata, streamed and in bounded memory, each request body carrying a Content-MD5 the store
 * checks; and head it back. Multipart is ours rather than lib-storage's so that every part gets
 * its own Content-MD5.
 */
import { createHash } from 'node:crypto';
import { ArchiveMismatchError } from './errors.js';
import { open } from 'node:fs/promises';
import {
  S3Client,
  HeadObjectCommand,
  PutObjectCommand,
  CreateMultipartUploadCommand,
  UploadPartCommand,
  CompleteMultipartUploadCommand,
  AbortMultipartUploadCommand,
  GetObjectLockConfigurationCommand,
  PutObjectRetentionCommand,
  type ObjectLockMode,
} from '@aws-sdk/client-s3';
import type { ReplicationConfig } from '../config.js';
import type { S3Credentials } from './credentials.js';

export interface PutRequest {
  key: string;
  file: string;
  bytes: number;
  /** SHA-256 the file's bytes were verified with: an object is only made of bytes that match it. */
  sha256: string;
  metadata: Record<string, string>;
  retainUntil: Date;
  signal?: AbortSignal;
}

export interface RemoteObject {
  bytes: number;
  metadata: Record<string, string>;
  versionId: string | null;
  lockMode: string | null;
  retainUntil: Date | null;
  etag: string | null;
}

/**
 * An S3 client for a store as dockd talks to it: AWS, MinIO or Ceph RGW. One place for what the
 * stores need, for dockd and for the tests and benchmark that check it against a real RGW.
 * `maxAttempts` is 1 for dockd, whose replication queue does its own retrying with backoff.
 */
export function s3ClientFor(
  target: Pick<ReplicationConfig, 'endpoint' | 'region' | 'forcePathStyle'>,
  creds: S3Credentials,
  maxAttempts = 1,
): S3Client {
  return new S3Client({
    endpoint: target.endpoint ?? undefined,
    region: target.region,
    forcePathStyle: target.forcePathStyle,
    credentials: creds,
    // Stream bodies otherwise go up as chunked uploads with a trailing CRC32, which RGW 16.2
    // refuses (411 MissingContentLength).
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts,
  });
}

export class ObjectStore {
  readonly client: S3Client;
  /**
   * One request body's memory, kept from one upload to the next. A fresh buffer per 8 MiB part
   * stayed garbage until the collector noticed the external memory, and that pushed the
   * replicating daemon's RSS past 150 MB. A body is reused only once its request has settled;
   * were a stale write ever to send changed bytes, the store would refuse them by their Content-MD5.
   */
  private spare: Buffer | null = null;

  constructor(
    private readonly cfg: ReplicationConfig,
    creds: S3Credentials,
  ) {
    this.client = s3ClientFor(cfg, creds);
  }

  /** Throws unless the bucket has Object Lock enabled: uploads without it would be deletable. */
  async checkBucket(): Promise<void> {
    const r = await this.client.send(new GetObjectLockConfigurationCommand({ Bucket: this.cfg.bucket }));
    if (r.ObjectLockConfiguration?.ObjectLockEnabled !== 'Enabled')
      throw Object.assign(new Error(`bucket ${this.cfg.bucket} has no Object Lock`), {
        name: 'ObjectLockConfigurationNotFoundError',
      });
  }

  async head(key: string): Promise<RemoteObject | null> {
    try {
      const r = await this.client.send(new HeadObjectCommand({ Bucket: this.cfg.bucket, Key: key }));
      return {
        bytes: r.ContentLength ?? -1,
        metadata: r.Metadata ?? {},
        versionId: r.VersionId ?? null,
        lockMode: r.ObjectLockMode ?? null,
        retainUntil: r.ObjectLockRetainUntilDate ?? null,
        etag: r.ETag ?? null,
      };
    } catch (err) {
      const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
      if (e.name === 'NotFound' || e.name === 'NoSuchKey' || e.$metadata?.httpStatusCode === 404) return null;
      throw err;
    }
  }

  async put(req: PutRequest): Promise<void> {
    const lock = {
      ObjectLockMode: this.cfg.objectLock.mode as ObjectLockMode,
      ObjectLockRetainUntilDate: req.retainUntil,
    };
    const single = req.bytes <= this.cfg.multipartThresholdBytes;
    const fh = await open(req.file, 'r');
    const memory = this.borrow(single ? req.bytes : this.cfg.partSizeBytes);
    // The bytes as sent, hashed: a file changed on the disk since its verification (bit rot, a
    // hand that edited it) must not become a locked object that custody calls this recording.
    const sent = createHash('sha256');
    const checkSent = () => {
      const got = sent.digest('hex');
      if (got !== req.sha256) throw new ArchiveMismatchError(req.file, req.sha256, got);
    };
    try {
      if (single) {
        const body = await readRange(fh, memory, 0, req.bytes, req);
        sent.update(body);
        checkSent();
        await this.client.send(
          new PutObjectCommand({
            Bucket: this.cfg.bucket,
            Key: req.key,
            Body: body,
            ContentLength: body.length,
            ContentMD5: md5(body),
            Metadata: req.metadata,
            ...lock,
          }),
          { abortSignal: req.signal },
        );
        return;
      }
      const { UploadId } = await this.client.send(
        new CreateMultipartUploadCommand({ Bucket: this.cfg.bucket, Key: req.key, Metadata: req.metadata, ...lock }),
        { abortSignal: req.signal },
      );
      try {
        const parts: Array<{ ETag: string; PartNumber: number }> = [];
        for (let off = 0, n = 1; off < req.bytes; off += this.cfg.partSizeBytes, n++) {
          const body = await readRange(fh, memory, off, Math.min(this.cfg.partSizeBytes, req.bytes - off), req);
          sent.update(body);
          const r = await this.client.send(
            new UploadPartCommand({
              Bucket: this.cfg.bucket,
              Key: req.key,
              UploadId,
              PartNumber: n,
              Body: body,
              ContentLength: body.length,
              ContentMD5: md5(body),
            }),
            { abortSignal: req.signal },
          );
          parts.push({ ETag: r.ETag!, PartNumber: n });
        }
        // Before the parts become an object: the abort below throws them away.
        checkSent();
        const done = await this.client.send(
          new CompleteMultipartUploadCommand({
            Bucket: this.cfg.bucket,
            Key: req.key,
            UploadId,
            MultipartUpload: { Parts: parts },
          }),
          { abortSignal: req.signal },
        );
        // Some stores (Ceph RGW 16) drop the lock headers of a multipart upload: lock the
        // version explicitly when it arrived without retention.
        const head = await this.head(req.key);
        if (head && !head.retainUntil) {
          await this.client.send(
            new PutObjectRetentionCommand({
              Bucket: this.cfg.bucket,
              Key: req.key,
              VersionId: done.VersionId ?? head.versionId ?? undefined,
              Retention: { Mode: lock.ObjectLockMode, RetainUntilDate: req.retainUntil },
            }),
            { abortSignal: req.signal },
          );
        }
      } catch (err) {
        await this.client
          .send(new AbortMultipartUploadCommand({ Bucket: this.cfg.bucket, Key: req.key, UploadId }))
          .catch(() => undefined);
        throw err;
      }
    } finally {
      await fh.close();
      this.spare = memory;
    }
  }

  /** The kept body memory when it is free and large enough; uploads that overlap get their own. */
  private borrow(bytes: number): Buffer {
    const kept = this.spare;
    if (kept && kept.length >= bytes) {
      this.spare = null;
      return kept;
    }
    return Buffer.allocUnsafe(Math.max(bytes, this.cfg.partSizeBytes));
  }

  async putSmall(key: string, body: Buffer, metadata: Record<string, string>, retainUntil: Date): Promise<void> {
    await this.client.send(
      new PutObjectCommand({
        Bucket: this.cfg.bucket,
        Key: key,
        Body: body,
        ContentLength: body.length,
        ContentMD5: md5(body),
        ContentType: 'application/json',
        Metadata: metadata,
        ObjectLockMode: this.cfg.objectLock.mode as ObjectLockMode,
        ObjectLockRetainUntilDate: retainUntil,
      }),
    );
  }

  destroy(): void {
    this.client.destroy();
  }
}

function md5(b: Buffer): string {
  return createHash('md5').update(b).digest('base64');
}

async function readRange(
  fh: import('node:fs/promises').FileHandle,
  memory: Buffer,
  position: number,
  length: number,
  req: PutRequest,
): Promise<Buffer> {
  const buf = memory.subarray(0, length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(buf, done, length - done, position + done);
    // Cut short since its verification: as changed as a flipped byte, and as pointless to retry.
    if (bytesRead === 0)
      throw new ArchiveMismatchError(req.file, req.sha256, `the file ends at byte ${position + done} of ${req.bytes}`);
    done += bytesRead;
  }
  return buf;
}
