/**
 * Replication against a real S3 store with Object Lock (single-node Ceph RGW started here).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectVersionsCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { openStore } from '../src/store/db.js';
import { rgwClient, startRgw, type Rgw } from './support/rgw.js';
import { allVerified, TestDock, waitFor, type CustodyJson, type DaemonProcess } from './support/harness.js';

let rgw: Rgw;
let s3: S3Client;
let env: NodeJS.ProcessEnv;
let bucketNo = 0;

async function lockedBucket(): Promise<string> {
  const name = `evidence-${process.pid}-${++bucketNo}`;
  await s3.send(new CreateBucketCommand({ Bucket: name, ObjectLockEnabledForBucket: true }));
  return name;
}

function replicationConfig(bucket: string, extra: Record<string, unknown> = {}) {
  return {
    replication: {
      endpoint: rgw.endpoint,
      bucket,
      dockId: 'station-north-1',
      objectLock: { mode: 'COMPLIANCE', days: 1 },
      blockedRetryMs: 500,
      retry: { attempts: 50, baseDelayMs: 200, maxDelayMs: 1000 },
      ...extra,
    },
  };
}

const replicated = (dock: TestDock, id: string) =>
  dock
    .json<CustodyJson[]>(['custody', '--recording', id])
    .then((ev) => ev.find((e) => e.type === 'replication.verified'));

/**
 * A daemon that survived a failing store: still up, no crash. Then the store is repaired with
 * `repair`, the daemon says it works again and stops cleanly, and one started with the right
 * credentials replicates `ids`.
 */
async function repairedAndRestarted(dock: TestDock, d: DaemonProcess, repair: string, ids: string[]): Promise<void> {
  expect(await Promise.race([d.exited, new Promise((r) => setTimeout(() => r('running'), 1500))])).toBe('running');
  expect(d.events('daemon.crashed')).toEqual([]);
  const fixed = openStore(dock.dataDir);
  fixed.exec(repair);
  fixed.close();
  // One line when the store began to refuse and one when it stopped, however many retries between.
  const restored = await d.waitForEvent('replication.store_restored', 15_000);
  expect(restored).toMatchObject({ level: 30, failedForMs: expect.any(Number) });
  expect(restored.failedForMs as number).toBeGreaterThan(1000);
  expect(d.events('replication.store_failed')).toHaveLength(1);
  d.kill('SIGTERM');
  expect((await d.exited).code).toBe(0);
  dock.start([], env);
  for (const id of ids) await waitFor('replicated', () => replicated(dock, id), 60_000);
}

beforeAll(async () => {
  rgw = await startRgw();
  s3 = rgwClient(rgw);
  env = { AWS_ACCESS_KEY_ID: rgw.accessKeyId, AWS_SECRET_ACCESS_KEY: rgw.secretAccessKey };
}, 120_000);
afterAll(async () => {
  s3?.destroy();
  await rgw?.stop();
});

describe('replication to S3 with Object Lock', () => {
  it(
    'uploads each verified recording with its SHA-256, locks it, records replication.verified, and verify --remote agrees',
    { timeout: 120_000 },
    async () => {
      const bucket = await lockedBucket();
      const dock = new TestDock(replicationConfig(bucket));
      try {
        dock.dock('s1', {
          serial: 'R-1',
          files: [
            { rel: 'DCIM/A.MP4', size: 200_000 },
            { rel: 'DCIM/B.MP4', size: 20 * 1024 * 1024 + 17 },
          ],
        });
        dock.start([], env);
        const recs = await allVerified(dock, 2);
        for (const r of recs) {
          const ev = await waitFor('replicated', () => replicated(dock, r.id), 60_000);
          expect(ev.sha256).toBe(r.sha256);
          const key = ev.details.key as string;
          expect(key.startsWith('station-north-1/R-1/')).toBe(true);
          const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
          expect(head.Metadata?.sha256).toBe(r.sha256);
          expect(head.ContentLength).toBe(r.bytes);
          expect(head.ObjectLockMode).toBe('COMPLIANCE');
          expect(head.ObjectLockRetainUntilDate!.getTime()).toBeGreaterThan(Date.now() + 23 * 3600_000);
          // The bytes themselves, read back: parts of one upload and the uploads after it share
          // one body buffer, and metadata alone would not show a part sent with stale bytes.
          const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
          expect(
            createHash('sha256')
              .update(await got.Body!.transformToByteArray())
              .digest('hex'),
          ).toBe(r.sha256);
          // The manifest's `sha256` is its own, as on every object; the recording's sits beside it.
          const manifest = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: `${key}.custody.json` }));
          const manifestBytes = await manifest.Body!.transformToByteArray();
          expect(manifest.Metadata?.sha256).toBe(createHash('sha256').update(manifestBytes).digest('hex'));
          expect(manifest.Metadata?.['recording-sha256']).toBe(r.sha256);
          expect(JSON.parse(Buffer.from(manifestBytes).toString('utf8')).sha256).toBe(r.sha256);

          // COMPLIANCE: not even the owner may delete the version.
          const del = await s3
            .send(new DeleteObjectCommand({ Bucket: bucket, Key: key, VersionId: head.VersionId }))
            .then(
              () => 'deleted',
              (e: { name?: string }) => e.name,
            );
          expect(del).toBe('AccessDenied');
        }
        const v = await dock.cli(['verify', '--remote', '--json'], env);
        expect(v.code, v.stdout + v.stderr).toBe(0);
        expect(JSON.parse(v.stdout).remote).toMatchObject({
          checked: 2,
          ok: 2,
          missing: [],
          mismatched: [],
          unlocked: [],
        });
        const status = await dock.json<{ replication: { count: number } }>(['status']);
        expect(status.replication.count).toBe(0);
      } finally {
        await dock.cleanup();
      }
    },
  );

  it(
    'finishes an upload exactly once when the store dies mid-upload and comes back',
    { timeout: 180_000 },
    async () => {
      const bucket = await lockedBucket();
      const dock = new TestDock(
        replicationConfig(bucket, { partSizeBytes: 5 * 1024 * 1024, multipartThresholdBytes: 5 * 1024 * 1024 }),
      );
      try {
        dock.dock('s1', { serial: 'R-2', files: [{ rel: 'big.mp4', size: 60 * 1024 * 1024 }] });
        const d = dock.start([], env);
        await d.waitForEvent('replication.started', 60_000);
        await rgw.killRgw();
        await d.waitForEvent('replication.retry', 30_000);
        await rgw.restartRgw();
        const [r] = await allVerified(dock, 1);
        const ev = await waitFor('replicated', () => replicated(dock, r!.id), 90_000);
        const versions = await s3.send(
          new ListObjectVersionsCommand({ Bucket: bucket, Prefix: ev.details.key as string }),
        );
        expect((versions.Versions ?? []).filter((v) => v.Key === ev.details.key)).toHaveLength(1);
        const all = (await dock.json<CustodyJson[]>(['custody', '--recording', r!.id])).filter(
          (e) => e.type === 'replication.verified',
        );
        expect(all).toHaveLength(1);
      } finally {
        await dock.cleanup();
      }
    },
  );

  it(
    'with wrong credentials says so once and waits; the backlog survives a restart and drains with the right ones',
    { timeout: 120_000 },
    async () => {
      const bucket = await lockedBucket();
      const dock = new TestDock({
        ...replicationConfig(bucket),
        retention: { days: 0.00001, requireReplicated: true },
      });
      try {
        dock.dock('s1', {
          serial: 'R-3',
          files: [
            { rel: 'a.mp4', size: 100_000 },
            { rel: 'b.mp4', size: 100_000 },
          ],
        });
        const bad = { AWS_ACCESS_KEY_ID: rgw.accessKeyId, AWS_SECRET_ACCESS_KEY: 'wrong-secret' };
        const d = dock.start([], bad);
        const recs = await allVerified(dock, 2);
        const err = await d.waitForEvent('replication.blocked', 30_000);
        expect(err.level).toBe(50);
        expect(String(err.error)).not.toContain('wrong-secret');
        await new Promise((r) => setTimeout(r, 1500));
        expect(d.events('replication.blocked')).toHaveLength(1);
        const s = await dock.json<{ replication: { count: number; lastError: string | null } }>(['status']);
        expect(s.replication.count).toBe(2);
        // The admin is told what to look at, not the S3 client's "UnknownError" of a bodiless reply.
        expect(s.replication.lastError).toMatch(/access denied|SignatureDoesNotMatch|InvalidAccessKeyId/);
        // Retention must not delete what is not replicated when requireReplicated is on.
        expect(await dock.json(['retention', '--dry-run'])).toEqual([]);
        expect(JSON.stringify(d.logs)).not.toContain('wrong-secret');

        d.kill('SIGTERM');
        await d.exited;
        dock.start([], env);
        for (const r of recs) await waitFor('replicated after restart', () => replicated(dock, r.id), 60_000);
        expect((await dock.json<{ replication: { count: number } }>(['status'])).replication.count).toBe(0);
        const dry = await dock.json<Array<{ id: string }>>(['retention', '--dry-run']);
        expect(dry.map((x) => x.id).sort()).toEqual(recs.map((r) => r.id).sort());
      } finally {
        await dock.cleanup();
      }
    },
  );

  it(
    'goes on offloading when the store cannot record a failed upload, and replicates once it can',
    { timeout: 120_000 },
    async () => {
      const bucket = await lockedBucket();
      const dock = new TestDock(replicationConfig(bucket));
      try {
        dock.dock('s1', {
          serial: 'R-5',
          files: [
            { rel: 'a.mp4', size: 150_000 },
            { rel: 'b.mp4', size: 90_000 },
          ],
        });
        const d1 = dock.start([], { AWS_ACCESS_KEY_ID: rgw.accessKeyId, AWS_SECRET_ACCESS_KEY: 'wrong-secret' });
        await allVerified(dock, 2);
        await d1.waitForEvent('replication.blocked', 30_000);
        // A store that takes no more writes to the replication jobs, as on a disk gone full.
        const store = openStore(dock.dataDir);
        store.exec(
          "CREATE TRIGGER replication_refused BEFORE UPDATE ON jobs WHEN NEW.kind = 'replicate' BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END",
        );
        store.close();
        const refused = await d1.waitForEvent('replication.store_failed', 15_000);
        expect(refused.level).toBe(50);
        expect(String(refused.error)).toContain('disk is full');
        expect(String(refused.cause)).not.toContain('wrong-secret');
        expect(String(refused.cause)).toMatch(/access denied|SignatureDoesNotMatch|InvalidAccessKeyId/);
        // status shows what the daemon's last heartbeat wrote: the refusal appears within a beat.
        const s = await waitFor(
          'status shows the refusal',
          async () => {
            const st = await dock.json<{ replication: { count: number; lastError: string | null } }>(['status']);
            return st.replication.lastError?.includes('disk is full') ? st : null;
          },
          10_000,
        );
        expect(s.replication.count).toBe(2);
        // The daemon is still up and still offloads: a camera docked now is emptied as usual.
        dock.dock('s2', { serial: 'R-6', files: [{ rel: 'c.mp4', size: 120_000 }] });
        const recs = await allVerified(dock, 3);
        expect(recs.find((r) => r.sourcePath === 'c.mp4')!.sha256).toBe(dock.sources.get('R-6\nc.mp4')!.sha256);
        await waitFor('R-6 emptied', async () => !dock.cameraFileExists('s2', 'c.mp4') || null, 15_000);
        // Nothing of the backlog was lost while the store refused it.
        await repairedAndRestarted(
          dock,
          d1,
          'DROP TRIGGER replication_refused',
          recs.map((r) => r.id),
        );
      } finally {
        await dock.cleanup();
      }
    },
  );

  it(
    'goes on when the store cannot even read the replication queue, and replicates once it can',
    { timeout: 120_000 },
    async () => {
      const bucket = await lockedBucket();
      const dock = new TestDock(replicationConfig(bucket));
      try {
        dock.dock('s1', { serial: 'R-7', files: [{ rel: 'a.mp4', size: 100_000 }] });
        const d1 = dock.start([], { AWS_ACCESS_KEY_ID: rgw.accessKeyId, AWS_SECRET_ACCESS_KEY: 'wrong-secret' });
        const [rec] = await allVerified(dock, 1);
        await d1.waitForEvent('replication.blocked', 30_000);
        // The queue's table gone from under the daemon: every read of it fails, as on a failing disk.
        const store = openStore(dock.dataDir);
        store.exec('ALTER TABLE jobs RENAME TO jobs_elsewhere');
        store.close();
        const refused = await d1.waitForEvent('replication.store_failed', 15_000);
        expect(refused.level).toBe(50);
        expect(String(refused.error)).toContain('no such table: jobs');
        await repairedAndRestarted(dock, d1, 'ALTER TABLE jobs_elsewhere RENAME TO jobs', [rec!.id]);
      } finally {
        await dock.cleanup();
      }
    },
  );

  it(
    'uploads nothing of an archived file that changed since its verification, and says so',
    { timeout: 120_000 },
    async () => {
      const bucket = await lockedBucket();
      const dock = new TestDock(replicationConfig(bucket));
      try {
        // One single PUT, one multipart upload (over 16 MiB), one cut short, one left intact.
        dock.dock('s1', {
          serial: 'R-4',
          files: [
            { rel: 'small.mp4', size: 200_000 },
            { rel: 'big.mp4', size: 20 * 1024 * 1024 + 17 },
            { rel: 'short.mp4', size: 300_000 },
            { rel: 'ok.mp4', size: 100_000 },
          ],
        });
        // Wrong credentials first, so nothing is uploaded before the files change.
        const d1 = dock.start([], { AWS_ACCESS_KEY_ID: rgw.accessKeyId, AWS_SECRET_ACCESS_KEY: 'wrong-secret' });
        const recs = await allVerified(dock, 4);
        await d1.waitForEvent('replication.blocked', 30_000);
        d1.kill('SIGTERM');
        await d1.exited;
        const byName = new Map(recs.map((r) => [r.sourcePath, r]));
        for (const name of ['small.mp4', 'big.mp4']) {
          // Bit rot on the archive disk: one flipped byte, near the end (in the last part).
          const file = byName.get(name)!.archivePath!;
          const bytes = readFileSync(file);
          bytes[bytes.length - 3]! ^= 0x01;
          writeFileSync(file, bytes);
        }
        truncateSync(byName.get('short.mp4')!.archivePath!, 123_456);

        const d2 = dock.start([], env);
        await waitFor('intact one replicated', () => replicated(dock, byName.get('ok.mp4')!.id), 60_000);
        const damaged = ['small.mp4', 'big.mp4', 'short.mp4'];
        const mismatches = await waitFor(
          'each reported',
          async () => {
            const ev = d2.events('replication.archive_mismatch');
            return ev.length === damaged.length ? ev : null;
          },
          30_000,
        );
        expect(mismatches.map((e) => e.recording).sort()).toEqual(damaged.map((n) => byName.get(n)!.id).sort());
        expect(mismatches.find((e) => e.recording === byName.get('short.mp4')!.id)!.actual).toBe(
          'the file ends at byte 123456 of 300000',
        );
        expect(
          mismatches.every(
            (e) =>
              e.level === 50 && e.expected === byName.get(recs.find((r) => r.id === e.recording)!.sourcePath)!.sha256,
          ),
        ).toBe(true);
        for (const name of damaged) expect(await replicated(dock, byName.get(name)!.id)).toBeUndefined();
        // The chain of custody of each changed recording says what was found, and when.
        for (const name of [...damaged, 'ok.mp4']) {
          const rec = byName.get(name)!;
          const events = await dock.json<
            Array<{ type: string; sha256: string | null; details: { file?: string; actual?: string } }>
          >(['custody', '--recording', rec.id]);
          const found = events.filter((e) => e.type === 'archive.mismatch');
          if (name === 'ok.mp4') {
            expect(found).toEqual([]);
            continue;
          }
          expect(found).toHaveLength(1);
          expect(found[0]!.sha256).toBe(rec.sha256);
          expect(found[0]!.details.file).toBe(rec.archivePath);
          expect(found[0]!.details.actual).toBe(mismatches.find((e) => e.recording === rec.id)!.actual);
        }
        // The appended events keep the chain whole; the files themselves are what verify reports.
        const verify = await dock.json<{ chain: { ok: boolean }; files: { mismatched: string[] } }>([
          'verify',
          '--json',
        ]);
        expect(verify.chain.ok).toBe(true);
        expect([...verify.files.mismatched].sort()).toEqual(damaged.map((n) => byName.get(n)!.id).sort());
        // The bucket holds the intact recording and its manifest, and no parts of the changed one.
        const versions = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket }));
        expect(
          (versions.Versions ?? [])
            .map((v) => v.Key!)
            .filter((k) => !k.endsWith('.custody.json') && !k.includes('/_dock/')),
        ).toHaveLength(1);
        const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
        expect(uploads.Uploads ?? []).toEqual([]);
        // Not retried: the same wrong bytes would go again.
        await new Promise((r) => setTimeout(r, 1500));
        expect(d2.events('replication.archive_mismatch')).toHaveLength(damaged.length);
        expect(d2.events('replication.started').length).toBe(4);
      } finally {
        await dock.cleanup();
      }
    },
  );
});
