/**
 * Building blocks of scripts/bench.mjs: options, the generated dataset, timed child processes,
 * one real dockd run observed through its SQLite store, and the printed table.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import {
  accessSync,
  closeSync,
  constants,
  copyFileSync,
  createReadStream,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const BIN = path.join(ROOT, 'bin', 'dockd.js');
export const MB = 1e6;
const MIB = 1024 * 1024;
/**
 * scripts/rgw/start.sh gives the OSD a 2 GiB memstore, Ceph stops every write once an OSD is
 * 95 % full, and (r) stores its dataset twice (dockd's objects, then the baseline's) while RGW
 * frees deleted data only hours later: so the dataset must fit twice with room to spare.
 */
const RGW_DEFAULT_DATASET_BYTES = 512 * MIB;
const RGW_MAX_DATASET_BYTES = 768 * MIB;

export const RUNS = ['b', 'c', 'bsync', 'f', 'a', 'fe', 'e', 'd', 's', 'z', 'r', 'k'];

const USAGE = `Usage: node scripts/bench.mjs [options]

Offload speed and memory of dockd against cp -r and cp -r + sha256sum, with encryption at rest against
without, and replication against a plain upload loop to the same store, all measured in the same run.

  --cameras N        cameras in the main dataset            (default 4, --quick 2;  env DOCKD_BENCH_CAMERAS)
  --files N          recordings per camera                  (default 8, --quick 4;  env DOCKD_BENCH_FILES)
  --mb N             MiB per recording                      (default 64, --quick 8; env DOCKD_BENCH_MB)
  --scale-files N    small files on the scale camera, 0 = skip (default 20000, --quick 2000; env DOCKD_BENCH_SCALE_FILES)
  --fleet-cameras N  cameras docked at once in the fleet run (z), 0 = skip (default 20, --quick 5; env DOCKD_BENCH_FLEET_CAMERAS)
  --fleet-history N  recordings already in the store of (z)  (default 100000, --quick 10000; env DOCKD_BENCH_FLEET_HISTORY)
  --link-mbps N      per-camera link rate of the throttled run, MB/s (default 40; env DOCKD_BENCH_LINK_MBPS)
  --rgw-cameras N    first cameras of the main dataset replicated in (r) (default 2; env DOCKD_BENCH_RGW_CAMERAS)
  --rgw-files N      recordings of each of them in (r)      (default: as many as make 512 MiB, at most --files;
                     env DOCKD_BENCH_RGW_FILES); (r) may hold at most 768 MiB, since the RGW's store is 2 GiB of memory
                     (k) is scripts/bench-fleet.mjs: \`dockd fleet\` over 200 docks × 50 cameras (--quick 20 × 10)
  --only LIST        runs to make, comma-separated, of ${RUNS.join(',')} (default all; b+sync = bsync)
  --rounds N         times the runs that are compared with each other (b c bsync f a fe e) are made, in turn;
                     the table shows each one's median run, the targets the median of the rounds' ratios
                     (default 3, --quick 1; env DOCKD_BENCH_ROUNDS)
  --quick            a small smoke run
  --work DIR         where the work folder is made           (default os.tmpdir(); env DOCKD_BENCH_WORK)
  --out FILE         also write the results as JSON
  --keep             keep the work folder
  -h, --help         this text
`;

export function parseOptions(argv, env = process.env) {
  const { values } = parseArgs({
    args: argv,
    options: {
      cameras: { type: 'string' },
      files: { type: 'string' },
      mb: { type: 'string' },
      'scale-files': { type: 'string' },
      'link-mbps': { type: 'string' },
      'fleet-cameras': { type: 'string' },
      'fleet-history': { type: 'string' },
      'rgw-cameras': { type: 'string' },
      'rgw-files': { type: 'string' },
      only: { type: 'string' },
      rounds: { type: 'string' },
      quick: { type: 'boolean', default: false },
      work: { type: 'string' },
      out: { type: 'string' },
      keep: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const quick = values.quick;
  const int = (flag, envName, dflt, quickDflt, min) => {
    const raw = values[flag] ?? env[envName];
    if (raw === undefined || raw === '') return quick ? quickDflt : dflt;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min)
      throw new UsageError(`--${flag} must be a whole number of at least ${min}, got "${raw}"`);
    return n;
  };
  const only = new Set(
    (values.only ?? RUNS.join(','))
      .split(',')
      .map((r) =>
        r
          .trim()
          .toLowerCase()
          .replace(/^\((.*)\)$/, '$1')
          .replace('b+sync', 'bsync'),
      )
      .filter(Boolean),
  );
  const unknown = [...only].filter((r) => !RUNS.includes(r));
  if (unknown.length || only.size === 0)
    throw new UsageError(`--only takes runs of ${RUNS.join(',')}, got "${values.only}"`);
  const cameras = int('cameras', 'DOCKD_BENCH_CAMERAS', 4, 2, 1);
  const files = int('files', 'DOCKD_BENCH_FILES', 8, 4, 1);
  const mib = int('mb', 'DOCKD_BENCH_MB', 64, 8, 1);
  const rgwCameras = Math.min(cameras, int('rgw-cameras', 'DOCKD_BENCH_RGW_CAMERAS', 2, 2, 1));
  const fitting = Math.max(1, Math.floor(RGW_DEFAULT_DATASET_BYTES / (rgwCameras * mib * MIB)));
  const rgwFiles = Math.min(files, int('rgw-files', 'DOCKD_BENCH_RGW_FILES', fitting, fitting, 1));
  if (only.has('r') && rgwCameras * rgwFiles * mib * MIB > RGW_MAX_DATASET_BYTES) {
    throw new UsageError(
      `(r) would replicate ${rgwCameras * rgwFiles * mib} MiB; at most ${RGW_MAX_DATASET_BYTES / MIB} MiB fit, since the RGW's 2 GiB memstore holds it twice (dockd's objects and the baseline's): lower --rgw-cameras or --rgw-files`,
    );
  }
  return {
    quick,
    cameras,
    files,
    mib,
    scaleFiles: int('scale-files', 'DOCKD_BENCH_SCALE_FILES', 20_000, 2_000, 0),
    fleetCameras: int('fleet-cameras', 'DOCKD_BENCH_FLEET_CAMERAS', 20, 5, 0),
    fleetHistory: int('fleet-history', 'DOCKD_BENCH_FLEET_HISTORY', 100_000, 10_000, 0),
    linkMBps: int('link-mbps', 'DOCKD_BENCH_LINK_MBPS', 40, 40, 1),
    rounds: int('rounds', 'DOCKD_BENCH_ROUNDS', 3, 1, 1),
    rgwCameras,
    rgwFiles,
    only,
    work: values.work ?? env.DOCKD_BENCH_WORK ?? os.tmpdir(),
    out: values.out ?? null,
    keep: values.keep,
  };
}

export class UsageError extends Error {}

export function log(msg) {
  process.stderr.write(`bench: ${msg}\n`);
}

// ---------------------------------------------------------------------------------------------
// Dataset

/**
 * AES-128-CTR keystream: about as fast to produce as copying a block around, but every 4 KiB
 * block of every file is distinct and incompressible, so neither filesystem compression nor
 * block dedupe can make a copy cheaper than it is for real footage.
 */
function keystream(label) {
  const key = createHash('sha256').update(label).digest();
  return createCipheriv('aes-128-ctr', key.subarray(0, 16), key.subarray(16, 32));
}

const ZEROS = Buffer.alloc(MIB);

/** Writes `bytes` of keystream to `file` and returns its SHA-256. */
function writeFile(file, label, bytes) {
  mkdirSync(path.dirname(file), { recursive: true });
  const cipher = keystream(label);
  const hash = createHash('sha256');
  const fd = openSync(file, 'w');
  try {
    for (let left = bytes; left > 0; left -= MIB) {
      const block = cipher.update(left >= MIB ? ZEROS : ZEROS.subarray(0, left));
      hash.update(block);
      for (let off = 0; off < block.length;) off += writeSync(fd, block, off);
    }
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

export function slotName(i) {
  return `slot-${String(i + 1).padStart(2, '0')}`;
}

/**
 * The main dataset: `cameras` slot folders of `files` recordings of `mib` MiB each. Returns the
 * cameras with their files (relative path, bytes, SHA-256 at generation).
 */
export function generateMain(root, { cameras, files, mib }) {
  const out = [];
  for (let c = 0; c < cameras; c++) {
    const slot = slotName(c);
    const cam = { slot, serial: `BENCH-${String(c + 1).padStart(4, '0')}`, files: [] };
    for (let f = 0; f < files; f++) {
      const rel = `DCIM/100BENCH/REC${String(f + 1).padStart(4, '0')}.MP4`;
      const bytes = mib * MIB;
      const sha256 = writeFile(path.join(root, slot, rel), `main/${slot}/${rel}`, bytes);
      cam.files.push({ rel, bytes, sha256 });
    }
    out.push(cam);
  }
  return out;
}

/** One camera with `count` small files of 4–64 KiB, 1,000 to a folder as cameras number them. */
export function generateScale(root, count) {
  const cam = { slot: slotName(0), serial: 'BENCH-SCALE', files: [] };
  let seed = 0x9e3779b9;
  const rand = () => {
    // xorshift32: sizes must be the same on every run, so no Math.random.
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 2 ** 32;
  };
  for (let i = 0; i < count; i++) {
    const rel = `DCIM/${100 + Math.floor(i / 1000)}BENCH/CLIP${String(i % 1000).padStart(4, '0')}.MP4`;
    const bytes = 4096 + Math.floor(rand() * (60 * 1024 + 1));
    const sha256 = writeFile(path.join(root, cam.slot, rel), `scale/${rel}`, bytes);
    cam.files.push({ rel, bytes, sha256 });
  }
  return [cam];
}

export function totals(cameras) {
  let files = 0;
  let bytes = 0;
  for (const c of cameras) {
    files += c.files.length;
    for (const f of c.files) bytes += f.bytes;
  }
  return { files, bytes };
}

/**
 * Docks copies of the pristine cameras in a fresh sim dir the way the contract says a writer
 * must: the camera's files first, camera.json last by rename.
 */
export function prepareSim(simDir, pristineRoot, cameras, spec = {}, { dock = true } = {}) {
  mkdirSync(simDir, { recursive: true });
  for (const cam of cameras) {
    const dir = path.join(simDir, cam.slot);
    for (const f of cam.files) {
      const dest = path.join(dir, f.rel);
      mkdirSync(path.dirname(dest), { recursive: true });
      copyFileSync(path.join(pristineRoot, cam.slot, f.rel), dest);
    }
  }
  if (dock) dockSim(simDir, cameras, spec);
}

/** Docks the cameras whose files prepareSim laid out: each one's camera.json, by rename. */
export function dockSim(simDir, cameras, spec = {}) {
  for (const cam of cameras) {
    const dir = path.join(simDir, cam.slot);
    const tmp = path.join(dir, '.camera.json.tmp');
    writeFileSync(tmp, JSON.stringify({ serial: cam.serial, model: 'SimCam 2', firmware: '4.1.7', ...spec }));
    renameSync(tmp, path.join(dir, 'camera.json'));
  }
}

export function listFiles(dir) {
  const out = [];
  const walk = (d) => {
    for (const ent of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, ent.name);
      if (ent.isDirectory()) walk(p);
      else if (ent.isFile()) out.push(p);
    }
  };
  if (existsSync(dir)) walk(dir);
  return out;
}

/** Whether `cmd` is an executable somewhere on PATH. */
export function onPath(cmd) {
  return (process.env.PATH ?? '')
    .split(path.delimiter)
    .filter(Boolean)
    .some((d) => {
      try {
        accessSync(path.join(d, cmd), constants.X_OK);
        return true;
      } catch {
        return false;
      }
    });
}

/** Where the store says each recording of `cameras` is archived, by `slot/path on camera`. */
export function archivedFiles(dataDir, cameras) {
  const bySerial = new Map(cameras.map((c) => [c.serial, c.slot]));
  const db = new Database(path.join(dataDir, 'dockd.db'), { readonly: true, fileMustExist: true });
  try {
    return new Map(
      db
        .prepare('SELECT camera, source_path, archive_path FROM recordings')
        .all()
        .map((r) => [`${bySerial.get(r.camera)}/${r.source_path}`, r.archive_path]),
    );
  } finally {
    db.close();
  }
}

export async function hashFile(file) {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: MIB })) hash.update(chunk);
  return hash.digest('hex');
}

// ---------------------------------------------------------------------------------------------
// Processes

const GNU_TIME = existsSync('/usr/bin/time') ? '/usr/bin/time' : null;

/**
 * Runs a command to completion and times it from spawn to exit. When GNU time is there it
 * wraps the command only to learn the peak RSS and CPU time of the process tree; its own cost
 * is one exec.
 */
export async function timed(cmd, args, { cwd = ROOT, capture = false, statsFile = null } = {}) {
  const wrap = GNU_TIME && statsFile;
  const file = wrap ? GNU_TIME : cmd;
  const argv = wrap ? ['-o', statsFile, '-f', '%M %U %S', cmd, ...args] : args;
  const started = performance.now();
  const child = spawn(file, argv, { cwd, stdio: ['ignore', capture ? 'pipe' : 'ignore', 'pipe'] });
  const chunks = [];
  let stderr = '';
  child.stdout?.on('data', (b) => chunks.push(b));
  child.stderr.setEncoding('utf8').on('data', (s) => (stderr += s));
  const code = await new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (c) => resolve(c));
  });
  const seconds = (performance.now() - started) / 1000;
  if (code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${code}: ${stderr.trim()}`);
  let peakRssBytes = null;
  let cpuSeconds = null;
  if (wrap) {
    const [kb, user, sys] = readFileSync(statsFile, 'utf8').trim().split('\n').pop().split(' ').map(Number);
    if (Number.isFinite(kb)) peakRssBytes = kb * 1024;
    if (Number.isFinite(user) && Number.isFinite(sys)) cpuSeconds = user + sys;
  }
  return { seconds, stdout: Buffer.concat(chunks).toString('utf8'), peakRssBytes, cpuSeconds };
}

/** Parses `sha256sum` output relative to the folder it ran in. */
export function parseSums(text) {
  const sums = new Map();
  for (const line of text.split('\n')) {
    const m = /^([0-9a-f]{64}) [ *](.*)$/.exec(line);
    if (m) sums.set(m[2].replace(/^\.\//, ''), m[1]);
  }
  return sums;
}

function vmHwmBytes(pid) {
  try {
    const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

let clockTicks = null;

/** User + system CPU seconds of a live process, all its threads (libuv's pool included). */
function cpuSecondsOf(pid) {
  try {
    clockTicks ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    // The command name in field 2 may hold spaces; fields are counted after its closing paren.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / clockTicks;
  } catch {
    return null;
  }
}

/** Keeps the last lines a process wrote, for an error message, without holding all of them. */
class Tail {
  constructor(max = 40) {
    this.max = max;
    this.lines = [];
    this.partial = '';
    this.count = 0;
  }

  push(s) {
    const parts = (this.partial + s).split('\n');
    this.partial = parts.pop();
    for (const l of parts) {
      if (!l) continue;
      this.count++;
      this.lines.push(l);
      if (this.lines.length > this.max) this.lines.shift();
    }
  }

  text() {
    return [...this.lines, this.partial].filter(Boolean).join('\n');
  }
}

export let activeDaemon = null;

/**
 * One timed dockd run: from spawn until every recording is verified and deleted from its camera,
 * read from the store by a read-only connection every 50 ms (a CLI call costs ~150 ms of its own).
 * `config` is merged over the bench's config, `env` over this process's. With `waitFor` (SQL
 * giving `n`) the run goes on until that reaches `expectedFiles` too, timed as `waitedSeconds`.
 * The peak RSS is taken just before SIGTERM.
 */
/** How long a daemon runs idle, after it recorded its start, before `dock` docks the cameras. */
const IDLE_BEFORE_DOCK_MS = 1000;

export async function runDockd({ dir, expectedFiles, timeoutMs, config = {}, env = {}, waitFor = null, dock = null }) {
  const dataDir = path.join(dir, 'data');
  const simDir = path.join(dir, 'sim');
  const configPath = path.join(dir, 'dockd.config.json');
  writeFileSync(
    configPath,
    JSON.stringify(
      {
        dataDir,
        sim: { dir: simDir },
        usb: { enabled: false },
        ingest: { minFreeBytes: 0 },
        log: { level: 'warn' },
        ...config,
      },
      null,
      2,
    ),
  );
  const dbFile = path.join(dataDir, 'dockd.db');
  const stages = [
    {
      label: 'verified and deleted',
      sql: "SELECT count(*) n FROM recordings WHERE status = 'verified' AND deleted_from_camera = 1",
    },
    ...(waitFor ? [waitFor] : []),
  ];
  const startedWall = Date.now();
  const started = performance.now();
  const child = spawn(process.execPath, [BIN, '--config', configPath, 'start'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  activeDaemon = child;
  const out = new Tail();
  const err = new Tail();
  child.stdout.setEncoding('utf8').on('data', (s) => out.push(s));
  child.stderr.setEncoding('utf8').on('data', (s) => err.push(s));
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const describe = () => `\n--- dockd stdout (last lines) ---\n${out.text()}\n--- dockd stderr ---\n${err.text()}`;

  let db = null;
  let done = null;
  const stageSeconds = [];
  let polls = 0;
  // With `dock`, the cameras arrive at a daemon that is already up, as they do at a real dock.
  let dockedAt = dock ? null : started;
  let dockedWall = dock ? null : startedWall;
  let startedAt = null;
  try {
    const deadline = started + timeoutMs;
    for (;;) {
      const stage = stages[stageSeconds.length];
      if (child.exitCode !== null || child.signalCode !== null)
        throw new Error(`dockd exited early (${child.exitCode ?? child.signalCode})${describe()}`);
      if (performance.now() > deadline)
        throw new Error(
          `dockd did not finish within ${Math.round(timeoutMs / 1000)} s (${done ?? 0} of ${expectedFiles} ${stage.label})${describe()}`,
        );
      try {
        db ??= existsSync(dbFile) ? new Database(dbFile, { readonly: true, fileMustExist: true }) : null;
        if (db && dockedAt === null) {
          if (
            startedAt === null &&
            db.prepare("SELECT count(*) n FROM custody_events WHERE type = 'daemon.started'").get().n > 0
          )
            startedAt = performance.now();
          if (startedAt !== null && performance.now() - startedAt >= IDLE_BEFORE_DOCK_MS) {
            dock();
            dockedAt = performance.now();
            dockedWall = Date.now();
          }
        } else if (db) {
          done = db.prepare(stage.sql).get().n;
          if (done === expectedFiles) {
            stageSeconds.push((performance.now() - dockedAt) / 1000);
            if (stageSeconds.length === stages.length) break;
            continue;
          }
          if (++polls % 20 === 0) {
            const failed = db
              .prepare("SELECT source_path, last_error FROM recordings WHERE status = 'failed' LIMIT 3")
              .all();
            if (failed.length)
              throw new FatalRunError(
                `dockd gave up on recordings: ${failed.map((f) => `${f.source_path}: ${f.last_error}`).join('; ')}`,
              );
            const jobs = db.prepare("SELECT kind, last_error FROM jobs WHERE state = 'failed' LIMIT 3").all();
            if (jobs.length)
              throw new FatalRunError(
                `dockd gave up on jobs: ${jobs.map((j) => `${j.kind}: ${j.last_error}`).join('; ')}`,
              );
          }
        }
      } catch (e) {
        if (e instanceof FatalRunError) throw e;
        // Store not created or migrated yet: reopen and look again.
        db?.close();
        db = null;
      }
      await sleep(50);
    }
  } catch (e) {
    child.kill('SIGKILL');
    await exited;
    activeDaemon = null;
    db?.close();
    throw e;
  }
  db?.close();
  const peakRssBytes = vmHwmBytes(child.pid);
  const cpuSeconds = cpuSecondsOf(child.pid);
  child.kill('SIGTERM');
  const stop = await Promise.race([exited, sleep(15_000).then(() => null)]);
  if (!stop) {
    child.kill('SIGKILL');
    await exited;
  }
  activeDaemon = null;
  // At log level warn every stdout line is a warning or worse.
  return {
    // From spawn, or with `dock` from the moment the cameras were docked.
    seconds: stageSeconds[0],
    waitedSeconds: stageSeconds[1] ?? null,
    docked: dock !== null,
    startedWall,
    dockedWall,
    peakRssBytes,
    cpuSeconds,
    exit: stop ?? { code: null, signal: 'SIGKILL' },
    logLines: out.count,
    logSample: out.lines.slice(0, 3),
    stderr: err.text(),
    dataDir,
    simDir,
    configPath,
  };
}

class FatalRunError extends Error {}

/** Times from the store's custody log: when the first copy started, the last deletion ended, the last upload was verified. */
export function custodyWindow(dataDir) {
  const db = new Database(path.join(dataDir, 'dockd.db'), { readonly: true, fileMustExist: true });
  try {
    const t = (sql) => {
      const v = db.prepare(sql).get().t;
      return v ? Date.parse(v) : null;
    };
    return {
      daemonStarted: t("SELECT min(at) t FROM custody_events WHERE type = 'daemon.started'"),
      firstDocked: t("SELECT min(at) t FROM custody_events WHERE type = 'camera.docked'"),
      firstStarted: t("SELECT min(at) t FROM custody_events WHERE type = 'offload.started'"),
      lastVerified: t("SELECT max(at) t FROM custody_events WHERE type = 'offload.verified'"),
      lastDeleted: t("SELECT max(at) t FROM custody_events WHERE type = 'camera.file_deleted'"),
      firstVerified: t("SELECT min(at) t FROM custody_events WHERE type = 'offload.verified'"),
      lastReplicated: t("SELECT max(at) t FROM custody_events WHERE type = 'replication.verified'"),
    };
  } finally {
    db.close();
  }
}

/**
 * Checks a finished dockd run against the expected SHA-256 of every recording: one verified,
 * deleted row each with the right hash and one offload.verified event; exactly one archive file
 * each, re-hashed here and equal to what the store says it holds; nothing but camera.json left
 * on the cameras. With `encrypted`, each archive file must be an age file (`.age`, its own hash,
 * the size age gives the plaintext for one recipient); without, the plaintext itself.
 * Returns the problems found.
 */
/**
 * `history`, an SQL condition on recordings, marks rows that were in the store before the run
 * (a seeded store's): they are left out, and their archive files are not expected.
 */
export async function checkDockdRun(run, cameras, expected, { encrypted = false, history = null } = {}) {
  const problems = [];
  const bySerial = new Map(cameras.map((c) => [c.serial, c.slot]));
  const db = new Database(path.join(run.dataDir, 'dockd.db'), { readonly: true, fileMustExist: true });
  let rows;
  let verifiedEvents;
  try {
    rows = db
      .prepare(
        `SELECT id, camera, source_path, status, deleted_from_camera, sha256, archive_path, bytes,
                coalesce(stored_sha256, sha256) stored_sha256, coalesce(stored_bytes, bytes) stored_bytes FROM recordings
         ${history ? `WHERE NOT (${history})` : ''}`,
      )
      .all();
    verifiedEvents = new Map(
      db
        .prepare("SELECT recording, count(*) n FROM custody_events WHERE type = 'offload.verified' GROUP BY recording")
        .all()
        .map((e) => [e.recording, e.n]),
    );
  } finally {
    db.close();
  }
  const encryptedSize = encrypted ? (await ageLib()).encryptedSize : null;
  const want = totals(cameras).files;
  if (rows.length !== want) problems.push(`store has ${rows.length} recordings, expected ${want}`);
  for (const r of rows) {
    const key = `${bySerial.get(r.camera)}/${r.source_path}`;
    const exp = expected.get(key);
    if (!exp) problems.push(`unexpected recording ${r.camera}:${r.source_path}`);
    else if (r.sha256 !== exp) problems.push(`${key}: dockd SHA-256 ${r.sha256} differs from ${exp}`);
    if (r.status !== 'verified' || r.deleted_from_camera !== 1)
      problems.push(`${key}: status ${r.status}, deleted ${r.deleted_from_camera}`);
    if (verifiedEvents.get(r.id) !== 1)
      problems.push(`${key}: ${verifiedEvents.get(r.id) ?? 0} offload.verified events, expected 1`);
    if (encrypted) {
      if (!r.archive_path?.endsWith('.age')) problems.push(`${key}: archived as ${r.archive_path}, not as a .age file`);
      if (r.stored_sha256 === r.sha256)
        problems.push(`${key}: the archive's SHA-256 is the plaintext's: not encrypted`);
      if (r.stored_bytes !== encryptedSize(r.bytes, 1))
        problems.push(
          `${key}: archive holds ${r.stored_bytes} bytes; age makes ${encryptedSize(r.bytes, 1)} of ${r.bytes}`,
        );
    } else if (r.stored_sha256 !== r.sha256 || r.stored_bytes !== r.bytes) {
      problems.push(`${key}: archive holds ${r.stored_bytes} bytes with SHA-256 ${r.stored_sha256}, not the plaintext`);
    }
  }
  const files = listFiles(path.join(run.dataDir, 'archive'));
  if (files.length !== want) problems.push(`archive holds ${files.length} files, expected ${want}`);
  const byArchive = new Map(rows.map((r) => [r.archive_path, r]));
  for (const f of files) {
    const r = byArchive.get(f);
    if (!r) {
      problems.push(`archive file ${f} belongs to no recording`);
      continue;
    }
    const size = statSync(f).size;
    const sha = await hashFile(f);
    if (size !== r.stored_bytes || sha !== r.stored_sha256)
      problems.push(
        `archive file ${f}: ${size} bytes, SHA-256 ${sha}; store says ${r.stored_bytes}, ${r.stored_sha256}`,
      );
  }
  const left = listFiles(run.simDir).filter((f) => path.basename(f) !== 'camera.json');
  if (left.length) problems.push(`${left.length} recordings still on the simulated cameras, e.g. ${left[0]}`);
  return problems;
}

// dockd's own age code, for the size of an encrypted archive file.
let ageModule = null;
export const ageLib = async () =>
  (ageModule ??= await import(pathToFileURL(path.join(ROOT, 'dist', 'src', 'crypto', 'age.js')).href));

/**
 * What the simulated links deliver to a reader that only hashes: the driver dockd loads, one
 * recording at a time per camera as dockd's perCamera 1, every camera at once. It tells the
 * simulator's own ceiling apart from dockd's share of it.
 */
export async function readThroughSimDriver(simDir, cameras) {
  const { simulatedDriver } = await import(
    pathToFileURL(path.join(ROOT, 'dist', 'drivers', 'simulated', 'index.js')).href
  );
  const quiet = { debug() {}, info() {}, warn() {}, error() {}, child: () => quiet };
  let bytes = 0;
  const started = performance.now();
  await Promise.all(
    cameras.map(async (cam) => {
      const session = await simulatedDriver.open(
        { bus: 'sim', key: cam.slot, slot: cam.slot, path: path.join(simDir, cam.slot) },
        quiet,
      );
      try {
        for (const f of cam.files) {
          const hash = createHash('sha256');
          for await (const chunk of await session.read(f.rel, 0)) {
            hash.update(chunk);
            bytes += chunk.length;
          }
          if (hash.digest('hex') !== f.sha256) throw new Error(`simulated driver read ${cam.slot}/${f.rel} wrong`);
        }
      } finally {
        await session.close();
      }
    }),
  );
  return { seconds: (performance.now() - started) / 1000, bytes };
}

export function rm(p) {
  rmSync(p, { recursive: true, force: true });
}

// ---------------------------------------------------------------------------------------------
// Machine and output

export function fsTypeOf(dir) {
  try {
    let best = { mount: '', type: 'unknown' };
    for (const line of readFileSync('/proc/mounts', 'utf8').split('\n')) {
      const [, mount, type] = line.split(' ');
      if (!mount) continue;
      const m = mount.replace(/\\040/g, ' ');
      if ((dir === m || dir.startsWith(m.endsWith('/') ? m : `${m}/`)) && m.length >= best.mount.length)
        best = { mount: m, type };
    }
    return best.type;
  } catch {
    return 'unknown';
  }
}

/** The commit measured, and whether the working tree differed from it (dist/ is built from it). */
export function revision() {
  const git = (...args) =>
    execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  try {
    const dirty = git('status', '--porcelain', '--untracked-files=no', '--', 'src', 'drivers', 'bin').length > 0;
    return `${git('rev-parse', '--short', 'HEAD')}${dirty ? ' + uncommitted changes' : ''}`;
  } catch {
    return 'unknown';
  }
}

export function machine(workDir) {
  const cpus = os.cpus();
  return {
    dockd: revision(),
    cores: typeof os.availableParallelism === 'function' ? os.availableParallelism() : cpus.length,
    cpu: cpus[0]?.model?.trim() ?? 'unknown',
    memoryGB: Math.round(os.totalmem() / 1e9),
    node: process.version,
    os: `${os.type()} ${os.release()}`,
    fs: fsTypeOf(workDir),
  };
}

/** The run of median duration (the faster of the middle two for an even count), so its other figures are of one real run. */
export function medianRun(list) {
  if (list.length === 0) return undefined;
  const sorted = [...list].sort((x, y) => x.seconds - y.seconds);
  return sorted[Math.floor((sorted.length - 1) / 2)];
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function fmt(n, digits = 2) {
  return n === null || n === undefined || Number.isNaN(n) ? '–' : n.toFixed(digits);
}

/** Renders rows of cells as an aligned text table; numbers right-aligned. */
export function renderTable(header, rows) {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) =>
    cells.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}
