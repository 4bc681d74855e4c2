#!/usr/bin/env node
/**
 * The fleet at city scale: 200 docks × 50 cameras of synthetic state documents (each with a
 * custody head signed by its own Ed25519 key and a week of battery lows per camera) PUT into a
 * throw-away Ceph RGW, then `dockd fleet --json` timed as a supervisor runs it: the first run
 * trusts and remembers 200 keys, the later ones check against them.
 *
 *   node scripts/bench-fleet.mjs                 # 200 docks × 50 cameras, 5 timed runs
 *   node scripts/bench-fleet.mjs --docks 50 --cameras 20 --runs 3
 *
 * Needs Ceph (scripts/rgw/install.sh) and a build (npm run build).
 */
import { execFile } from 'node:child_process';
import { generateKeyPairSync, sign, createHash } from 'node:crypto';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { BIN, ROOT, log, median, rm } from './bench-lib.mjs';
import { activeRgw, createLockedBucket, rgwMissing, s3Client, startRgw } from './bench-rgw.mjs';

const BUCKET = 'dockd-fleet-bench';
const HOUR = 3_600_000;

const { values } = parseArgs({
  options: {
    docks: { type: 'string', default: '200' },
    cameras: { type: 'string', default: '50' },
    runs: { type: 'string', default: '5' },
  },
});
const DOCKS = Number(values.docks);
const CAMERAS = Number(values.cameras);
const RUNS = Number(values.runs);
if (![DOCKS, CAMERAS, RUNS].every((n) => Number.isInteger(n) && n > 0)) {
  process.stderr.write('bench-fleet: --docks, --cameras and --runs take whole numbers above 0\n');
  process.exit(2);
}
if (!existsSync(path.join(ROOT, 'dist', 'src', 'fleet', 'document.js'))) {
  process.stderr.write('bench-fleet: dist/ is missing or old; run `npm run build` first\n');
  process.exit(2);
}
if (rgwMissing().length) {
  process.stderr.write(
    `bench-fleet: Ceph is not installed (${rgwMissing().join(', ')}): run scripts/rgw/install.sh as root\n`,
  );
  process.exit(2);
}

const { STATE_FORMAT, SERIES_BUCKET_MS, SERIES_POINTS, stateKey } = await import(
  pathToFileURL(path.join(ROOT, 'dist', 'src', 'fleet', 'document.js')).href
);
const { checkpointMessage } = await import(pathToFileURL(path.join(ROOT, 'dist', 'src', 'custody', 'signing.js')).href);

/** Cameras roam: neighbouring docks share a fifth of theirs, so merging by serial has work to do. */
function dockState(d, now) {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x, 'base64url');
  const seq = 10_000 + d * 37;
  const hash = createHash('sha256').update(`head ${d}`).digest('hex');
  const stride = Math.round(CAMERAS * 0.8);
  const cameras = Array.from({ length: CAMERAS }, (_, i) => {
    const n = d * stride + i;
    const lastSeen = now - ((n * 7919) % (48 * HOUR));
    const end = Math.floor(lastSeen / SERIES_BUCKET_MS) * SERIES_BUCKET_MS;
    return {
      serial: `DU-${String(n).padStart(5, '0')}`,
      model: 'SimCam 2',
      docked: i < 8,
      lastSeenAt: new Date(lastSeen).toISOString(),
      clockSkewSeconds: (n % 7) - 3,
      battery: {
        status: n % 13 === 0 ? 'short' : 'ok',
        percent: 40 + (n % 60),
        charging: i < 8,
        healthPercent: 80 + (n % 20),
        projectedRuntimeHours: n % 13 === 0 ? 7.5 : 11.2,
        drainPercentPerHour: n % 13 === 0 ? 13.3 : 8.9,
      },
      batteryLows: {
        from: end - (SERIES_POINTS - 1) * SERIES_BUCKET_MS,
        percent: Array.from({ length: SERIES_POINTS }, (_, k) => 100 - ((k * 13 + n) % 70)),
      },
    };
  });
  return {
    format: STATE_FORMAT,
    dockId: `station-${String(d).padStart(3, '0')}`,
    version: 'bench',
    startedAt: new Date(now - 86_400_000).toISOString(),
    publishedAt: new Date(now).toISOString(),
    heartbeatAt: new Date(now).toISOString(),
    stoppedAt: null,
    publishIntervalMs: 3_600_000,
    shiftHours: 10,
    docked: cameras.filter((c) => c.docked).map((c) => c.serial),
    queue: { pending: d % 5, active: 0, failed: 0, verified: 5000 + d },
    replication: { count: d % 3, bytes: (d % 3) * 50_000_000, oldestAt: null },
    archive: { freeBytes: 500e9 },
    cameras,
    custodyHead: {
      seq,
      hash,
      signature: sign(null, checkpointMessage(seq, hash), privateKey).toString('base64'),
      keyId: createHash('sha256').update(raw).digest('hex').slice(0, 16),
    },
    publicKey: raw.toString('base64'),
  };
}

function runFleet(config, env, args = ['fleet', '--json']) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    execFile(
      process.execPath,
      [BIN, '--config', config, ...args],
      { env: { ...process.env, ...env }, maxBuffer: 512 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const seconds = (performance.now() - t0) / 1000;
        if (err && err.code !== 1) return reject(new Error(`dockd fleet exited ${err.code}: ${stderr}`));
        resolve({ seconds, out: args[0] === 'fleet' ? JSON.parse(stdout) : null, bytes: stdout.length });
      },
    );
  });
}

const work = mkdtempSync(path.join(os.tmpdir(), 'dockd-fleet-bench-'));
try {
  log(`starting a single-node Ceph RGW`);
  const rgw = await startRgw();
  const s3 = await s3Client(rgw);
  await createLockedBucket(s3, BUCKET);
  log(`putting ${DOCKS} state documents of ${CAMERAS} cameras each`);
  const now = Date.now();
  let next = 0;
  let bytes = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < DOCKS) {
        const doc = dockState(next++, now);
        const body = Buffer.from(JSON.stringify(doc));
        bytes += body.length;
        await s3.send(
          new PutObjectCommand({
            Bucket: BUCKET,
            Key: stateKey(doc.dockId),
            Body: body,
            ContentLength: body.length,
            ContentMD5: createHash('md5').update(body).digest('base64'),
          }),
        );
      }
    }),
  );
  log(
    `put ${DOCKS} documents, ${(bytes / 1e6).toFixed(1)} MB (${Math.round(bytes / DOCKS / 1000)} KB each), in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
  s3.destroy();

  const config = path.join(work, 'dockd.config.json');
  writeFileSync(
    config,
    JSON.stringify({ dataDir: work, replication: { endpoint: rgw.endpoint, bucket: BUCKET, dockId: 'office' } }),
  );
  const env = {
    AWS_ACCESS_KEY_ID: rgw.accessKeyId,
    AWS_SECRET_ACCESS_KEY: rgw.secretAccessKey,
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
  const first = await runFleet(config, env);
  const later = [];
  for (let i = 0; i < RUNS; i++) later.push(await runFleet(config, env));
  const out = later.at(-1).out;
  const stride = Math.round(CAMERAS * 0.8);
  const expectedCameras = (DOCKS - 1) * stride + CAMERAS;
  const problems = [];
  if (out.docks.length !== DOCKS) problems.push(`${out.docks.length} docks, expected ${DOCKS}`);
  if (out.cameras.length !== expectedCameras)
    problems.push(`${out.cameras.length} cameras, expected ${expectedCameras}`);
  if (out.warnings.length) problems.push(`${out.warnings.length} warnings: ${out.warnings[0].message}`);
  if (!out.docks.every((d) => d.custodyHead?.signatureOk && d.key.trust === 'remembered'))
    problems.push('not every head verified against a remembered key');
  const secs = later.map((r) => r.seconds);
  // What any dockd command costs on this machine now: Node, the CLI, the config.
  const idle = [];
  for (let i = 0; i < 3; i++) idle.push((await runFleet(config, env, ['--version'])).seconds);
  process.stdout.write(
    `\ndockd fleet, ${DOCKS} docks × ${CAMERAS} cameras (${out.cameras.length} distinct, ${(bytes / 1e6).toFixed(1)} MB of documents), one listing and ${DOCKS} GETs 16 at a time against a loopback RGW:\n` +
      `  first run (trusts and remembers ${DOCKS} keys): ${first.seconds.toFixed(2)} s\n` +
      `  later runs (checked against remembered keys): median ${median(secs).toFixed(2)} s of ${RUNS} (${secs.map((s) => s.toFixed(2)).join(', ')}); --json output ${(later.at(-1).bytes / 1e6).toFixed(1)} MB\n` +
      `  dockd --version on the same machine meanwhile: median ${median(idle).toFixed(2)} s\n` +
      `  machine: ${os.cpus().length} cores, load ${os.loadavg()[0].toFixed(1)} at the end\n`,
  );
  if (problems.length) {
    process.stdout.write(`CORRECTNESS CHECK FAILED: ${problems.join('; ')}\n`);
    process.exitCode = 1;
  } else {
    process.stdout.write(
      `Correctness: every dock listed with a verified head, ${out.cameras.length} cameras merged by serial, no warnings.\n`,
    );
  }
} catch (err) {
  process.stderr.write(`bench-fleet: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
} finally {
  activeRgw?.stop();
  rm(work);
}
