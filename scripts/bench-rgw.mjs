/**
 * The replication run of scripts/bench.mjs: a throw-away single-node Ceph RGW (scripts/rgw/
 * start.sh, as test/support/rgw.ts uses it), a bucket with Object Lock, the plain upload loop
 * dockd's replicator is measured against, and the checks of what dockd left in the bucket.
 */
import { execFile, execFileSync } from 'node:child_process';
import { createReadStream, mkdtempSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import {
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  PutObjectCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { pathToFileURL } from 'node:url';
import { ROOT, onPath } from './bench-lib.mjs';

const SCRIPTS = path.join(ROOT, 'scripts', 'rgw');
const REQUIRED = ['ceph-mon', 'ceph-osd', 'radosgw', 'radosgw-admin', 'ceph', 'monmaptool'];
/** Commands start.sh needs that are not on PATH; empty when Ceph is installed. */
export function rgwMissing() {
  return REQUIRED.filter((cmd) => !onPath(cmd));
}

/** The cluster that is up, for the SIGINT and exit handlers of bench.mjs. */
export let activeRgw = null;

/**
 * Starts a cluster in a short folder under os.tmpdir() (Ceph's admin sockets must fit the
 * 107-byte limit of Unix socket paths, which a --work folder might not). start.sh's watchdog
 * ends it, and removes the folder, should this process die without stopping it.
 */
export async function startRgw({ timeoutSec = 120 } = {}) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rgw-'));
  let starter = null;
  const rgw = {
    dir,
    stopped: false,
    /** Synchronous, so that it also works from a signal or exit handler. */
    stop() {
      if (rgw.stopped) return;
      rgw.stopped = true;
      try {
        // --kill: a memstore OSD stopped by SIGTERM first writes all its data to disk.
        execFileSync('bash', [path.join(SCRIPTS, 'stop.sh'), dir, '--kill'], { stdio: 'ignore', timeout: 60_000 });
      } finally {
        execFileSync('rm', ['-rf', dir]);
        if (activeRgw === rgw) activeRgw = null;
      }
    },
    /**
     * For SIGINT: a start.sh still running is told to stop (it then kills what it started,
     * which stop.sh might miss: a daemon that has not written its pid file yet) and waited for.
     */
    async abort() {
      if (starter) {
        starter.child.kill('SIGTERM');
        await Promise.race([starter.done, sleep(30_000)]);
      }
      rgw.stop();
    },
  };
  activeRgw = rgw;
  const stdout = await new Promise((resolve, reject) => {
    const child = execFile(
      'bash',
      [path.join(SCRIPTS, 'start.sh'), dir],
      {
        env: {
          ...process.env,
          RGW_OWNER_PID: String(process.pid),
          RGW_OWNER_TEMP: '1',
          RGW_READY_TIMEOUT: String(timeoutSec),
        },
        timeout: (timeoutSec + 30) * 1000,
        killSignal: 'SIGKILL',
      },
      (err, out, errOut) =>
        err
          ? reject(
              new Error(`scripts/rgw/start.sh exited ${err.code ?? err.signal}: ${errOut.trim() || '(no output)'}`),
            )
          : resolve(out),
    );
    starter = { child, done: new Promise((r) => child.on('close', r)) };
  })
    .catch((err) => {
      rgw.stop();
      throw err;
    })
    .finally(() => (starter = null));
  const line = stdout.split('\n').find((l) => l.startsWith('RGW_READY '));
  const field = (k) => new RegExp(`(?:^| )${k}=(\\S+)`).exec(line ?? '')?.[1];
  const [endpoint, accessKeyId, secretAccessKey] = ['endpoint', 'access_key', 'secret_key'].map(field);
  if (!endpoint || !accessKeyId || !secretAccessKey) {
    rgw.stop();
    throw new Error(`scripts/rgw/start.sh printed no usable RGW_READY line:\n${stdout}`);
  }
  return Object.assign(rgw, { endpoint, accessKeyId, secretAccessKey });
}

/** dockd's own client (src/replication/store.ts, from dist/), so the baseline talks as dockd does. */
export async function s3Client(rgw) {
  // Node 20 is supported until 2027; the SDK's notice about it would only clutter the output.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const { s3ClientFor } = await import(pathToFileURL(path.join(ROOT, 'dist', 'src', 'replication', 'store.js')).href);
  return s3ClientFor(
    { endpoint: rgw.endpoint, region: 'us-east-1', forcePathStyle: true },
    { accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey },
  );
}

/**
 * A bucket with Object Lock, and one small object put each way dockd puts them: RGW creates
 * its data pools (and the one for multipart uploads) lazily at the first write, a mon round
 * each, which neither timed upload should pay for.
 */
export async function createLockedBucket(s3, bucket) {
  await s3.send(new CreateBucketCommand({ Bucket: bucket, ObjectLockEnabledForBucket: true }));
  const body = Buffer.alloc(4096, 1);
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'warm-up/put', Body: body, ContentLength: body.length }));
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'warm-up/multipart' }));
  const part = await s3.send(
    new UploadPartCommand({
      Bucket: bucket,
      Key: 'warm-up/multipart',
      UploadId,
      PartNumber: 1,
      Body: body,
      ContentLength: body.length,
    }),
  );
  await s3.send(
    new CompleteMultipartUploadCommand({
      Bucket: bucket,
      Key: 'warm-up/multipart',
      UploadId,
      MultipartUpload: { Parts: [{ ETag: part.ETag, PartNumber: 1 }] },
    }),
  );
}

/**
 * The baseline: every file PUT once, streamed from disk, one at a time as dockd's replicator
 * uploads, with nothing of dockd's own work (Content-MD5 per part, HEAD back, Object Lock
 * retention, custody manifest).
 */
export async function uploadLoop(s3, bucket, prefix, files) {
  let bytes = 0;
  const started = performance.now();
  for (const { file, key } of files) {
    const size = statSync(file).size;
    await s3.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: `${prefix}/${key}`,
        Body: createReadStream(file, { highWaterMark: 1024 * 1024 }),
        ContentLength: size,
      }),
    );
    bytes += size;
  }
  return { seconds: (performance.now() - started) / 1000, bytes, files: files.length };
}

/**
 * Checks the bucket after a dockd run: each recording has exactly one replication.verified
 * event, and its object HEADs back with the size, the generated SHA-256 in its metadata and
 * Object Lock retention. Returns the problems found.
 */
export async function checkReplication(s3, bucket, dataDir, cameras, expected) {
  const problems = [];
  const bySerial = new Map(cameras.map((c) => [c.serial, c.slot]));
  const db = new Database(path.join(dataDir, 'dockd.db'), { readonly: true, fileMustExist: true });
  let recs;
  let events;
  try {
    recs = db
      .prepare('SELECT id, camera, source_path, bytes, coalesce(stored_bytes, bytes) stored_bytes FROM recordings')
      .all();
    events = db
      .prepare("SELECT recording, sha256, details FROM custody_events WHERE type = 'replication.verified'")
      .all();
  } finally {
    db.close();
  }
  const byRecording = new Map();
  for (const e of events) byRecording.set(e.recording, [...(byRecording.get(e.recording) ?? []), e]);
  for (const r of recs) {
    const key = `${bySerial.get(r.camera)}/${r.source_path}`;
    const evs = byRecording.get(r.id) ?? [];
    if (evs.length !== 1) {
      problems.push(`${key}: ${evs.length} replication.verified events, expected 1`);
      if (evs.length === 0) continue;
    }
    const objectKey = JSON.parse(evs[0].details).key;
    try {
      const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: objectKey }));
      if (head.Metadata?.sha256 !== expected.get(key))
        problems.push(
          `${key}: object ${objectKey} has sha256 ${head.Metadata?.sha256}, generated ${expected.get(key)}`,
        );
      if (head.ContentLength !== r.stored_bytes)
        problems.push(
          `${key}: object ${objectKey} is ${head.ContentLength} bytes, the archive holds ${r.stored_bytes}`,
        );
      if (!head.ObjectLockMode || !head.ObjectLockRetainUntilDate)
        problems.push(`${key}: object ${objectKey} carries no Object Lock retention`);
    } catch (err) {
      problems.push(`${key}: HEAD ${objectKey} failed: ${err?.name ?? ''} ${err?.message ?? String(err)}`);
    }
  }
  if (events.length > recs.length)
    problems.push(`${events.length} replication.verified events for ${recs.length} recordings`);
  return problems;
}
