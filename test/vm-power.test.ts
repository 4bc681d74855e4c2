/**
 * Power cuts on a real kernel. The guest keeps dockd's data dir on an ext4 file system of its own
 * (a virtio disk image, not tmpfs), a mass-storage camera with recordings of mixed sizes is
 * docked, and QEMU is killed with SIGKILL, the guest's page cache with it, right after an event
 * chosen from a printed seed appears in the daemon's log on the console. The next boot runs on the
 * same images until the camera is empty; then the guest reports what the database and the archive
 * folder hold, and the host judges it against the footage it put on the camera.
 *
 * One boot serves two rounds: it recovers the camera cut in the previous boot, checks, and docks
 * the next camera to be cut. See docs/power-cuts.md.
 *
 *   DOCKD_POWER_CUTS=50      more cuts than the default 10 (a soak)
 *   DOCKD_POWER_SEED=1234    replay the cuts of a printed seed
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, sha256 } from './support/harness.js';
import { listFatImage, makeFatImage, prepareGuest, startVm, type Vm } from './support/qemu.js';
import { prng } from './support/prng.js';

const MB = 1024 * 1024;
const CUTS = Number(process.env.DOCKD_POWER_CUTS ?? 10);
const SEED = Number(process.env.DOCKD_POWER_SEED ?? Math.floor(Math.random() * 2 ** 31));
const DATA = '/var/lib/dockd/data';
const CONFIG = '/data/dockd.config.json';
const DOCKD = `node /app/bin/dockd.js --config ${CONFIG} --data-dir ${DATA}`;
/**
 * Well past the copy's first durable point (every 64 MiB): a cut 16 MiB or more after it leaves
 * the fsync of the first 64 MiB time to finish, so the next boot resumes from a synced byte.
 */
const BIG = 96 * MB;

/**
 * The guest's command: mounts the data disk (journal replay happens here), starts the daemon, and
 * then does what the host names in /data/next (written by rename): `check NAME SEQ:HASH|- full|quick`
 * or `quit`. Its own lines start with "POWER ".
 */
const GUEST = `#!/bin/sh
for m in virtio_blk crc32c_generic ext4; do modprobe $m || echo "POWER modprobe $m failed"; done
mkdir -p /var/lib/dockd
mount -t ext4 /dev/vda /var/lib/dockd || { echo "POWER mount failed"; exit 1; }
echo "POWER mounted"
cd /run
${DOCKD} start &
pid=$!
echo "POWER started $pid"
while :; do
  while [ ! -e /data/next ]; do sleep 0.1; done
  set -- $(cat /data/next)
  rm -f /data/next
  case "$1" in
    check)
      node /app/test/support/power-check.mjs ${DATA} >/data/$2.check.json 2>/data/$2.check.err
      echo "POWER checked $2 $?"
      head=; [ "$3" = - ] || head="--head $3"
      quick=; [ "$4" = quick ] && quick=--quick
      ${DOCKD} verify --json $quick $head >/data/$2.verify.json 2>/data/$2.verify.err
      echo "POWER verified $2 $?"
      ;;
    quit)
      kill -TERM $pid
      wait $pid
      echo "POWER stopped $?"
      exit 0
      ;;
  esac
done
`;

type Moment = 'first start' | 'offload.started' | 'offload.verified' | 'camera.file_deleted' | 'custody.checkpoint';
const EVENT_MOMENTS: Moment[] = ['offload.started', 'offload.verified', 'camera.file_deleted', 'custody.checkpoint'];

interface Footage {
  path: string;
  data: Buffer;
  sha256: string;
}

interface Round {
  n: number;
  moment: Moment;
  serial: string;
  image: string;
  files: Footage[];
  /** Which occurrence of the event (1-based) the cut follows, and how long after it. */
  occurrence: number;
  delayMs: number;
  /** offload.started: the recording whose copy is cut, and for the big one how far into it. */
  target?: Footage;
  readPastMb?: number;
  /** Filled in as the round goes. */
  cutAt?: string;
  inFlight?: string;
  result?: string;
}

interface LogLine {
  level: number;
  time: number;
  pid: number;
  event?: string;
  msg?: string;
  camera?: string;
  [k: string]: unknown;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** The daemon's JSON lines on the console from offset `from` on, of the process `pid` if given. */
function daemonLines(vm: Vm, from: number, pid?: number): LogLine[] {
  const text = vm.serial.slice(from);
  const end = text.lastIndexOf('\n');
  const out: LogLine[] = [];
  for (const line of text.slice(0, end + 1).split('\n')) {
    if (!line.startsWith('[guest] {')) continue;
    try {
      const l = JSON.parse(line.slice('[guest] '.length)) as LogLine;
      if (typeof l.level === 'number' && (pid === undefined || l.pid === pid)) out.push(l);
    } catch {
      // a kernel message broke the line: it is not one the cut is chosen from
    }
  }
  return out;
}

async function waitFor<T>(what: string, fn: () => T | undefined, vm: Vm, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (vm.exited)
      throw new Error(`QEMU exited while waiting for ${what}\n${vm.serial.split('\n').slice(-30).join('\n')}`);
    if (Date.now() > deadline)
      throw new Error(`no ${what} within ${timeoutMs} ms\n${vm.serial.split('\n').slice(-30).join('\n')}`);
    await sleep(10);
  }
}

const baseName = (p: string) => p.split('/').pop()!;

/** What the daemon had begun and not finished when the power went, from its own log. */
function inFlight(lines: LogLine[], round: Round): string {
  const names = new Map<string, string>();
  const copying = new Set<string>();
  const undeleted = new Set<string>();
  for (const l of lines) {
    const rec = typeof l.recording === 'string' ? l.recording : undefined;
    if (l.event === 'offload.started' && rec) {
      names.set(rec, baseName(String(l.msg).replace(/^copying /, '')));
      copying.add(rec);
    }
    if (l.event === 'offload.verified' && rec) {
      copying.delete(rec);
      undeleted.add(rec);
    }
    if (l.event === 'camera.file_deleted' && rec) undeleted.delete(rec);
  }
  const parts: string[] = [];
  if (copying.size) parts.push(`copying ${[...copying].map((r) => names.get(r)).join(', ')}`);
  if (undeleted.size)
    parts.push(`verified, not deleted: ${[...undeleted].map((r) => names.get(r) ?? r.slice(0, 8)).join(', ')}`);
  const last = lines.filter((l) => l.event).at(-1)?.event;
  if (!parts.length)
    parts.push(
      round.moment === 'first start'
        ? `start-up: data dir, database and key just made; last line ${last ?? 'none'}`
        : 'nothing',
    );
  return parts.join('; ');
}

interface CheckJson {
  integrity: string;
  recordings: Array<{
    id: string;
    camera: string;
    sourcePath: string;
    status: string;
    sha256: string | null;
    archivePath: string | null;
    bytes: number;
    deletedFromCamera: number;
  }>;
  verifiedEvents: Array<{ recording: string; n: number }>;
  keyReplaced: number;
  archive: Array<{ path: string; bytes: number }>;
  staging: string[];
  keys: Array<{ path: string; bytes: number }>;
}

let work: string;
let disk: string;
const rounds: Round[] = [];

beforeAll(async () => {
  await prepareGuest();
  if (!existsSync(path.join(ROOT, 'dist', 'src', 'cli', 'main.js')))
    throw new Error('the guest runs the built daemon: build first (npm run test:vm does)');
  work = mkdtempSync(path.join(os.tmpdir(), 'dockd-vm-power-'));
  disk = path.join(work, 'data.ext4');
  // Sparse: the file system takes what the archive holds, a few hundred MB at most.
  execFileSync('truncate', ['-s', '1G', disk]);
  execFileSync('mkfs.ext4', ['-F', '-q', '-L', 'dockd', disk]);
  writeFileSync(
    path.join(work, 'dockd.config.json'),
    JSON.stringify({
      usb: { enabled: true, pollIntervalMs: 1000, allow: ['46f4:0001'], massStorage: { mount: true } },
      ingest: { minFreeBytes: 16 * MB, retry: { attempts: 3, baseDelayMs: 200, maxDelayMs: 1000 } },
      daemon: { heartbeatIntervalMs: 300 },
      // Checkpoints every few events, so that cuts land next to them.
      custody: { checkpointEvery: 3 },
      log: { level: 'info' },
    }),
  );
  console.log(`power cuts: seed ${SEED} (DOCKD_POWER_SEED=${SEED} replays it), ${CUTS} cuts`);
}, 600_000);

afterAll(() => {
  if (work && process.env.DOCKD_VM_KEEP === '1') console.log(`kept ${work}`);
  else if (work) rmSync(work, { recursive: true, force: true });
  const rows = rounds.map(
    (r) => `| ${r.n} | ${r.cutAt ?? r.moment} | ${r.inFlight ?? ''} | ${r.result ?? 'not checked'} |`,
  );
  console.log(
    `power cuts (seed ${SEED}):\n| # | cut | in flight | after the next boot |\n| --- | --- | --- | --- |\n${rows.join('\n')}`,
  );
});

function planRounds(): void {
  const random = prng(SEED);
  const pick = (n: number) => Math.floor(random() * n);
  let bigNext = true;
  const offset = pick(EVENT_MOMENTS.length);
  for (let n = 1; n <= CUTS; n++) {
    // The very first start comes once per data disk; the event moments take turns after it.
    const moment: Moment = n === 1 ? 'first start' : EVENT_MOMENTS[(n - 2 + offset) % EVENT_MOMENTS.length]!;
    const sizes = [256 * 1024 + pick(4096), 1.5 * MB + pick(65536), 4 * MB + pick(65536), 9 * MB + pick(65536)];
    // The copy cut mid-way alternates between the big recording (cut past its first durable
    // point, so the next boot resumes from a synced byte) and a small one.
    const big = moment === 'offload.started' && bigNext;
    if (moment === 'offload.started') bigNext = !bigNext;
    if (big) sizes.push(BIG + pick(65536));
    const serial = `PWR-${String(n).padStart(4, '0')}`;
    const files = sizes.map((bytes, i) => {
      const data = randomBytes(bytes);
      return {
        path: `DCIM/100BODY/R${String(n).padStart(2, '0')}_${String(i + 1).padStart(4, '0')}.MP4`,
        data,
        sha256: sha256(data),
      };
    });
    const round: Round = {
      n,
      moment,
      serial,
      image: path.join(work, `cam-${n}.img`),
      files,
      occurrence: moment === 'custody.checkpoint' ? 1 + pick(2) : 1 + pick(files.length - 1),
      delayMs: moment === 'first start' ? pick(1500) : pick(250),
    };
    if (moment === 'offload.started') {
      round.occurrence = 1;
      round.target = big ? files.at(-1)! : files[pick(files.length)]!;
      if (big) round.readPastMb = 80 + pick(12);
    }
    rounds.push(round);
  }
}

/** The cut itself: waits for the round's moment in the daemon's log, then SIGKILLs QEMU. */
async function cut(vm: Vm, round: Round, daemonPid: number, from: number, startedAt: number): Promise<void> {
  const lines = () => daemonLines(vm, from, daemonPid);
  if (round.moment === 'first start') {
    // daemon.started comes once the data dir, the database and the key are made: written without
    // an fsync, they would still be in the page cache for seconds (ext4 commits every 5 s).
    await waitFor('daemon.started', () => lines().find((l) => l.event === 'daemon.started'), vm, 120_000);
    await sleep(round.delayMs);
    round.cutAt = `first start: daemon.started +${round.delayMs} ms (${Date.now() - startedAt} ms after \`dockd start\` ran)`;
  } else {
    const mine = (l: LogLine) => l.camera === round.serial;
    let match: (l: LogLine) => boolean;
    if (round.moment === 'offload.started')
      match = (l) => l.event === 'offload.started' && mine(l) && l.msg === `copying ${round.target!.path}`;
    else if (round.moment === 'custody.checkpoint') match = (l) => l.event === 'custody.checkpoint';
    else match = (l) => l.event === round.moment && mine(l);
    // Checkpoints come from every event: count only those after this camera docked.
    const docked = await waitFor(
      `camera ${round.serial} docked`,
      () => lines().findIndex((l) => l.event === 'camera.docked' && mine(l)) + 1 || undefined,
      vm,
      60_000,
    );
    const hit = await waitFor(
      `${round.moment} #${round.occurrence}`,
      () => {
        const seen = lines().slice(docked).filter(match);
        if (seen.length >= round.occurrence) return seen[round.occurrence - 1];
        // A round whose moment never comes (the camera finished first) is cut when it clears.
        return lines()
          .slice(docked)
          .find((l) => l.event === 'camera.cleared' && mine(l));
      },
      vm,
      180_000,
    );
    let at =
      hit.event === 'camera.cleared'
        ? `${round.moment} #${round.occurrence} never came: camera.cleared`
        : `${hit.event} #${round.occurrence}`;
    if (round.readPastMb !== undefined && hit.event === 'offload.started') {
      const before = vm.hostReadBytes();
      await waitFor(
        `${round.readPastMb} MB read of ${round.target!.path}`,
        () => (vm.hostReadBytes() - before >= round.readPastMb! * MB ? true : undefined),
        vm,
        120_000,
      );
      at += ` (${baseName(round.target!.path)}, after ${round.readPastMb} MB of ${Math.round(round.target!.data.length / MB)} MB were read)`;
    } else if (hit.event === 'offload.started') {
      at += ` (${baseName(round.target!.path)})`;
    }
    if (round.delayMs) await sleep(round.delayMs);
    round.cutAt = `${at} +${round.delayMs} ms`;
  }
  const seen = lines();
  await vm.stop();
  round.inFlight = inFlight(seen, round);
}

/** The newest signed chain head the daemon logged so far, over every boot: durable once logged. */
let lastHead: { seq: number; hash: string } | null = null;
function noteHeads(vm: Vm, from: number): void {
  for (const l of daemonLines(vm, from))
    if (l.event === 'custody.checkpoint') lastHead = { seq: l.seq as number, hash: l.hash as string };
}

/** Written by rename: the guest never reads a command half-written. */
function tellGuest(command: string): void {
  const next = path.join(work, 'next');
  writeFileSync(`${next}.tmp`, command);
  renameSync(`${next}.tmp`, next);
}

/** Recovers `round`'s camera in a fresh boot until it is empty, then judges the data dir. */
async function recoverAndCheck(
  vm: Vm,
  round: Round,
  daemonPid: number,
  from: number,
  headBeforeCut: { seq: number; hash: string } | null,
  last: boolean,
): Promise<void> {
  const lines = () => daemonLines(vm, from, daemonPid);
  const mine = (l: LogLine) => l.camera === round.serial;
  const plugFrom = vm.serial.length;
  await vm.plugStorage({ id: `cam${round.n}`, image: round.image, serial: round.serial, port: '1' });
  await waitFor(
    `camera ${round.serial} cleared`,
    () => daemonLines(vm, plugFrom, daemonPid).find((l) => l.event === 'camera.cleared' && mine(l)),
    vm,
    240_000,
  );
  await vm.unplug(`cam${round.n}`);
  await waitFor(
    `camera ${round.serial} undocked`,
    () => daemonLines(vm, plugFrom, daemonPid).find((l) => l.event === 'camera.undocked' && mine(l)),
    vm,
    30_000,
  );
  noteHeads(vm, from);

  const name = `round${round.n}`;
  const checkFrom = vm.serial.length;
  // Archived files never change once committed: re-hashing all of them after every cut would
  // cost more with each round, so the last round's check re-hashes what every round archived.
  tellGuest(
    `check ${name} ${headBeforeCut ? `${headBeforeCut.seq}:${headBeforeCut.hash}` : '-'} ${last ? 'full' : 'quick'}`,
  );
  const checked = await vm.waitForSerial(new RegExp(`^\\[guest\\] POWER checked ${name} (\\d+)$`, 'm'), 120_000, {
    from: checkFrom,
  });
  const verified = await vm.waitForSerial(new RegExp(`^\\[guest\\] POWER verified ${name} (\\d+)$`, 'm'), 180_000, {
    from: checkFrom,
  });
  const read = (ext: string) => readFileSync(path.join(work, `${name}.${ext}`), 'utf8');
  expect(checked[1], read('check.err')).toBe('0');
  const check = JSON.parse(read('check.json')) as CheckJson;
  const recovered = lines().find((l) => l.event === 'daemon.recovered');

  // The camera is empty: everything on it was offloaded.
  expect(await listFatImage(round.image), `round ${round.n}: recordings left on the camera`).toEqual([]);
  expect(check.integrity).toBe('ok');
  // Every recording that was on the camera: verified exactly once, with the right SHA-256.
  const recs = check.recordings.filter((r) => r.camera === round.serial);
  expect(recs.map((r) => r.sourcePath).sort(), `round ${round.n}: recordings of ${round.serial}`).toEqual(
    round.files.map((f) => f.path).sort(),
  );
  const archived = new Map(check.archive.map((a) => [a.path, a]));
  for (const f of round.files) {
    const r = recs.find((x) => x.sourcePath === f.path)!;
    expect(r, `round ${round.n}: ${f.path}`).toMatchObject({
      status: 'verified',
      sha256: f.sha256,
      bytes: f.data.length,
      deletedFromCamera: 1,
    });
    expect(archived.get(r.archivePath!)?.bytes, `round ${round.n}: archived ${f.path}`).toBe(f.data.length);
    expect(
      check.verifiedEvents.find((e) => e.recording === r.id)?.n,
      `round ${round.n}: offload.verified events of ${f.path}`,
    ).toBe(1);
  }
  // The archive holds what the database knows as verified, every earlier round's too, and nothing else.
  const known = new Map(check.recordings.filter((r) => r.status === 'verified').map((r) => [r.archivePath!, r]));
  expect(
    check.archive.map((a) => a.path).filter((p) => !known.has(p)),
    `round ${round.n}: files in archive/ the database does not know`,
  ).toEqual([]);
  for (const [p, r] of known) expect(archived.get(p)?.bytes, `round ${round.n}: ${p}`).toBe(r.bytes);
  // The key made in the first seconds was durable: never found torn, never made anew.
  expect(check.keys.map((k) => [path.basename(k.path), k.bytes > 0])).toEqual([
    ['dock-signing.pem', true],
    ['dock-signing.pub.pem', true],
  ]);
  expect(check.keyReplaced, `round ${round.n}: custody.key_replaced events`).toBe(0);
  // dockd verify: the chain, the signed checkpoints, every archived file, and the head logged before the cut.
  // It re-hashes every archived file against the SHA-256 the database holds, which the host
  // compared with the footage above.
  const verify = JSON.parse(read('verify.json')) as {
    ok: boolean;
    files: { checked: number; ok: number; missing: unknown[]; mismatched: unknown[] };
    head?: { ok: boolean } | null;
  };
  expect(verified[1], `round ${round.n}: dockd verify: ${read('verify.json')}${read('verify.err')}`).toBe('0');
  expect(verify.ok).toBe(true);
  expect(verify.files).toMatchObject({ checked: known.size, ok: known.size, missing: [], mismatched: [] });
  if (headBeforeCut)
    expect(verify.head?.ok, `round ${round.n}: the chain continues head ${headBeforeCut.seq}`).toBe(true);

  // A copy cut past its first durable point goes on from the synced bytes, not from byte 0.
  const resumed =
    round.target &&
    daemonLines(vm, plugFrom, daemonPid).find(
      (l) => l.event === 'offload.started' && mine(l) && l.msg === `copying ${round.target!.path}`,
    );
  const counts = recovered
    ? Object.entries(recovered)
        .filter(([k, v]) => ['interrupted', 'uncommittedArchiveFiles', 'orphanStaging'].includes(k) && v)
        .map(([k, v]) => `${k} ${String(v)}`)
    : [];
  round.result = [
    `ok: ${round.files.length}/${round.files.length} verified once, camera empty`,
    'integrity ok',
    `verify 0 (${last ? `all ${known.size} archived files re-hashed` : 'chain, checkpoints, sizes'})${headBeforeCut ? `, head ${headBeforeCut.seq} continued` : ''}`,
    ...(counts.length ? [`recovered: ${counts.join(', ')}`] : []),
    ...(resumed ? [`${baseName(round.target!.path)} resumed from byte ${String(resumed.resumeFrom)}`] : []),
  ].join('; ');
}

describe('power cuts on a real kernel, the data dir on ext4', () => {
  it(
    `loses nothing over ${CUTS} cuts of the guest's power`,
    async () => {
      planRounds();
      for (let boot = 1; boot <= CUTS + 1; boot++) {
        const previous = rounds[boot - 2];
        const round = rounds[boot - 1];
        const bootAt = Date.now();
        const vm = await startVm({
          dataDir: work,
          serialLog: path.join(work, `serial-${boot}.log`),
          script: GUEST,
          memoryMb: 768,
          extraArgs: ['-drive', `file=${disk},format=raw,if=virtio,cache=writeback`],
        });
        try {
          const started = await vm.waitForSerial(/^\[guest\] POWER started (\d+)$/m, 30_000);
          const startedAt = Date.now();
          const pid = Number(started[1]);
          const from = started.index;
          if (round?.moment === 'first start') {
            await makeFatImage({ path: round.image, sizeMb: 48, files: round.files });
            await vm.plugStorage({ id: `cam${round.n}`, image: round.image, serial: round.serial, port: '2' });
          }
          const headBeforeCut = lastHead;
          if (previous) {
            await recoverAndCheck(vm, previous, pid, from, headBeforeCut, !round);
            process.stderr.write(
              `power cut ${previous.n}, next boot: ${previous.result} (${Date.now() - startedAt} ms from dockd start)\n`,
            );
          }
          if (!round) {
            tellGuest('quit');
            expect(await vm.exitCode(60_000)).toBe(0);
            break;
          }
          if (round.moment !== 'first start') {
            const big = round.files.some((f) => f.data.length >= BIG);
            await makeFatImage({ path: round.image, sizeMb: big ? 128 : 48, files: round.files });
            await vm.plugStorage({ id: `cam${round.n}`, image: round.image, serial: round.serial, port: '2' });
          }
          await cut(vm, round, pid, from, startedAt);
          // The last checkpoint line before the cut is the head the next boot must continue.
          noteHeads(vm, from);
          process.stderr.write(
            `power cut ${round.n}: ${round.cutAt}; in flight: ${round.inFlight} (boot ${startedAt - bootAt} ms, cut ${Date.now() - startedAt} ms after dockd start)\n`,
          );
        } finally {
          await vm.stop();
        }
      }
      for (const r of rounds) expect(r.result, `round ${r.n}`).toMatch(/^ok/);
    },
    (CUTS + 1) * 150_000 + 120_000,
  );
});
