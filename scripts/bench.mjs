#!/usr/bin/env node
/**
 * Offload benchmark: dockd against `cp -r` and `cp -r` + `sha256sum` on the same generated
 * dataset in the same run, dockd again with encryption at rest against its plain run, a
 * throttled run against the simulated links' total rate, a run of many small files, a fleet
 * of cameras docked at once into a store with months of history, and
 * replication to a loopback Ceph RGW against a plain upload loop to the same store. Prints one
 * table with the targets and whether each is met; it exits 1 only when dockd's result (archive,
 * store, bucket) is wrong, never because a target is missed.
 *
 *   npm run bench                     # 4 cameras × 8 × 64 MiB, 20,000 small files, (z) 20 cameras
 *                                     # over 100,000 recordings, (r) 512 MiB
 *   node scripts/bench.mjs --quick
 *   node scripts/bench.mjs --only a,e # only some of the runs: b c bsync f a fe e d s z r k
 *
 * (r) needs Ceph (radosgw, ceph-mon, ceph-osd: scripts/rgw/install.sh) and is skipped without it.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  BIN,
  MB,
  ROOT,
  UsageError,
  activeDaemon,
  archivedFiles,
  checkDockdRun,
  custodyWindow,
  dockSim,
  generateMain,
  generateScale,
  listFiles,
  log,
  machine,
  median,
  medianRun,
  onPath,
  parseOptions,
  parseSums,
  prepareSim,
  readThroughSimDriver,
  rm,
  runDockd as runDaemon,
  timed,
  totals,
} from './bench-lib.mjs';
import { checkDecrypts, floorIdentity, keygen } from './bench-encryption.mjs';
import { report } from './bench-report.mjs';
import { seedHistory } from './bench-seed.mjs';
import {
  activeRgw,
  checkReplication,
  createLockedBucket,
  rgwMissing,
  s3Client,
  startRgw,
  uploadLoop,
} from './bench-rgw.mjs';

// The throttled run is cut to fewer recordings per camera when the full set would take longer.
const THROTTLED_MAX_SECONDS = 25;
const STATUS_RUNS = 5;
// The fleet run's cameras each bring a shift's few recordings to a store that has months of them.
const FLEET_FILES = 3;
const FLEET_MIB = 4;
// The seeded history's recordings (scripts/bench-seed.mjs names them so), as SQL on recordings.
const SEEDED = "source_path LIKE 'DCIM/%HIST/%'";
const BUCKET = 'dockd-bench';
let checkedInFull = false;

let opts;
try {
  opts = parseOptions(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`bench: ${err instanceof UsageError ? err.message : String(err)}\n`);
  process.exit(2);
}
if (!existsSync(path.join(ROOT, 'dist', 'src', 'cli', 'main.js'))) {
  process.stderr.write('bench: dist/ is missing; run `npm run build` first (or `npm run bench`)\n');
  process.exit(2);
}
const want = (run) => opts.only.has(run);

mkdirSync(opts.work, { recursive: true });
const work = mkdtempSync(path.join(path.resolve(opts.work), 'dockd-bench-'));
const runsDir = path.join(work, 'runs');
mkdirSync(runsDir);
const cleanup = () => {
  if (opts.keep) log(`kept ${work}`);
  else rm(work);
};
// Ceph's daemons leave this process group, so Ctrl-C never reaches them, and start.sh's watchdog
// would end them only a second after this process: these end them at once.
process.on('exit', () => activeRgw?.stop());
process.on('SIGINT', async () => {
  activeDaemon?.kill('SIGKILL');
  await activeRgw?.abort();
  cleanup();
  process.exit(130);
});

const timeoutFor = (bytes, files) => 120_000 + (bytes / (5 * MB)) * 1000 + files * 200;
const syncDisks = () => timed('sync', []);

try {
  const { problems, checked } = await bench();
  if (problems.length) {
    process.stdout.write(
      `\nCORRECTNESS CHECK FAILED (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n`,
    );
    for (const p of problems.slice(0, 20)) process.stdout.write(`  - ${p}\n`);
    process.exitCode = 1;
  } else if (checked.length) {
    process.stdout.write(`\nCorrectness: ${checked.join('; ')}.\n`);
  }
} catch (err) {
  process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
} finally {
  activeRgw?.stop();
  cleanup();
}

async function bench() {
  const problems = [];
  const host = machine(work);
  host.loadAverageAtStart = os.loadavg()[0];
  const pristine = path.join(work, 'pristine');
  const pristineMain = path.join(pristine, 'main');
  const pristineScale = path.join(pristine, 'scale');
  const pristineFleet = path.join(pristine, 'fleet');

  const missing = want('r') ? rgwMissing() : [];
  let rgwSkipped = missing.length
    ? `(r) skipped: ${missing.includes('radosgw') ? 'radosgw' : missing.join(', ')} not installed; run scripts/rgw/install.sh as root`
    : null;
  const withRgw = want('r') && !rgwSkipped;
  // With (r) the only run on it, the main dataset need only be as large as (r)'s share of it.
  const mainRuns = ['b', 'c', 'bsync', 'f', 'a', 'fe', 'e', 'd'].filter(want);
  const mainSpec = mainRuns.length
    ? opts
    : withRgw
      ? { cameras: opts.rgwCameras, files: opts.rgwFiles, mib: opts.mib }
      : null;
  const withScale = want('s') && opts.scaleFiles > 0;
  const withFleet = want('z') && opts.fleetCameras > 0;
  log(`work folder ${work}`);
  log(
    `generating ${mainSpec ? `${mainSpec.cameras} cameras × ${mainSpec.files} recordings × ${mainSpec.mib} MiB` : 'no recordings'}` +
      (withScale ? ` and ${opts.scaleFiles} small files` : '') +
      (withFleet ? ` and ${opts.fleetCameras} cameras × ${FLEET_FILES} × ${FLEET_MIB} MiB` : ''),
  );
  let t = performance.now();
  const main = mainSpec ? generateMain(pristineMain, mainSpec) : [];
  const scale = withScale ? generateScale(pristineScale, opts.scaleFiles) : null;
  const fleet = withFleet
    ? generateMain(pristineFleet, { cameras: opts.fleetCameras, files: FLEET_FILES, mib: FLEET_MIB })
    : null;
  const genSeconds = (performance.now() - t) / 1000;
  const mainTotals = totals(main);
  const generated = new Map(main.flatMap((c) => c.files.map((f) => [`${c.slot}/${f.rel}`, f.sha256])));
  log(`generated in ${genSeconds.toFixed(1)} s`);

  // Nothing can evict the page cache here, so everything starts equally warm instead. On a VM
  // the first write into guest memory never used before is far slower than any later one (a
  // fresh 2 GB copy was seen to take 14 s, then 1.3 s): two scratch copies, the most page cache
  // any run holds besides the pristine tree, make that cost nobody's.
  // (r) holds its share four times (camera, archive, dockd's objects and the baseline's in the
  // OSD's memory): when the pristine tree is only that share, it takes four copies.
  const warm = Array.from({ length: mainRuns.length || withScale ? 2 : 4 }, (_, i) =>
    path.join(runsDir, `warm${i + 1}`),
  );
  if (existsSync(pristine)) {
    log(
      `warm-up: read the pristine tree, copy it ${warm.length === 2 ? 'twice' : `${warm.length} times`} and delete the copies`,
    );
    await timed('sh', ['-c', 'find "$1" -type f -exec cat {} + > /dev/null', 'sh', pristine]);
    for (const w of warm) await timed('cp', ['-r', pristine, w]);
    for (const w of warm) rm(w);
    await syncDisks();
  }
  const warmupSeconds = (performance.now() - t) / 1000 - genSeconds;

  const statsFile = path.join(work, 'time.out');
  const runs = {};
  const checked = [];
  let dest;
  let dir;

  // The runs compared with each other are made in turn, round after round: on a shared VM one
  // run can be 40 % off the next for no reason of its own, and a ratio of two runs made back to
  // back in one round is steadier than one of two figures from anywhere in the run.
  const rounds = [];
  let floorKey = null;
  // dockd's hashes are held against sha256sum's when (c) ran, else against the generator's.
  let expected = generated;
  for (let n = 1; n <= opts.rounds; n++) {
    const round = {};
    const first = n === 1;
    const tag = opts.rounds > 1 ? `[round ${n}/${opts.rounds}] ` : '';
    if (want('b')) {
      log(`${tag}(b) cp -r`);
      dest = path.join(runsDir, 'b');
      round.b = await timed('cp', ['-r', pristineMain, dest], { statsFile });
      if (listFiles(dest).length !== mainTotals.files)
        problems.push(`(b) cp -r copied ${listFiles(dest).length} files, expected ${mainTotals.files}`);
      rm(dest);
      await syncDisks();
    }

    if (want('c')) {
      log(`${tag}(c) cp -r + sha256sum`);
      dest = path.join(runsDir, 'c');
      round.c = await timed(
        'sh',
        ['-c', 'cp -r "$1" "$2" && cd "$2" && exec find . -type f -exec sha256sum {} +', 'sh', pristineMain, dest],
        { capture: true, statsFile },
      );
      const sums = parseSums(round.c.stdout);
      if (sums.size !== mainTotals.files)
        problems.push(`(c) sha256sum listed ${sums.size} files, expected ${mainTotals.files}`);
      for (const [k, v] of generated)
        if (sums.get(k) !== v) problems.push(`(c) sha256sum of ${k} is ${sums.get(k)}, generated ${v}`);
      expected = sums;
      rm(dest);
      await syncDisks();
    }

    if (want('bsync')) {
      log(`${tag}(b+sync) cp -r; sync`);
      dest = path.join(runsDir, 'bsync');
      round.bsync = await timed('sh', ['-c', 'cp -r "$1" "$2" && exec sync', 'sh', pristineMain, dest], { statsFile });
      rm(dest);
      await syncDisks();
    }

    // Just before (a): what dockd's invariants cost with nothing around them, in the same cache state.
    if (want('f')) {
      log(`${tag}(f) the floor: copy + SHA-256, fsync, re-read in a worker and compare, per camera in parallel`);
      dest = path.join(runsDir, 'f');
      round.f = await timed(process.execPath, [path.join(ROOT, 'scripts', 'bench-floor.mjs'), pristineMain, dest], {
        capture: true,
        statsFile,
      });
      const sums = parseSums(round.f.stdout);
      if (sums.size !== mainTotals.files)
        problems.push(`(f) the floor listed ${sums.size} files, expected ${mainTotals.files}`);
      for (const [k, v] of generated)
        if (sums.get(k) !== v) problems.push(`(f) the floor hashed ${k} as ${sums.get(k)}, generated ${v}`);
      rm(dest);
      await syncDisks();
    }

    if (want('a')) {
      log(`${tag}(a) dockd`);
      dir = path.join(runsDir, 'a');
      prepareSim(path.join(dir, 'sim'), pristineMain, main);
      await syncDisks();
      round.a = await runDockd(dir, main, expected, problems);
      if (first) checked.push(checkedNote('(a)'));
    }

    // Just before (e): what encryption at rest costs on top of the invariants, with nothing around them.
    if (want('fe')) {
      log(
        `${tag}(fe) the floor, encrypted: (f) plus ChaCha20-Poly1305, and a re-read that checks every chunk's tag, one thread per camera`,
      );
      dest = path.join(runsDir, 'fe');
      floorKey ??= await floorIdentity(path.join(work, 'floor.key'));
      round.fe = await timed(
        process.execPath,
        [path.join(ROOT, 'scripts', 'bench-floor-encrypted.mjs'), pristineMain, dest, floorKey.recipient],
        { capture: true, statsFile },
      );
      const sums = parseSums(round.fe.stdout);
      if (sums.size !== mainTotals.files)
        problems.push(`(fe) the encrypted floor listed ${sums.size} files, expected ${mainTotals.files}`);
      for (const [k, v] of generated)
        if (sums.get(k) !== v) problems.push(`(fe) the encrypted floor hashed ${k} as ${sums.get(k)}, generated ${v}`);
      // One file decrypted with Debian's age (else dockd's code), so the floor is known to have done the real work.
      const cam = main[0];
      const rel = cam.files[0].rel;
      const sealed = path.join(dest, cam.slot, `${rel.replaceAll('/', '_')}.age`);
      const via = onPath('age') ? 'age' : 'dockd';
      for (const p of await checkDecrypts(sealed, path.join(pristineMain, cam.slot, rel), floorKey.file, via))
        problems.push(`(fe) ${p}`);
      if (first)
        checked.push(
          `(fe) listed every plaintext SHA-256 as generated, ${cam.slot}/${rel} decrypted by ${via === 'age' ? 'Debian age' : "dockd's dist/ code"} equal to its source`,
        );
      rm(dest);
      await syncDisks();
    }

    // Straight after (a) (and (fe)), so that they meet the same cache state.
    if (want('e')) round.e = await encryptedRun(pristineMain, main, expected, problems, first ? checked : [], tag);
    if (Object.keys(round).length) rounds.push(round);
  }
  for (const kind of ['b', 'c', 'bsync', 'f', 'a', 'fe', 'e']) {
    const made = rounds.map((r) => r[kind]).filter(Boolean);
    if (made.length) runs[kind] = medianRun(made);
  }
  runs.rounds = rounds;

  if (want('d')) {
    const linkBytesPerSec = opts.linkMBps * MB;
    const fileBytes = opts.mib * 1024 * 1024;
    const throttledFiles = Math.max(
      1,
      Math.min(opts.files, Math.floor((THROTTLED_MAX_SECONDS * linkBytesPerSec) / fileBytes)),
    );
    const throttled = main.map((c) => ({ ...c, files: c.files.slice(0, throttledFiles) }));
    log(`(d) dockd, ${opts.cameras} links × ${opts.linkMBps} MB/s, ${throttledFiles} recordings per camera`);
    dir = path.join(runsDir, 'd');
    const simDir = path.join(dir, 'sim');
    const link = { throughputBytesPerSec: linkBytesPerSec };
    prepareSim(simDir, pristineMain, throttled, link);
    await syncDisks();
    log('(d0) the same throttled cameras read through the simulated driver by a hash-only reader');
    try {
      runs.d0 = await readThroughSimDriver(simDir, throttled);
      runs.d0.files = totals(throttled).files;
    } catch (err) {
      // Information only: a change to the driver's module must not cost the dockd figures.
      log(`(d0) skipped: ${err instanceof Error ? err.message : String(err)}`);
    }
    // Undocked again: (d) docks them into a daemon that is already running, as at a real dock.
    for (const cam of throttled) rm(path.join(simDir, cam.slot, 'camera.json'));
    runs.d = await runDockd(dir, throttled, expected, problems, { dock: () => dockSim(simDir, throttled, link) });
    runs.d.linkBytesPerSec = linkBytesPerSec * opts.cameras;
    checked.push(checkedNote('(d)'));
  }

  if (scale) {
    log(`(s) dockd, one camera with ${opts.scaleFiles} small files`);
    dir = path.join(runsDir, 's');
    prepareSim(path.join(dir, 'sim'), pristineScale, scale);
    await syncDisks();
    const scaleExpected = new Map(scale[0].files.map((f) => [`${scale[0].slot}/${f.rel}`, f.sha256]));
    runs.s = await runDockd(dir, scale, scaleExpected, problems, {
      after: async (r) => {
        const { json, seconds } = await timeStatus(r.configPath);
        if (json?.queue?.verified !== opts.scaleFiles)
          problems.push(`(s) status --json says ${json?.queue?.verified} verified, expected ${opts.scaleFiles}`);
        r.statusSeconds = seconds;
      },
    });
    checked.push(checkedNote('(s)'));
  }

  if (fleet) runs.z = await fleetRun(fleet, pristineFleet, problems, checked);

  if (withRgw)
    ({ run: runs.r, skipped: rgwSkipped } = await replicationRun(pristineMain, main, expected, problems, checked));

  host.loadAverageAtEnd = os.loadavg()[0];
  report({
    opts,
    host,
    genSeconds,
    warmupSeconds,
    warmCopies: warm.length,
    runs,
    mainSpec,
    mainTotals,
    rgwSkipped,
    problems,
  });
  if (want('k')) await docksRun(problems, checked);
  return { problems, checked };
}

/**
 * (z): the DESIGN case for memory and status: every camera of a fleet docked at once, into a
 * daemon whose store already holds months of recordings (seeded through dockd's own code,
 * scripts/bench-seed.mjs). Timed until the new recordings are verified and deleted; then
 * `status --json` on that store.
 */
async function fleetRun(fleet, pristineFleet, problems, checked) {
  const dir = path.join(runsDir, 'z');
  log(
    `(z) dockd, ${fleet.length} cameras docked at once over a store seeded with ${opts.fleetHistory} earlier recordings`,
  );
  const t0 = performance.now();
  const seeded = await seedHistory(
    path.join(dir, 'data'),
    fleet.map((c) => c.serial),
    Math.ceil(opts.fleetHistory / fleet.length),
  );
  const seedSeconds = (performance.now() - t0) / 1000;
  prepareSim(path.join(dir, 'sim'), pristineFleet, fleet);
  await syncDisks();
  const expected = new Map(fleet.flatMap((c) => c.files.map((f) => [`${c.slot}/${f.rel}`, f.sha256])));
  const all = seeded.recordings + totals(fleet).files;
  const r = await runDockd(dir, fleet, expected, problems, {
    history: { sql: SEEDED, recordings: seeded.recordings },
    after: async (done) => {
      const { json, seconds } = await timeStatus(done.configPath);
      if (json?.queue?.verified !== all || json?.cameras?.length !== fleet.length) {
        problems.push(
          `(z) status --json says ${json?.queue?.verified} verified of ${json?.cameras?.length} cameras, expected ${all} of ${fleet.length}`,
        );
      }
      done.statusSeconds = seconds;
    },
  });
  checked.push(checkedNote('(z)'));
  return Object.assign(r, {
    history: seeded.recordings,
    historyEvents: seeded.events,
    seedSeconds,
    cameras: fleet.length,
  });
}

/** `dockd status --json` on a finished store, STATUS_RUNS times: the last answer and the times. */
async function timeStatus(configPath) {
  const runs = [];
  let json = null;
  for (let i = 0; i < STATUS_RUNS; i++) {
    const st = await timed(process.execPath, [BIN, '--config', configPath, 'status', '--json'], { capture: true });
    runs.push(st.seconds);
    json = JSON.parse(st.stdout);
  }
  return { json, seconds: { median: median(runs), runs } };
}

/** What checkDockdRun checked, said in full for the first dockd run only. */
function checkedNote(run) {
  if (checkedInFull) return `${run} likewise`;
  checkedInFull = true;
  return `${run} archived every recording once, SHA-256 equal to ${want('c') ? 'sha256sum / generation' : 'generation'}, archive re-hashed, cameras emptied`;
}

/**
 * A dockd run plus its checks; `after` runs on the finished store before it is removed. With
 * `history` ({ sql, recordings }), the store already held that many verified recordings,
 * matched by the SQL condition: they count toward done and are left out of the checks.
 */
async function runDockd(
  dir,
  cameras,
  expected,
  problems,
  { after, config, env, waitFor, dock, encrypted = false, extraTimeoutMs = 0, history = null } = {},
) {
  const { files, bytes } = totals(cameras);
  const r = await runDaemon({
    dir,
    expectedFiles: files + (history?.recordings ?? 0),
    timeoutMs: timeoutFor(bytes, files) + extraTimeoutMs,
    config,
    env,
    waitFor,
    dock,
  });
  r.files = files;
  r.bytes = bytes;
  r.window = custodyWindow(r.dataDir);
  const name = path.basename(dir);
  if (r.exit.code !== 0)
    problems.push(
      `(${name}) dockd did not stop cleanly on SIGTERM (${r.exit.code ?? r.exit.signal}): ${r.stderr.slice(-500)}`,
    );
  for (const p of await checkDockdRun(r, cameras, expected, { encrypted, history: history?.sql ?? null }))
    problems.push(`(${name}) ${p}`);
  await after?.(r);
  if (!opts.keep) rm(dir);
  await syncDisks();
  return r;
}

/**
 * (e): the main dataset again, archived encrypted to one freshly made custodian identity. The
 * identity file lives in the work folder, beside and never inside the run: dockd refuses to
 * start with a secret key in its data dir or config.
 */
async function encryptedRun(pristineMain, main, expected, problems, checked, tag = '') {
  log(`${tag}(e) dockd, encryption at rest (age, one X25519 recipient)`);
  const dir = path.join(runsDir, 'e');
  const identityFile = path.join(work, 'custodian.key');
  // A fresh custodian each round; keygen never overwrites a key.
  rm(identityFile);
  const recipient = keygen(identityFile, path.join(dir, 'data'));
  prepareSim(path.join(dir, 'sim'), pristineMain, main);
  await syncDisks();
  return runDockd(dir, main, expected, problems, {
    config: { encryption: { recipients: [recipient] } },
    encrypted: true,
    after: async (r) => {
      // Every camera's first recording with dockd's own code, the first one with Debian's age too.
      const archived = archivedFiles(r.dataDir, main);
      const picks = main.map((cam) => ({ cam, via: 'dockd' }));
      if (onPath('age')) picks.unshift({ cam: main[0], via: 'age' });
      r.decrypted = [];
      for (const { cam, via } of picks) {
        const rel = cam.files[0].rel;
        const file = archived.get(`${cam.slot}/${rel}`);
        if (!file) continue; // checkDockdRun has said so
        for (const p of await checkDecrypts(file, path.join(pristineMain, cam.slot, rel), identityFile, via))
          problems.push(`(e) ${p}`);
        r.decrypted.push(via);
      }
      checked.push(
        `${checkedNote('(e)')}, the archive only .age files, one per recording, of the size age makes; ` +
          `${r.decrypted.length} decrypted (${[...new Set(r.decrypted)].map((v) => (v === 'age' ? 'Debian age' : "dockd's dist/ code")).join(', ')}) equal to their source`,
      );
    },
  });
}

/**
 * (r): dockd offloads the first cameras of the main dataset and replicates them to a loopback
 * Ceph RGW; then the same files go to the same store through the same SDK in a plain loop, one
 * at a time as dockd's replicator sends them, as the baseline of its upload rate.
 */
async function replicationRun(pristineMain, main, expected, problems, checked) {
  const cameras = main.slice(0, opts.rgwCameras).map((c) => ({ ...c, files: c.files.slice(0, opts.rgwFiles) }));
  const { files, bytes } = totals(cameras);
  log('(r) starting a single-node Ceph RGW on 127.0.0.1 (scripts/rgw/start.sh)');
  const startedAt = performance.now();
  let rgw = null;
  let s3 = null;
  let rgwStartSeconds;
  try {
    rgw = await startRgw();
    rgwStartSeconds = (performance.now() - startedAt) / 1000;
    s3 = await s3Client(rgw);
    await createLockedBucket(s3, BUCKET);
  } catch (err) {
    s3?.destroy();
    rgw?.stop();
    // The store failed, not dockd: the other runs' figures still stand.
    log(`(r) ${err instanceof Error ? err.message : String(err)}`);
    return {
      skipped: `(r) skipped: the RGW did not come up (${String(err?.message ?? err).split('\n')[0]}); see above`,
    };
  }
  try {
    log(`(r) dockd, ${cameras.length} cameras × ${opts.rgwFiles} recordings, replicated to ${rgw.endpoint}`);
    const dir = path.join(runsDir, 'r');
    prepareSim(path.join(dir, 'sim'), pristineMain, cameras);
    await syncDisks();
    const r = await runDockd(dir, cameras, expected, problems, {
      config: {
        replication: {
          endpoint: rgw.endpoint,
          bucket: BUCKET,
          forcePathStyle: true,
          dockId: 'bench-dock',
          objectLock: { mode: 'COMPLIANCE', days: 1 },
          // A store that keeps failing should end the run soon with its error, not time it out.
          retry: { attempts: 5, baseDelayMs: 500, maxDelayMs: 5000 },
        },
      },
      env: { AWS_ACCESS_KEY_ID: rgw.accessKeyId, AWS_SECRET_ACCESS_KEY: rgw.secretAccessKey },
      waitFor: {
        label: 'replicated',
        sql: "SELECT count(DISTINCT recording) n FROM custody_events WHERE type = 'replication.verified'",
      },
      extraTimeoutMs: (bytes / (5 * MB)) * 1000,
      after: async (run) => {
        const generated = new Map(cameras.flatMap((c) => c.files.map((f) => [`${c.slot}/${f.rel}`, f.sha256])));
        for (const p of await checkReplication(s3, BUCKET, run.dataDir, cameras, generated)) problems.push(`(r) ${p}`);
      },
    });
    checked.push(
      `${checkedNote('(r)')}, one replication.verified per recording, each object HEADs back with its size, the generated SHA-256 and Object Lock`,
    );
    log(`(r0) the same ${files} files, one PutObject each, one at a time, to the same bucket`);
    await syncDisks();
    const uploads = cameras.flatMap((c) =>
      c.files.map((f) => ({ file: path.join(pristineMain, c.slot, f.rel), key: `${c.slot}/${f.rel}` })),
    );
    r.baseline = await uploadLoop(s3, BUCKET, 'baseline', uploads).catch((err) => {
      log(`(r0) failed: ${err?.name ?? ''} ${err?.message ?? String(err)}`);
      return null;
    });
    r.rgwStartSeconds = rgwStartSeconds;
    return { run: r };
  } finally {
    s3.destroy();
    rgw.stop();
  }
}

/** (k): the docks' state documents at city scale, by scripts/bench-fleet.mjs, which prints its own figures. */
async function docksRun(problems, checked) {
  if (rgwMissing().length) {
    process.stdout.write(
      `\n(k) skipped: ${rgwMissing().join(', ')} not installed; run scripts/rgw/install.sh as root\n`,
    );
    return;
  }
  const args = opts.quick ? ['--docks', '20', '--cameras', '10', '--runs', '1'] : [];
  const code = await new Promise((resolve) =>
    spawn(process.execPath, [path.join(ROOT, 'scripts', 'bench-fleet.mjs'), ...args], {
      stdio: ['ignore', 'inherit', 'inherit'],
    }).on('close', resolve),
  );
  if (code === 0) checked.push('(k) every dock listed with a verified custody head, every camera merged once');
  else problems.push(`(k) scripts/bench-fleet.mjs exited ${code}`);
}
