/**
 * Docks meeting in the bucket: real daemons publish their state to a real Ceph RGW, and `dockd
 * fleet` on a machine of its own reads them all.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPairSync, createHash, sign, createPrivateKey } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  CreateBucketCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { rgwClient, startRgw, type Rgw } from './support/rgw.js';
import { allVerified, cli, ROOT, TestDock, waitFor, type CliResult } from './support/harness.js';
import { chromium, tags } from './support/browser.js';

let rgw: Rgw;
let s3: S3Client;
let env: NodeJS.ProcessEnv;
let bucketNo = 0;
const cleanups: Array<() => Promise<void> | void> = [];

const INTERVAL_MS = 500;

interface FleetJson {
  docks: Array<{
    dockId: string;
    state: string;
    stale: boolean;
    stopped: boolean;
    lastSeenAt: string;
    heartbeatAt: string | null;
    docked: string[];
    custodyHead: { seq: number; hash: string; signatureOk: boolean } | null;
    key: { publicKey: string; trust: string };
  }>;
  cameras: Array<{
    serial: string;
    lastDock: string;
    lastSeenAt: string;
    docked: boolean;
    battery: { status: string };
    docks: Array<{ dockId: string }>;
  }>;
  warnings: Array<{ dockId: string; kind: string; message: string }>;
  trust: { file: string | null; note: string };
}

async function lockedBucket(): Promise<string> {
  const name = `fleet-${process.pid}-${++bucketNo}`;
  await s3.send(new CreateBucketCommand({ Bucket: name, ObjectLockEnabledForBucket: true }));
  return name;
}

function replication(bucket: string, dockId: string) {
  return {
    endpoint: rgw.endpoint,
    bucket,
    dockId,
    objectLock: { mode: 'COMPLIANCE', days: 1 },
    blockedRetryMs: 500,
    retry: { attempts: 50, baseDelayMs: 200, maxDelayMs: 1000 },
  };
}

function dockAt(bucket: string, dockId: string): TestDock {
  const d = new TestDock({
    replication: replication(bucket, dockId),
    fleet: { publishIntervalMs: INTERVAL_MS },
    battery: { shiftHours: 10, sampleIntervalMs: 200 },
  });
  cleanups.push(() => d.cleanup());
  return d;
}

/** A supervisor's machine: read access to the bucket and a data dir of its own (or none). */
function reader(
  bucket: string,
  opts: { dataDir?: string | null; keys?: Record<string, string> } = {},
): ((args?: string[]) => Promise<CliResult>) & { dataDir: string } {
  const root = mkdtempSync(path.join(os.tmpdir(), 'dockd-fleet-reader-'));
  cleanups.push(() => rmSync(root, { recursive: true, force: true }));
  const dataDir = opts.dataDir === null ? path.join(root, 'nowhere') : (opts.dataDir ?? root);
  const config = path.join(root, 'dockd.config.json');
  writeFileSync(
    config,
    JSON.stringify({
      dataDir,
      replication: replication(bucket, 'office'),
      ...(opts.keys ? { fleet: { keys: opts.keys } } : {}),
    }),
  );
  return Object.assign((args = ['--json']) => cli(['--config', config, 'fleet', ...args], { env }), { dataDir });
}

async function fleetJson(
  run: (args?: string[]) => Promise<CliResult>,
): Promise<FleetJson & { code: number; stderr: string }> {
  const r = await run();
  if (r.code !== 0 && r.code !== 1) throw new Error(`dockd fleet exited ${r.code}: ${r.stderr}`);
  return { ...(JSON.parse(r.stdout) as FleetJson), code: r.code, stderr: r.stderr };
}

function fixture(name: string): {
  serial: string;
  clockOffsetSeconds: number;
  battery: Record<string, unknown>;
  batteryLog: Array<{ at: string; percent: number; charging: boolean }>;
} {
  const f = JSON.parse(readFileSync(path.join(ROOT, 'fixtures', 'battery', `${name}.json`), 'utf8'));
  const last = Math.max(...f.batteryLog.map((e: { at: string }) => Date.parse(e.at)));
  const shift = Date.now() + f.clockOffsetSeconds * 1000 - 3600_000 - last;
  f.batteryLog = f.batteryLog.map((e: { at: string }) => ({
    ...e,
    at: new Date(Date.parse(e.at) + shift).toISOString(),
  }));
  return f;
}

async function getState(
  bucket: string,
  dockId: string,
): Promise<Record<string, unknown> & { custodyHead: { seq: number; hash: string; signature: string; keyId: string } }> {
  const r = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: `${dockId}/_dock/state.json` }));
  return JSON.parse(await r.Body!.transformToString());
}

async function putState(bucket: string, dockId: string, doc: unknown): Promise<void> {
  const body = Buffer.from(JSON.stringify(doc));
  await s3.send(
    new PutObjectCommand({
      Bucket: bucket,
      Key: `${dockId}/_dock/state.json`,
      Body: body,
      ContentMD5: createHash('md5').update(body).digest('base64'),
    }),
  );
}

function signHead(pem: string | Buffer, seq: number, hash: string): string {
  return sign(null, Buffer.from(`dockd-custody-checkpoint\n${seq}\n${hash}\n`), createPrivateKey(pem)).toString(
    'base64',
  );
}

beforeAll(async () => {
  rgw = await startRgw();
  s3 = rgwClient(rgw);
  env = { AWS_ACCESS_KEY_ID: rgw.accessKeyId, AWS_SECRET_ACCESS_KEY: rgw.secretAccessKey };
}, 120_000);
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  s3?.destroy();
  await rgw?.stop();
});

describe('dockd fleet', () => {
  it(
    'follows a camera between two docks, shows a stopped dock stopped and a killed one stale, and draws the city page',
    { timeout: 180_000 },
    async () => {
      const bucket = await lockedBucket();
      const north = dockAt(bucket, 'station-north-1');
      const south = dockAt(bucket, 'station-south-2');
      const office = reader(bucket);
      const night = fixture('night-ir');
      north.dock('s1', {
        serial: 'DU-0042',
        files: [{ rel: 'DCIM/A.MP4', size: 50_000 }],
        spec: { battery: { percent: 60, charging: true } },
      });
      north.dock('s2', {
        serial: night.serial,
        files: [{ rel: 'DCIM/N.MP4', size: 40_000 }],
        spec: { battery: night.battery, clockOffsetSeconds: night.clockOffsetSeconds, batteryLog: night.batteryLog },
      });
      const dn = north.start([], env);
      const ds = south.start([], env);
      await allVerified(north, 2);

      let f = await waitFor('both docks and both cameras', async () => {
        const j = await fleetJson(office);
        return j.docks.length === 2 && j.cameras.length === 2 && j.cameras.every((c) => c.docked) ? j : null;
      });
      expect(f.code, f.stderr).toBe(0);
      expect(f.docks.map((d) => [d.dockId, d.state, d.stale])).toEqual([
        ['station-north-1', 'running', false],
        ['station-south-2', 'running', false],
      ]);
      const northDock = f.docks[0]!;
      expect(northDock.docked.sort()).toEqual(['DU-0042', night.serial].sort());
      expect(northDock.custodyHead).toMatchObject({ signatureOk: true });
      expect(Math.abs(Date.parse(northDock.heartbeatAt!) - Date.parse(northDock.lastSeenAt))).toBeLessThan(5000);
      expect(northDock.custodyHead!.seq).toBeGreaterThan(0);
      // The office trusted each key on first use and remembers it.
      expect(northDock.key.trust).toBe('first-use');
      expect(f.trust.file).toMatch(/fleet-keys\.json$/);
      const keyOut = await north.json<{ publicKey: string }>(['key']);
      expect(northDock.key.publicKey).toBe(keyOut.publicKey);
      expect(f.cameras.find((c) => c.serial === night.serial)!.battery.status).toBe('short');
      expect(f.cameras.find((c) => c.serial === 'DU-0042')).toMatchObject({
        lastDock: 'station-north-1',
        docks: [{ dockId: 'station-north-1' }],
      });

      // The officer ends the next shift at the south station.
      north.undock('s1');
      await dn.waitForLog((l) => l.event === 'camera.undocked' && l.camera === 'DU-0042');
      south.dock('s4', {
        serial: 'DU-0042',
        files: [{ rel: 'DCIM/B.MP4', size: 30_000 }],
        spec: { battery: { percent: 55, charging: true } },
      });
      await allVerified(south, 1);
      f = await waitFor('the camera followed to the south station', async () => {
        const j = await fleetJson(office);
        const c = j.cameras.find((x) => x.serial === 'DU-0042');
        return c?.lastDock === 'station-south-2' && c.docked ? j : null;
      });
      const moved = f.cameras.find((c) => c.serial === 'DU-0042')!;
      expect(moved.docks.map((d) => d.dockId)).toEqual(['station-south-2', 'station-north-1']);
      expect(f.docks.find((d) => d.dockId === 'station-north-1')!.docked).toEqual([night.serial]);
      expect(f.docks.every((d) => d.key.trust === 'remembered' && d.custodyHead?.signatureOk)).toBe(true);
      expect(f.warnings).toEqual([]);

      // The city page, in a browser.
      const tmp = mkdtempSync(path.join(os.tmpdir(), 'dockd-fleet-page-'));
      cleanups.push(() => rmSync(tmp, { recursive: true, force: true }));
      const file = path.join(tmp, 'fleet.html');
      const r = await office(['--html', file]);
      expect(r.code, r.stderr).toBe(0);
      const page = readFileSync(file, 'utf8');
      expect(page).not.toMatch(/<script|<link|<iframe|@import|url\(/i);
      const dom = await chromium(['--dump-dom', `file://${file}`], path.join(tmp, 'profile'));
      expect(tags(dom).filter((t) => ['script', 'img', 'iframe'].includes(t.name))).toEqual([]);
      const dockRows = [...dom.matchAll(/<tr class="dock" data-dock="([^"]+)" data-state="([^"]+)"/g)].map((m) => [
        m[1],
        m[2],
      ]);
      expect(dockRows).toEqual([
        ['station-north-1', 'running'],
        ['station-south-2', 'running'],
      ]);
      // The camera that will not last a shift, wherever it docks, with its history across docks.
      const shortList = /<section id="short">[\s\S]*?<\/section>/.exec(dom)![0];
      expect(shortList).toContain(night.serial);
      expect(shortList).not.toContain('DU-0042');
      const history = new RegExp(`<article class="history" data-serial="${night.serial}"[\\s\\S]*?</article>`).exec(
        dom,
      )![0];
      expect(history).toMatch(/<path class="line" d="M/);
      const moves = /<article class="history" data-serial="DU-0042"[\s\S]*?<\/article>/.exec(dom)![0];
      expect(moves).toContain('station-north-1');
      expect(moves).toContain('station-south-2');

      // A graceful stop is published as such; a killed dock falls silent and goes stale.
      dn.kill('SIGTERM');
      expect((await dn.exited).code).toBe(0);
      ds.kill('SIGKILL');
      await ds.exited;
      f = await waitFor(
        'north stopped, south stale',
        async () => {
          const j = await fleetJson(office);
          const [n, s] = j.docks;
          return n?.state === 'stopped' && s?.state === 'stale' ? j : null;
        },
        20_000,
      );
      expect(f.docks[0]).toMatchObject({ dockId: 'station-north-1', stopped: true, stale: false, docked: [] });
      expect(f.docks[1]).toMatchObject({ dockId: 'station-south-2', stopped: false, stale: true });
      // Stale only after three intervals: the killed dock's last document is at least that old.
      expect(Date.now() - Date.parse(f.docks[1]!.lastSeenAt)).toBeGreaterThan(3 * INTERVAL_MS);
      expect(f.cameras.find((c) => c.serial === 'DU-0042')!.docked).toBe(false);
      expect(dn.events('fleet.publish_failed')).toEqual([]);

      // Every object in the bucket carries its own SHA-256 in `sha256`: state documents too.
      const head = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'station-north-1/_dock/state.json' }));
      expect(head.Metadata?.sha256).toBe(
        createHash('sha256')
          .update(await head.Body!.transformToByteArray())
          .digest('hex'),
      );
    },
  );

  it(
    'flags a tampered document, a changed key and a head that goes backwards, loudly',
    { timeout: 120_000 },
    async () => {
      const bucket = await lockedBucket();
      const north = dockAt(bucket, 'station-north-1');
      north.dock('s1', { serial: 'DU-0100', files: [{ rel: 'DCIM/A.MP4', size: 20_000 }] });
      const d = north.start([], env);
      await allVerified(north, 1);
      d.kill('SIGTERM');
      await d.exited;
      const office = reader(bucket);
      const first = await fleetJson(office);
      expect(first.docks[0]!.custodyHead!.signatureOk).toBe(true);
      const original = await getState(bucket, 'station-north-1');

      // Head changed, signature not: someone hides the events after seq 3.
      await putState(bucket, 'station-north-1', {
        ...original,
        custodyHead: { ...original.custodyHead, seq: 3, hash: 'f'.repeat(64) },
      });
      let f = await fleetJson(office);
      expect(f.code).toBe(1);
      expect(f.docks[0]!.custodyHead).toMatchObject({ seq: 3, signatureOk: false });
      expect(f.warnings.map((w) => w.kind)).toEqual(['signature_bad']);
      expect(f.stderr).toMatch(/WARNING: dock station-north-1: the signature of custody head 3 does not verify/);

      // A head correctly signed by the dock's own key, but older than one already seen.
      const pem = readFileSync(path.join(north.dataDir, 'keys', 'dock-signing.pem'));
      const olderHash = 'a'.repeat(64);
      await putState(bucket, 'station-north-1', {
        ...original,
        custodyHead: { ...original.custodyHead, seq: 2, hash: olderHash, signature: signHead(pem, 2, olderHash) },
      });
      f = await fleetJson(office);
      expect(f.code).toBe(1);
      expect(f.docks[0]!.custodyHead).toMatchObject({ seq: 2, signatureOk: true });
      expect(f.warnings.map((w) => w.kind)).toEqual(['head_backwards']);
      expect(f.stderr).toMatch(/WARNING: dock station-north-1: custody head went BACKWARDS/);

      // Another key altogether, with a head it signed itself: not the dock the office first met.
      const other = generateKeyPairSync('ed25519');
      const otherRaw = Buffer.from(
        (other.publicKey.export({ format: 'jwk' }) as { x: string }).x,
        'base64url',
      ).toString('base64');
      const h = original.custodyHead;
      await putState(bucket, 'station-north-1', {
        ...original,
        publicKey: otherRaw,
        custodyHead: {
          ...h,
          signature: signHead(other.privateKey.export({ format: 'pem', type: 'pkcs8' }), h.seq, h.hash),
        },
      });
      f = await fleetJson(office);
      expect(f.code).toBe(1);
      expect(f.docks[0]!.custodyHead!.signatureOk).toBe(false);
      expect(f.docks[0]!.key).toMatchObject({ publicKey: otherRaw, trust: 'remembered' });
      expect(f.warnings.map((w) => w.kind)).toEqual(['key_changed']);
      expect(f.stderr).toMatch(/WARNING: dock station-north-1 CHANGED ITS KEY/);
      // Told that the dock really has a new key, the office forgets the old one and trusts the new.
      const forgot = await office(['--forget', 'station-north-1', '--json']);
      expect(JSON.parse(forgot.stdout)).toEqual({ forgotten: 'station-north-1' });
      f = await fleetJson(office);
      expect(f.code).toBe(0);
      expect(f.docks[0]!.key).toMatchObject({ publicKey: otherRaw, trust: 'first-use' });
      expect(f.docks[0]!.custodyHead!.signatureOk).toBe(true);

      // A machine with no data dir trusts each key for its own run only, and says so.
      const passerby = reader(bucket, { dataDir: null });
      const p = await fleetJson(passerby);
      expect(p.trust.file).toBeNull();
      expect(p.stderr).toMatch(/for this run only/);
      expect(p.docks[0]!.custodyHead!.signatureOk).toBe(true);
      expect(p.code).toBe(0);
      expect(existsSync(passerby.dataDir)).toBe(false);

      // Pinned in the config, the dock's real key wins over whatever the document shows.
      const pinned = reader(bucket, {
        keys: { 'station-north-1': readFileSync(path.join(north.dataDir, 'keys', 'dock-signing.pub.pem'), 'utf8') },
      });
      const q = await fleetJson(pinned);
      expect(q.docks[0]!.key.trust).toBe('pinned');
      expect(q.docks[0]!.custodyHead!.signatureOk).toBe(false);
      expect(q.warnings.map((w) => w.kind)).toEqual(['key_not_pinned']);
      await putState(bucket, 'station-north-1', original);
      const back = await fleetJson(pinned);
      expect(back.code).toBe(0);
      expect(back.docks[0]!.custodyHead!.signatureOk).toBe(true);

      // Anyone with write access could have written any of it: strings stay text, junk is skipped.
      const hostile = '<img src=x onerror=alert(1)>';
      const camera = {
        serial: hostile,
        model: '<script>alert(2)</script>',
        docked: false,
        lastSeenAt: new Date().toISOString(),
        clockSkewSeconds: null,
        battery: { status: 'short', percent: 10 },
        batteryLows: { from: Date.now() - 6 * 3600_000, percent: [90, null, 20] },
      };
      await putState(bucket, 'station-north-1', { ...original, cameras: [camera] });
      await s3.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: 'junk/_dock/state.json',
          Body: 'not a dock',
          ContentMD5: createHash('md5').update('not a dock').digest('base64'),
        }),
      );
      const listed = await fleetJson(pinned);
      expect(listed.code).toBe(0);
      expect(listed.docks.map((x) => x.dockId)).toEqual(['station-north-1']);
      expect(listed.warnings.map((w) => [w.dockId, w.kind])).toEqual([['junk', 'unreadable']]);
      expect(listed.cameras.map((c) => [c.serial, c.battery.status])).toEqual([[hostile, 'short']]);
      const tmp = mkdtempSync(path.join(os.tmpdir(), 'dockd-fleet-page-'));
      cleanups.push(() => rmSync(tmp, { recursive: true, force: true }));
      const file = path.join(tmp, 'fleet.html');
      expect((await pinned(['--html', file])).code).toBe(0);
      const page = readFileSync(file, 'utf8');
      expect(page).toContain('&lt;img src=x onerror=alert(1)&gt;');
      expect(page).toContain('&lt;script&gt;alert(2)&lt;/script&gt;');
      expect(page).not.toMatch(/<img|<script/i);
      expect(
        /<article class="history" data-serial="&lt;img[\s\S]*?<path class="line" d="(M[^"]+)"/
          .exec(page)![1]!
          .match(/[ML]/g),
      ).toHaveLength(2);
    },
  );

  it('refuses a bad fleet section with exit 2 naming the key', async () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'dockd-fleet-config-'));
    cleanups.push(() => rmSync(root, { recursive: true, force: true }));
    const cases: Array<[unknown, RegExp]> = [
      [{ publishIntervalMs: 0 }, /fleet\.publishIntervalMs: must be at least 100/],
      [{ publishIntervalMs: 'often' }, /fleet\.publishIntervalMs: must be a number/],
      [
        { keys: { 'station-north-1': 'not a key' } },
        /fleet\.keys\.station-north-1: must be a PEM public key or the base64/,
      ],
      [{ keys: ['x'] }, /fleet\.keys: must be an object of strings/],
      [{ every: 5 }, /fleet\.every: unknown key/],
    ];
    for (const [fleet, message] of cases) {
      const config = path.join(root, 'c.json');
      writeFileSync(config, JSON.stringify({ dataDir: root, fleet }));
      const r = await cli(['--config', config, 'fleet', '--json']);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(message);
    }
  });

  it(
    'goes on offloading while the store refuses the state, says so once, and publishes again when it is back',
    { timeout: 120_000 },
    async () => {
      const bucket = await lockedBucket();
      const north = dockAt(bucket, 'station-north-1');
      const d = north.start([], env);
      await d.waitForEvent('fleet.publishing');
      await waitFor('first document', () =>
        s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'station-north-1/_dock/state.json' })).catch(() => null),
      );
      await rgw.killRgw();
      try {
        const failed = await d.waitForEvent('fleet.publish_failed', 20_000);
        expect(failed.level).toBe(40);
        north.dock('s1', {
          serial: 'DU-0300',
          files: [
            { rel: 'DCIM/A.MP4', size: 80_000 },
            { rel: 'DCIM/B.MP4', size: 60_000 },
          ],
        });
        // Docking pokes the publisher; offloading does not wait for a store that is down.
        await allVerified(north, 2, { timeoutMs: 20_000 });
        await new Promise((r) => setTimeout(r, 4 * INTERVAL_MS));
        expect(d.events('fleet.publish_failed')).toHaveLength(1);
      } finally {
        await rgw.restartRgw();
      }
      const restored = await d.waitForEvent('fleet.publish_restored', 30_000);
      expect(restored.failedForMs as number).toBeGreaterThan(INTERVAL_MS);
      const f = await waitFor('the docked camera in the fleet', async () => {
        const j = await fleetJson(reader(bucket));
        return j.cameras.some((c) => c.serial === 'DU-0300' && c.docked) ? j : null;
      });
      expect(f.docks[0]!.state).toBe('running');
    },
  );
});
