/**
 * The real S3 store the replication tests run against (Ceph RGW, see test/support/rgw.ts) has
 * what dockd relies on: Object Lock in COMPLIANCE mode, user metadata, refusal to delete a
 * locked version, and objects that survive the gateway being killed and started again.
 */
import { createHash } from 'node:crypto';
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  GetObjectRetentionCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rgwClient, startRgw, type Rgw } from './support/rgw.js';

const DAY_MS = 24 * 60 * 60 * 1000;

let rgw: Rgw | undefined;
let s3: S3Client;

async function refusal(p: Promise<unknown>): Promise<{ name: string; status: number | undefined }> {
  try {
    await p;
  } catch (err) {
    if (err instanceof S3ServiceException) return { name: err.name, status: err.$metadata.httpStatusCode };
    throw err;
  }
  throw new Error('the store accepted a request it should have refused');
}

beforeAll(async () => {
  rgw = await startRgw();
  s3 = rgwClient(rgw);
});

afterAll(async () => {
  s3?.destroy();
  await rgw?.stop();
});

describe('real S3 store (Ceph RGW)', () => {
  const bucket = 'evidence';
  const key = 'CAM-0001/2025-01-01T00-00-00Z.mp4';
  const body = Buffer.from('not really a video, but bytes all the same\n'.repeat(1000));
  const sha256 = createHash('sha256').update(body).digest('hex');
  const retainUntil = new Date(Date.now() + DAY_MS);
  let versionId = '';

  it('locks an object in COMPLIANCE mode and refuses to delete its version', async () => {
    await s3.send(new CreateBucketCommand({ Bucket: bucket, ObjectLockEnabledForBucket: true }));
    const put = await s3.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: key,
        Body: body,
        ContentMD5: createHash('md5').update(body).digest('base64'),
        Metadata: { sha256 },
        ObjectLockMode: 'COMPLIANCE',
        ObjectLockRetainUntilDate: retainUntil,
      }),
    );
    expect(put.VersionId).toBeTruthy();
    versionId = put.VersionId ?? '';

    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key, VersionId: versionId }));
    expect(head.ContentLength).toBe(body.length);
    expect(head.Metadata?.sha256).toBe(sha256);
    expect(head.ObjectLockMode).toBe('COMPLIANCE');
    // S3 dates have second precision.
    expect(Math.abs((head.ObjectLockRetainUntilDate?.getTime() ?? 0) - retainUntil.getTime())).toBeLessThan(2000);

    const retention = await s3.send(new GetObjectRetentionCommand({ Bucket: bucket, Key: key, VersionId: versionId }));
    expect(retention.Retention?.Mode).toBe('COMPLIANCE');
    expect(Math.abs((retention.Retention?.RetainUntilDate?.getTime() ?? 0) - retainUntil.getTime())).toBeLessThan(2000);

    const denied = await refusal(s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key, VersionId: versionId })));
    expect(denied).toEqual({ name: 'AccessDenied', status: 403 });
    // Unlike GOVERNANCE, COMPLIANCE cannot be bypassed, not even by the owner.
    const bypass = await refusal(
      s3.send(
        new DeleteObjectCommand({ Bucket: bucket, Key: key, VersionId: versionId, BypassGovernanceRetention: true }),
      ),
    );
    expect(bypass).toEqual({ name: 'AccessDenied', status: 403 });
  });

  it('keeps the object and its lock when RGW is killed and started again', async () => {
    expect(versionId).not.toBe('');
    const r = rgw as Rgw;
    const before = r.pids.rgw;
    await r.killRgw();
    // The endpoint is really gone, not merely slow.
    await expect(fetch(r.endpoint)).rejects.toThrow();
    await r.restartRgw();
    expect(r.pids.rgw).not.toBe(before);

    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key, VersionId: versionId }));
    const bytes = Buffer.from(await (got.Body as NonNullable<typeof got.Body>).transformToByteArray());
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(sha256);
    expect(got.Metadata?.sha256).toBe(sha256);
    expect(got.ObjectLockMode).toBe('COMPLIANCE');

    const denied = await refusal(s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key, VersionId: versionId })));
    expect(denied).toEqual({ name: 'AccessDenied', status: 403 });
  });
});
