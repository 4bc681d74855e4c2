/**
 * The real built daemon on a real kernel: `node /app/bin/dockd.js start` runs inside the QEMU
 * guest while cameras are hot-plugged from here, and each scenario is judged by the daemon's own
 * JSON log, its CLI's --json on the data dir it leaves, and the bytes left on the cameras.
 *
 * One guest (with udev) serves scenarios 1–4 and 6–8 one after another, each with a fresh daemon and data
 * dir; scenario 5 boots a guest without udev. The data dir lives on the guest's tmpfs, never on
 * the 9p share: SQLite's WAL needs shared memory and locks that 9p does not give. When a scenario
 * ends, the guest stops its daemon with SIGTERM, runs `dockd verify` on the data dir, and copies
 * it to /data/NAME/result, where the host runs the normal CLI on it.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  cli,
  ROOT,
  sha256,
  type CustodyJson,
  type LogLine as HarnessLogLine,
  type RecordingJson,
  type VerifyJson,
} from './support/harness.js';
import {
  listFatImage,
  makeFatImage,
  prepareGuest,
  readFatImage,
  startVm,
  writeFatFile,
  type Vm,
} from './support/qemu.js';

/** Where the guest keeps each scenario's data dir (tmpfs). */
const GUEST_DATA = '/run/dockd';

/**
 * The guest's command: runs one daemon per scenario the host names in /data/next (written by
 * rename, so never read half-written), until the host names "quit". The host asks a daemon to
 * stop by creating /data/NAME/stop. Runner lines start with "RUNNER ".
 */
const RUNNER = `#!/bin/sh
cd /run || exit 1
# A camera pulled out mid-read makes the kernel print I/O errors, which the console printed in the
# middle of the daemon's lines the host waits for; they stay in the kernel's log (dmesg).
dmesg -n 1
mkdir -p ${GUEST_DATA}
while :; do
  while [ ! -e /data/next ]; do sleep 0.1; done
  name=$(cat /data/next)
  rm -f /data/next
  [ "$name" = quit ] && exit 0
  dir=/data/$name
  data=${GUEST_DATA}/$name
  rm -rf "$data"
  mkdir -p "$data"
  # Kernel messages can land in the middle of a console line; the file keeps every line whole.
  fifo=${GUEST_DATA}/$name.log
  mkfifo "$fifo"
  tee "$dir/daemon.log" <"$fifo" &
  tee_pid=$!
  # A scenario may ask that nothing reach a camera's card but what the daemon itself flushes: the
  # kernel's periodic writeback is off while its daemon runs.
  [ -e "$dir/no-writeback" ] && echo 0 >/proc/sys/vm/dirty_writeback_centisecs
  node /app/bin/dockd.js --config "$dir/dockd.config.json" --data-dir "$data" start >"$fifo" 2>&1 &
  pid=$!
  echo "RUNNER started $name $pid $(cat /proc/sys/vm/dirty_writeback_centisecs)"
  while [ ! -e "$dir/stop" ] && kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  kill -TERM "$pid" 2>/dev/null
  wait "$pid"
  code=$?
  echo 500 >/proc/sys/vm/dirty_writeback_centisecs
  wait "$tee_pid"
  rm -f "$fifo"
  echo "RUNNER exited $name $code"
  node /app/bin/dockd.js --config "$dir/dockd.config.json" --data-dir "$data" verify --json >"$dir/verify.json" 2>"$dir/verify.err"
  echo "RUNNER verified $name $?"
  mkdir -p "$dir/result"
  # mnt/ holds the cameras' mount points, which are not the daemon's state.
  for e in $(ls -A "$data"); do [ "$e" = mnt ] || cp -a "$data/$e" "$dir/result/"; done
  rm -rf "$data"
  sync
  echo "RUNNER done $name"
done
`;

const MB = 1024 * 1024;
const HOUR = 3600_000;
const OFFLOAD_MS = 120_000;
/**
 * Each of the guest's steps after the daemon exits: `dockd verify` re-hashing the archive, then
 * the data dir's copy out through 9p. Under TCG on a loaded host, scenario 3's 160 MB took more
 * than 60 s to copy out.
 */
const WRAP_UP_MS = 180_000;

/** A daemon log line; the fields the scenarios read by name. */
type LogLine = HarnessLogLine & { camera?: string; recording?: string; slot?: string };

interface Footage {
  path: string;
  data: Buffer;
  sha256: string;
}

/**
 * Whether the camera's disk image still holds `file` (read after unplugging). A boolean, not the
 * bytes: a failed expectation on a 72 MB Buffer would have vitest print all of it.
 */
async function onCamera(image: string, file: string): Promise<boolean> {
  return (await readFatImage(image, file)) !== null;
}

function footage(names: string[], bytes: (i: number) => number): Footage[] {
  return names.map((p, i) => {
    const data = randomBytes(bytes(i));
    return { path: p, data, sha256: sha256(data) };
  });
}

/** What every scenario's daemon shares; the scenario adds its usb section and any other. */
function daemonConfig(usb: Record<string, unknown>, more: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    ...more,
    usb: { enabled: true, pollIntervalMs: 1000, ...usb },
    // The guest's tmpfs has a few hundred MB: the default 1 GiB reserve would pause offloading.
    ingest: { minFreeBytes: 16 * MB, retry: { attempts: 3, baseDelayMs: 200, maxDelayMs: 1000 } },
    daemon: { heartbeatIntervalMs: 500 },
    log: { level: 'info' },
  };
}

function parseLogLine(text: string): LogLine | null {
  try {
    const v = JSON.parse(text) as unknown;
    return typeof v === 'object' && v !== null && typeof (v as LogLine).level === 'number' ? (v as LogLine) : null;
  } catch {
    return null;
  }
}

/** A log line as the host saw it: when (host clock) and where it ended in the serial output. */
type Seen = LogLine & { seenAt: number; end: number };

/** The result of a daemon's run, after the guest stopped it and copied its data dir out. */
class DaemonResult {
  constructor(
    private readonly daemon: GuestDaemon,
    readonly exitCode: number,
    readonly verifyExit: number,
    readonly verify: VerifyJson,
    readonly log: LogLine[],
  ) {}

  get dataDir(): string {
    return path.join(this.daemon.dir, 'result');
  }

  async json<T>(...args: string[]): Promise<T> {
    const r = await cli(['--config', this.daemon.configPath, '--data-dir', this.dataDir, ...args, '--json']);
    if (r.code !== 0) throw new Error(`dockd ${args.join(' ')}: exit ${r.code}: ${r.stderr}`);
    return JSON.parse(r.stdout) as T;
  }

  recordings(camera: string): Promise<RecordingJson[]> {
    return this.json<RecordingJson[]>('recordings', '--camera', camera);
  }

  custody(recording: string): Promise<CustodyJson[]> {
    return this.json<CustodyJson[]>('custody', '--recording', recording);
  }

  /** An archive path as the guest wrote it, mapped into the copy the host has. */
  hostPath(guestPath: string): string {
    const rel = path.posix.relative(`${GUEST_DATA}/${this.daemon.name}`, guestPath);
    if (rel.startsWith('..') || path.posix.isAbsolute(rel))
      throw new Error(`archive path outside the data dir: ${guestPath}`);
    return path.join(this.dataDir, ...rel.split('/'));
  }

  events(name: string, camera?: string): LogLine[] {
    return this.log.filter((l) => l.event === name && (camera === undefined || l.camera === camera));
  }

  /**
   * Every recording of `camera` is verified, deleted from it, and archived byte for byte: the
   * host hashes each archived file against the footage it put on the camera.
   */
  async expectArchived(camera: string, files: Footage[]): Promise<RecordingJson[]> {
    const recs = await this.recordings(camera);
    expect(recs.map((r) => r.sourcePath).sort()).toEqual(files.map((f) => f.path).sort());
    for (const r of recs) {
      const f = files.find((x) => x.path === r.sourcePath)!;
      expect(r, r.sourcePath).toMatchObject({
        status: 'verified',
        bytes: f.data.length,
        sha256: f.sha256,
        deletedFromCamera: true,
      });
      const archived = readFileSync(this.hostPath(r.archivePath!));
      expect(archived.length, r.archivePath!).toBe(f.data.length);
      expect(sha256(archived), r.archivePath!).toBe(f.sha256);
    }
    return recs;
  }

  /** Discovered, copied, verified, then deleted from the camera: in that order and nothing else. */
  async expectCustodyInOrder(recs: RecordingJson[]): Promise<void> {
    for (const r of recs) {
      const types = (await this.custody(r.id)).map((e) => e.type);
      expect(types, r.sourcePath).toEqual([
        'recording.discovered',
        'offload.started',
        'offload.verified',
        'camera.file_deleted',
      ]);
    }
  }

  expectCleanRun(archivedFiles: number): void {
    expect(this.exitCode).toBe(0);
    expect(this.verifyExit).toBe(0);
    expect(this.verify.chain.ok).toBe(true);
    expect(this.verify.files).toMatchObject({ checked: archivedFiles, ok: archivedFiles, missing: [], mismatched: [] });
    const bad = this.log.filter((l) => l.level >= 50);
    expect(bad, 'error lines in the daemon log').toEqual([]);
  }
}

/** One `dockd start` in the guest, followed through its JSON log lines on the serial console. */
class GuestDaemon {
  readonly dir: string;
  readonly configPath: string;
  /** Offset into the serial output where this daemon's lines begin. */
  private from = 0;
  pid = 0;

  /** The kernel's periodic writeback interval while this daemon runs, in centiseconds (0: off). */
  writebackCentisecs = -1;

  constructor(
    private readonly vm: Vm,
    readonly name: string,
    config: Record<string, unknown>,
    opts: { writeback?: boolean } = {},
  ) {
    this.dir = path.join(vm.dataDir, name);
    rmSync(this.dir, { recursive: true, force: true });
    mkdirSync(this.dir, { recursive: true });
    this.configPath = path.join(this.dir, 'dockd.config.json');
    writeFileSync(this.configPath, JSON.stringify(config, null, 2));
    if (opts.writeback === false) writeFileSync(path.join(this.dir, 'no-writeback'), '');
  }

  /** Starts the daemon and resolves once it watches USB. */
  async start(): Promise<void> {
    this.from = this.vm.serial.length;
    const next = path.join(this.vm.dataDir, 'next');
    writeFileSync(`${next}.tmp`, this.name);
    renameSync(`${next}.tmp`, next);
    const started = await this.vm.waitForSerial(
      new RegExp(`^\\[guest\\] RUNNER started ${this.name} (\\d+) (\\d+)$`, 'm'),
      30_000,
      { from: this.from },
    );
    this.pid = Number(started[1]);
    this.writebackCentisecs = Number(started[2]);
    this.from = started.index;
    await this.waitEvent('bus.started', (l) => l.bus === 'usb', 60_000);
  }

  /** The next line from now (or from `from`) whose event is `event` and that `match` accepts. */
  async waitEvent(
    event: string,
    match: (l: LogLine) => boolean = () => true,
    timeoutMs = OFFLOAD_MS,
    from = this.from,
  ): Promise<Seen> {
    const deadline = Date.now() + timeoutMs;
    const re = new RegExp(`^\\[guest\\] (\\{.*"event":"${event.replace(/\./g, '\\.')}".*\\})$`, 'm');
    let cursor = from;
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${event} from daemon ${this.name} within ${timeoutMs} ms`);
      const m = await this.vm.waitForSerial(re, left, { from: cursor });
      cursor = m.index + m[0].length;
      const line = parseLogLine(m[1]!);
      if (line && line.pid === this.pid && match(line)) return { ...line, seenAt: Date.now(), end: cursor };
    }
  }

  /** Waits for `count` events, each accepted by `match`, counting from `from`. */
  async waitEvents(
    event: string,
    count: number,
    match: (l: LogLine) => boolean = () => true,
    timeoutMs = OFFLOAD_MS,
    from = this.from,
  ): Promise<LogLine[]> {
    const deadline = Date.now() + timeoutMs;
    const out: LogLine[] = [];
    let cursor = from;
    while (out.length < count) {
      const l = await this.waitEvent(event, match, Math.max(1, deadline - Date.now()), cursor);
      out.push(l);
      cursor = l.end;
    }
    return out;
  }

  /**
   * One dock visit as the log tells it, counting from `from`: the camera docks, `count` of its
   * recordings are verified and it is cleared; then `unplug` pulls it out and it undocks.
   */
  async visit(
    camera: string,
    count: number,
    from: number,
    unplug: () => Promise<void>,
  ): Promise<{ docked: Seen; verified: LogLine[] }> {
    const mine = (l: LogLine) => l.camera === camera;
    const docked = await this.waitEvent('camera.docked', mine, 60_000, from);
    const verified = await this.waitEvents('offload.verified', count, mine, OFFLOAD_MS, from);
    await this.waitEvent('camera.cleared', mine, OFFLOAD_MS, from);
    await unplug();
    await this.waitEvent('camera.undocked', mine, 30_000, from);
    return { docked, verified };
  }

  /** Serial offset for "from now on". */
  mark(): number {
    return this.vm.serial.length;
  }

  /** SIGTERM in the guest, `dockd verify` there, and the data dir copied out for the host. */
  async stop(): Promise<DaemonResult> {
    writeFileSync(path.join(this.dir, 'stop'), '');
    const exited = await this.vm.waitForSerial(
      new RegExp(`^\\[guest\\] RUNNER exited ${this.name} (\\d+)$`, 'm'),
      30_000,
      { from: this.from },
    );
    const verified = await this.vm.waitForSerial(
      new RegExp(`^\\[guest\\] RUNNER verified ${this.name} (\\d+)$`, 'm'),
      WRAP_UP_MS,
      { from: exited.index },
    );
    await this.vm.waitForSerial(new RegExp(`^\\[guest\\] RUNNER done ${this.name}$`, 'm'), WRAP_UP_MS, {
      from: verified.index,
    });
    const log = readFileSync(path.join(this.dir, 'daemon.log'), 'utf8')
      .split('\n')
      .map(parseLogLine)
      .filter((l): l is LogLine => l !== null);
    const verifyText = readFileSync(path.join(this.dir, 'verify.json'), 'utf8');
    let verify: VerifyJson;
    try {
      verify = JSON.parse(verifyText) as VerifyJson;
    } catch {
      throw new Error(
        `dockd verify in the guest printed no JSON: ${verifyText}${readFileSync(path.join(this.dir, 'verify.err'), 'utf8')}`,
      );
    }
    return new DaemonResult(this, Number(exited[1]), Number(verified[1]), verify, log);
  }

  /** For a scenario that failed half-way: stop the daemon so the guest can serve the next one. */
  async abandon(): Promise<void> {
    if (this.vm.exited || existsSync(path.join(this.dir, 'stop'))) return;
    writeFileSync(path.join(this.dir, 'stop'), '');
    await this.vm
      .waitForSerial(new RegExp(`^\\[guest\\] RUNNER done ${this.name}$`, 'm'), WRAP_UP_MS, { from: this.from })
      .catch(() => undefined);
  }
}

/** One line per scenario, printed at the end. */
const timings: string[] = [];

interface Timing {
  plugged: number;
  docked: Seen;
  verified: LogLine[];
  bytes: number;
}

function timingLine(name: string, t: Timing, extra = ''): string {
  const last = Math.max(...t.verified.map((v) => v.time));
  const span = last - t.docked.time;
  const mb = t.bytes / MB;
  return `${name}: plug → docked ${t.docked.seenAt - t.plugged} ms; docked → all verified ${span} ms; ${mb.toFixed(1)} MB at ${(mb / (span / 1000)).toFixed(1)} MB/s${extra}`;
}

let work: string;

beforeAll(async () => {
  // A first build of the guest downloads the kernel and udev: not a scenario's time.
  await prepareGuest();
  if (!existsSync(path.join(ROOT, 'dist', 'src', 'cli', 'main.js')))
    throw new Error('the guest runs the built daemon: build first (npm run test:vm does)');
  work = mkdtempSync(path.join(os.tmpdir(), 'dockd-vm-dockd-'));
}, 600_000);

afterAll(() => {
  // DOCKD_VM_KEEP=1 keeps the serial logs, daemon logs and data dirs of a run to look at.
  if (work && process.env.DOCKD_VM_KEEP === '1') console.log(`kept ${work}`);
  else if (work) rmSync(work, { recursive: true, force: true });
  console.log(`dockd on a real kernel (accel ${process.env.DOCKD_VM_ACCEL ?? 'auto'}):\n  ${timings.join('\n  ')}`);
});

describe('dockd in a guest with udev, cameras hot-plugged', () => {
  let vm: Vm | undefined;
  let daemon: GuestDaemon | undefined;
  const plugged = new Set<string>();

  const guest = (): Vm => {
    if (!vm) throw new Error('the guest did not boot');
    return vm;
  };

  const startDaemon = async (
    name: string,
    usb: Record<string, unknown>,
    more: Record<string, unknown> = {},
    opts: { writeback?: boolean } = {},
  ): Promise<GuestDaemon> => {
    daemon = new GuestDaemon(guest(), name, daemonConfig(usb, more), opts);
    await daemon.start();
    return daemon;
  };

  const plugStorage = async (
    id: string,
    image: string,
    serial: string,
    port: string,
    readOnly = false,
  ): Promise<number> => {
    const at = Date.now();
    await guest().plugStorage({ id, image, serial, port, readOnly });
    plugged.add(id);
    return at;
  };

  const unplug = async (id: string): Promise<void> => {
    plugged.delete(id);
    await guest().unplug(id);
  };

  beforeAll(async () => {
    vm = await startVm({ dataDir: path.join(work, 'udev'), script: RUNNER, memoryMb: 1024 });
  }, 180_000);

  // A scenario that failed half-way must not leave a camera or a daemon to the next one.
  const cleanUp = async () => {
    for (const id of [...plugged]) await unplug(id).catch(() => undefined);
    await daemon?.abandon();
    daemon = undefined;
  };

  afterAll(async () => {
    await cleanUp();
    if (vm && !vm.exited) {
      writeFileSync(path.join(vm.dataDir, 'next'), 'quit');
      await vm.exitCode(15_000).catch(() => undefined);
    }
    await vm?.stop();
  }, 60_000);

  it('1. offloads a mass-storage camera found by its USB serial, verifies, deletes from it, and keeps custody', async () => {
    try {
      const files = footage(
        [
          'DCIM/100BODY/REC0001.MP4',
          'DCIM/100BODY/REC0002.MP4',
          'DCIM/100BODY/REC0003.MP4',
          'DCIM/100BODY/REC0004.MP4',
        ],
        (i) => (2 + i) * MB + 12_345 * i,
      );
      const image = await makeFatImage({
        path: path.join(work, 'cam1.img'),
        sizeMb: 64,
        label: 'CAM0001',
        files: files.map((f) => ({ path: f.path, data: f.data, mtime: new Date('2024-05-01T10:20:30Z') })),
      });
      const d = await startDaemon('mass-storage', { allow: ['46f4:0001'], massStorage: { mount: true } });

      const from = d.mark();
      const plugAt = await plugStorage('cam1', image, 'CAM-0001', '1');
      const { docked, verified } = await d.visit('CAM-0001', files.length, from, () => unplug('cam1'));
      const result = await d.stop();
      daemon = undefined;

      // The volume was found through sysfs and mounted by the daemon itself, under its data dir.
      expect(result.events('mass_storage.mounted')[0]).toMatchObject({
        mountPoint: `${GUEST_DATA}/mass-storage/mnt/2-1`,
      });
      expect(result.events('camera.docked', 'CAM-0001')[0]).toMatchObject({ slot: '2-1', model: expect.any(String) });
      result.expectCleanRun(files.length);
      const recs = await result.expectArchived('CAM-0001', files);
      await result.expectCustodyInOrder(recs);
      expect(result.events('camera.file_deleted', 'CAM-0001')).toHaveLength(files.length);
      for (const f of files) expect(await onCamera(image, f.path), `${f.path} still on the camera`).toBe(false);
      expect(await listFatImage(image)).toEqual([]);

      timings.push(
        timingLine('1 mass storage', {
          plugged: plugAt,
          docked,
          verified,
          bytes: files.reduce((n, f) => n + f.data.length, 0),
        }),
      );
    } finally {
      await cleanUp();
    }
  }, 240_000);

  it('2. offloads an MTP camera through the PTP driver, deleting each object once verified', async () => {
    try {
      const root = path.join(work, 'mtp-root');
      const files = footage(
        ['DCIM/100BODY/MTP0001.MP4', 'DCIM/100BODY/MTP0002.MP4', 'DCIM/100BODY/MTP0003.MP4'],
        (i) => 1 * MB + 54_321 * i,
      );
      for (const f of files) {
        mkdirSync(path.dirname(path.join(root, f.path)), { recursive: true });
        writeFileSync(path.join(root, f.path), f.data);
      }
      // The default usb.allow: still-image devices only.
      const d = await startDaemon('mtp', {});

      const from = d.mark();
      const plugAt = Date.now();
      await guest().plugMtp({ id: 'mtp1', rootdir: root, serial: 'MTP-0002', port: '2' });
      plugged.add('mtp1');
      const { docked, verified } = await d.visit('MTP-0002', files.length, from, () => unplug('mtp1'));
      const result = await d.stop();
      daemon = undefined;

      expect(result.events('camera.docked', 'MTP-0002')[0]).toMatchObject({ slot: '1-2' });
      result.expectCleanRun(files.length);
      const recs = await result.expectArchived('MTP-0002', files);
      await result.expectCustodyInOrder(recs);
      // DeleteObject reached the device: usb-mtp removed the files from the folder it serves.
      for (const f of files) expect(existsSync(path.join(root, f.path)), `${f.path} still on the camera`).toBe(false);

      timings.push(
        timingLine('2 MTP', { plugged: plugAt, docked, verified, bytes: files.reduce((n, f) => n + f.data.length, 0) }),
      );
    } finally {
      await cleanUp();
    }
  }, 240_000);

  it('3. a camera unplugged mid-copy keeps its recording; replugged on another port, it is verified once, then deleted', async () => {
    try {
      // Large enough to pass the copy's first durable point (every 64 MiB) before the unplug.
      const [big] = footage(['DCIM/100BODY/REC0100.MP4'], () => 160 * MB);
      const image = await makeFatImage({
        path: path.join(work, 'cam3.img'),
        sizeMb: 192,
        label: 'CAM0003',
        files: [{ path: big!.path, data: big!.data }],
      });
      const d = await startDaemon('unplug', { allow: ['46f4:0001'], massStorage: { mount: true } });

      let from = d.mark();
      await plugStorage('cam3', image, 'CAM-0003', '1');
      await d.waitEvent('offload.started', (l) => l.camera === 'CAM-0003', 60_000, from);
      // Pulled out mid-copy: once the guest has read 96 MB of the camera, well short of its end.
      const readBefore = guest().hostReadBytes();
      const deadline = Date.now() + 90_000;
      while (guest().hostReadBytes() - readBefore < 96 * MB) {
        if (Date.now() > deadline)
          throw new Error(`the guest read only ${guest().hostReadBytes() - readBefore} bytes of the camera in 90 s`);
        await new Promise((r) => setTimeout(r, 20));
      }
      await unplug('cam3');
      const interrupted = await d.waitEvent('offload.interrupted', (l) => l.camera === 'CAM-0003', 30_000, from);
      await d.waitEvent('camera.undocked', (l) => l.camera === 'CAM-0003', 30_000, from);
      // Nothing is deleted from a camera before its recording is verified.
      const still = await readFatImage(image, big!.path);
      expect(still && sha256(still), 'the recording left the camera before it was verified').toBe(big!.sha256);

      from = d.mark();
      const plugAt = await plugStorage('cam3b', image, 'CAM-0003', '3');
      const { docked, verified } = await d.visit('CAM-0003', 1, from, () => unplug('cam3b'));
      const resumed = await d.waitEvent('offload.started', (l) => l.camera === 'CAM-0003', 1000, from);
      const result = await d.stop();
      daemon = undefined;

      result.expectCleanRun(1);
      expect(result.events('camera.docked', 'CAM-0003').map((l) => l.slot)).toEqual(['2-1', '2-3']);
      const [rec] = await result.expectArchived('CAM-0003', [big!]);
      const custody = await result.custody(rec!.id);
      const types = custody.map((e) => e.type);
      expect(types.filter((t) => t === 'offload.verified')).toHaveLength(1);
      expect(types.filter((t) => t === 'camera.file_deleted')).toHaveLength(1);
      expect(types.indexOf('camera.file_deleted')).toBeGreaterThan(types.indexOf('offload.verified'));
      // The first copy ended as an interruption (device gone), not as a failure to give up on.
      const failed = custody.filter((e) => e.type === 'offload.failed');
      expect(failed).toHaveLength(1);
      expect(failed[0]!.details).toMatchObject({ class: 'deviceGone', willRetry: true });
      expect(types).toEqual([
        'recording.discovered',
        'offload.started',
        'offload.failed',
        'offload.started',
        'offload.verified',
        'camera.file_deleted',
      ]);
      // The second copy resumed from what the first one made durable, not from byte 0.
      expect(interrupted.keptBytes as number).toBeGreaterThan(0);
      expect(resumed.resumeFrom).toBe(interrupted.keptBytes);
      expect(custody.filter((e) => e.type === 'offload.started').map((e) => e.details.resumeFrom)).toEqual([
        0,
        interrupted.keptBytes,
      ]);
      expect(await onCamera(image, big!.path), `${big!.path} still on the camera`).toBe(false);

      timings.push(
        timingLine(
          '3 unplug mid-copy, replug',
          { plugged: plugAt, docked, verified, bytes: big!.data.length },
          `; interrupted with ${interrupted.keptBytes as number} bytes kept, resumed from ${resumed.resumeFrom as number}`,
        ),
      );
    } finally {
      await cleanUp();
    }
  }, 300_000);

  it('4. two cameras at once on ports mapped to named slots', async () => {
    try {
      const left = footage(['DCIM/100BODY/L0001.MP4', 'DCIM/100BODY/L0002.MP4'], (i) => 3 * MB + i);
      const right = footage(['DCIM/100BODY/R0001.MP4', 'DCIM/100BODY/R0002.MP4'], (i) => 3 * MB + 7 * i);
      const [imgL, imgR] = await Promise.all([
        makeFatImage({ path: path.join(work, 'cam4l.img'), sizeMb: 48, files: left }),
        makeFatImage({ path: path.join(work, 'cam4r.img'), sizeMb: 48, files: right }),
      ]);
      // usb-storage is SuperSpeed: QEMU ports 1 and 2 are the guest's second root hub, ports 1 and 2.
      const d = await startDaemon('slots', {
        allow: ['46f4:0001'],
        massStorage: { mount: true },
        slots: { '2-1': 'bay-left', '2-2': 'bay-right' },
      });

      const from = d.mark();
      const plugAt = await plugStorage('cam4l', imgL, 'CAM-0041', '1');
      await plugStorage('cam4r', imgR, 'CAM-0042', '2');
      const docked = await d.waitEvent('camera.docked', (l) => l.camera === 'CAM-0041', 60_000, from);
      await d.waitEvent('camera.docked', (l) => l.camera === 'CAM-0042', 60_000, from);
      const verified = await d.waitEvents('offload.verified', 4, () => true, OFFLOAD_MS, from);
      await d.waitEvent('camera.cleared', (l) => l.camera === 'CAM-0041', OFFLOAD_MS, from);
      await d.waitEvent('camera.cleared', (l) => l.camera === 'CAM-0042', OFFLOAD_MS, from);

      await unplug('cam4l');
      await unplug('cam4r');
      await d.waitEvents('camera.undocked', 2, () => true, 30_000, from);
      const result = await d.stop();
      daemon = undefined;

      // Each serial in the slot its port is configured as.
      const cameras = await result.json<Array<{ serial: string; slot: string; docked: boolean }>>('cameras');
      expect(
        cameras.map((c) => ({ serial: c.serial, slot: c.slot })).sort((a, b) => a.serial.localeCompare(b.serial)),
      ).toEqual([
        { serial: 'CAM-0041', slot: 'bay-left' },
        { serial: 'CAM-0042', slot: 'bay-right' },
      ]);
      expect(
        result
          .events('usb.attached')
          .map((l) => [l.portPath, l.slot])
          .sort(),
      ).toEqual([
        ['2-1', 'bay-left'],
        ['2-2', 'bay-right'],
      ]);
      result.expectCleanRun(4);
      await result.expectCustodyInOrder([
        ...(await result.expectArchived('CAM-0041', left)),
        ...(await result.expectArchived('CAM-0042', right)),
      ]);
      expect(await listFatImage(imgL)).toEqual([]);
      expect(await listFatImage(imgR)).toEqual([]);
      // Both cameras were offloaded side by side, not one after the other.
      const startedL = result.events('offload.started', 'CAM-0041').map((l) => l.time);
      const verifiedR = result.events('offload.verified', 'CAM-0042').map((l) => l.time);
      expect(Math.min(...startedL)).toBeLessThan(Math.max(...verifiedR));

      timings.push(
        timingLine('4 two cameras, named slots', {
          plugged: plugAt,
          docked,
          verified,
          bytes: [...left, ...right].reduce((n, f) => n + f.data.length, 0),
        }),
      );
    } finally {
      await cleanUp();
    }
  }, 240_000);
  it('6. a recording rewritten on the card after its deletion was refused is kept in both versions', async () => {
    try {
      const REWRITTEN = 'DCIM/100BODY/REC0601.MP4';
      const UNTOUCHED = 'DCIM/100BODY/REC0602.MP4';
      const [before, untouched] = footage([REWRITTEN, UNTOUCHED], (i) => 3 * MB + 4_321 * i);
      // The camera reuses the name for other footage of the same size, written an hour later.
      const [after] = footage([REWRITTEN], () => before!.data.length);
      const recordedAt = new Date('2024-05-01T10:20:30Z');
      const image = await makeFatImage({
        path: path.join(work, 'cam6.img'),
        sizeMb: 48,
        label: 'CAM0006',
        files: [before!, untouched!].map((f) => ({ path: f.path, data: f.data, mtime: recordedAt })),
      });
      const d = await startDaemon('rewritten', { allow: ['46f4:0001'], massStorage: { mount: true } });

      // First docking write-protected: both recordings are verified, the kernel refuses to delete them.
      let from = d.mark();
      await plugStorage('cam6', image, 'CAM-0006', '1', true);
      await d.waitEvents('camera.file_delete_failed', 2, (l) => l.camera === 'CAM-0006', OFFLOAD_MS, from);
      await d.visit('CAM-0006', 2, from, () => unplug('cam6'));
      // The kernel mounted the card read-only, and the daemon said so.
      await d.waitEvent('mass_storage.read_only', () => true, 1000, from);
      for (const f of [before!, untouched!]) {
        const held = await readFatImage(image, f.path);
        expect(held && sha256(held), `${f.path} after the first docking`).toBe(f.sha256);
      }

      await writeFatFile(image, REWRITTEN, after!.data, new Date(recordedAt.getTime() + 3600_000));
      const rewritten = await readFatImage(image, REWRITTEN);
      expect(rewritten && sha256(rewritten)).toBe(after!.sha256);

      // Second docking writable, on another port: only the new footage is copied, then deleted.
      from = d.mark();
      const plugAt = await plugStorage('cam6b', image, 'CAM-0006', '2');
      const { docked, verified } = await d.visit('CAM-0006', 1, from, () => unplug('cam6b'));
      const result = await d.stop();
      daemon = undefined;

      result.expectCleanRun(3);
      const recs = await result.recordings('CAM-0006');
      const bySha = (f: Footage) => recs.filter((r) => r.sourcePath === f.path && r.sha256 === f.sha256);
      for (const f of [before!, untouched!, after!]) {
        const [r] = bySha(f);
        expect(bySha(f), `${f.path} ${f === after ? 'after' : 'before'} the rewrite`).toHaveLength(1);
        expect(r).toMatchObject({ status: 'verified', bytes: f.data.length });
        expect(sha256(readFileSync(result.hostPath(r!.archivePath!))), r!.archivePath!).toBe(f.sha256);
      }
      expect(recs).toHaveLength(3);
      const old = bySha(before!)[0]!;
      const fresh = bySha(after!)[0]!;
      expect(old).toMatchObject({ deletedFromCamera: false, leftCamera: true });
      expect(fresh.deletedFromCamera).toBe(true);

      const oldTypes = (await result.custody(old.id)).map((e) => e.type);
      expect(oldTypes).toEqual([
        'recording.discovered',
        'offload.started',
        'offload.verified',
        'camera.file_delete_failed',
        'recording.replaced_on_camera',
      ]);
      const replaced = (await result.custody(old.id)).find((e) => e.type === 'recording.replaced_on_camera')!;
      expect(replaced.details).toMatchObject({
        noticedBy: 'listing',
        replacedBy: fresh.id,
        before: { bytes: before!.data.length },
        after: { bytes: after!.data.length },
      });
      // The name left the card only once the footage now under it was verified.
      expect((await result.custody(fresh.id)).map((e) => e.type)).toEqual([
        'recording.discovered',
        'offload.started',
        'offload.verified',
        'camera.file_deleted',
      ]);
      expect(await onCamera(image, REWRITTEN), `${REWRITTEN} still on the camera`).toBe(false);

      // A file the camera left alone is the same recording at the next docking, whatever inode
      // number the kernel gives it on this mount: not copied again. Its refused deletion waits
      // for `dockd retry`.
      expect(result.events('recording.replaced_on_camera').map((l) => l.sourcePath)).toEqual([REWRITTEN]);
      const held = await readFatImage(image, UNTOUCHED);
      expect(held && sha256(held), `${UNTOUCHED} after the second docking`).toBe(untouched!.sha256);

      timings.push(
        timingLine('6 rewritten between two dockings', {
          plugged: plugAt,
          docked,
          verified,
          bytes: after!.data.length,
        }),
      );
    } finally {
      await cleanUp();
    }
  }, 300_000);
  it('7. a recording rewritten on the card mid-copy, same size and time, is copied again from the start', async () => {
    try {
      // An interrupted copy keeps every byte it received: a third of the file is plenty.
      const [before] = footage(['DCIM/100BODY/REC0701.MP4'], () => 48 * MB);
      const [after] = footage([before!.path], () => before!.data.length);
      const recordedAt = new Date('2024-05-01T10:20:30Z');
      const image = await makeFatImage({
        path: path.join(work, 'cam7.img'),
        sizeMb: 80,
        label: 'CAM0007',
        files: [{ path: before!.path, data: before!.data, mtime: recordedAt }],
      });
      const d = await startDaemon('rewritten-mid-copy', { allow: ['46f4:0001'], massStorage: { mount: true } });

      let from = d.mark();
      await plugStorage('cam7', image, 'CAM-0007', '1');
      await d.waitEvent('offload.started', (l) => l.camera === 'CAM-0007', 60_000, from);
      const readBefore = guest().hostReadBytes();
      const deadline = Date.now() + 90_000;
      while (guest().hostReadBytes() - readBefore < 16 * MB) {
        if (Date.now() > deadline)
          throw new Error(`the guest read only ${guest().hostReadBytes() - readBefore} bytes of the camera in 90 s`);
        await new Promise((r) => setTimeout(r, 20));
      }
      await unplug('cam7');
      const interrupted = await d.waitEvent('offload.interrupted', (l) => l.camera === 'CAM-0007', 30_000, from);
      await d.waitEvent('camera.undocked', (l) => l.camera === 'CAM-0007', 30_000, from);
      // More than the MiB a resume reads again, and short of the end.
      expect(interrupted.keptBytes as number).toBeGreaterThan(MB);
      expect(interrupted.keptBytes as number).toBeLessThan(before!.data.length);

      // Other footage under the name, with the size and the time to the second of what was
      // there: nothing the camera says about the file tells the two apart.
      await writeFatFile(image, before!.path, after!.data, recordedAt);
      const rewritten = await readFatImage(image, before!.path);
      expect(rewritten && sha256(rewritten)).toBe(after!.sha256);

      from = d.mark();
      const plugAt = await plugStorage('cam7b', image, 'CAM-0007', '2');
      const { docked, verified } = await d.visit('CAM-0007', 1, from, () => unplug('cam7b'));
      const result = await d.stop();
      daemon = undefined;

      // Only the footage the card holds now is in the archive: no head of the first spliced
      // onto the tail of the second.
      result.expectCleanRun(1);
      const [rec] = await result.expectArchived('CAM-0007', [after!]);
      const custody = await result.custody(rec!.id);
      expect(custody.filter((e) => e.type === 'offload.started').map((e) => e.details.resumeFrom)).toEqual([
        0,
        interrupted.keptBytes,
      ]);
      expect(custody.find((e) => e.type === 'offload.verified')!.details).toMatchObject({
        resumeRefused: true,
        bytes: after!.data.length,
      });
      expect(result.events('offload.resume_refused', 'CAM-0007')).toHaveLength(1);
      expect(custody.map((e) => e.type).slice(-2)).toEqual(['offload.verified', 'camera.file_deleted']);
      expect(await onCamera(image, before!.path), `${before!.path} still on the camera`).toBe(false);

      timings.push(
        timingLine(
          '7 rewritten mid-copy, same size and time',
          { plugged: plugAt, docked, verified, bytes: after!.data.length },
          `; ${interrupted.keptBytes as number} kept bytes refused`,
        ),
      );
    } finally {
      await cleanUp();
    }
  }, 360_000);
  it('8. sets the clock and settings of a camera of the example mass-storage profile through the files on its card, and stores its event log', async () => {
    try {
      const t0 = Date.now();
      const files = footage(['DCIM/100BODY/REC0801.MP4', 'DCIM/100BODY/REC0802.MP4'], (i) => MB + 4_321 * i);
      // The guest has no time zone: its local time, which the camera files hold, is UTC.
      const local = (ms: number) => new Date(ms).toISOString().slice(0, 19).replace('T', ' ');
      // The camera's clock runs an hour behind; its event log is on that clock.
      const cameraNow = Math.floor((Date.now() - HOUR) / 1000) * 1000;
      const events = [
        { at: cameraNow - 5 * HOUR, type: 'power.on' },
        { at: cameraNow - 4 * HOUR, type: 'recording.start' },
        { at: cameraNow - 4 * HOUR + 600_000, type: 'recording.stop' },
        { at: cameraNow - 2 * HOUR, type: 'power.off' },
      ];
      const settingsFile = '# Acme BWC-M\r\npreRecordSeconds=10\r\nresolution=1080p\r\nwifi=on\r\nunitName=UNIT 8\r\n';
      const eventLog = `${events.map((e) => `${local(e.at)},${e.type}`).join('\n')}\nnot an entry\n${local(cameraNow)},teleport.start\n`;
      const image = await makeFatImage({
        path: path.join(work, 'cam8.img'),
        sizeMb: 48,
        label: 'CAM0008',
        files: [
          ...files,
          { path: 'SETTINGS.TXT', data: Buffer.from(settingsFile) },
          { path: 'EVENTS.LOG', data: Buffer.from(eventLog) },
        ],
      });
      // QEMU's disk cannot have the example's VID:PID: the config gives it the example's files.
      const d = await startDaemon(
        'camera-files',
        { allow: ['46f4:0001'], massStorage: { mount: true, profiles: { '46f4:0001': 'example-bwc-m' } } },
        {
          settings: {
            profiles: { patrol: { preRecordSeconds: 30, wifi: false, resolution: '1080p' } },
            assign: [{ profile: 'patrol' }],
          },
        },
        // What the daemon writes must reach the card by its own flushes, not by the kernel's
        // writeback racing the unplug.
        { writeback: false },
      );
      expect(d.writebackCentisecs).toBe(0);

      // The camera writes its clock into TIME.TXT as it is connected.
      await writeFatFile(image, 'TIME.TXT', Buffer.from(`${local(Date.now() - HOUR)}\r\n`), new Date());
      const from = d.mark();
      const plugAt = await plugStorage('cam8', image, 'CAM-0008', '1');
      const { docked, verified } = await d.visit('CAM-0008', files.length, from, () => unplug('cam8'));
      const result = await d.stop();
      daemon = undefined;

      result.expectCleanRun(files.length);
      await result.expectCustodyInOrder(await result.expectArchived('CAM-0008', files));
      expect(result.events('mass_storage.profile')).toMatchObject([
        { profile: 'example-bwc-m', matchedBy: 'config 46f4:0001' },
      ]);

      // Measured an hour behind at docking, before anything was set, and set.
      const skew = docked.clockSkewSeconds as number;
      expect(Math.abs(skew + 3600)).toBeLessThan(30);
      const custody = await result.json<CustodyJson[]>('custody', '--camera', 'CAM-0008');
      const clockSet = custody.filter((e) => e.type === 'camera.clock_set');
      expect(clockSet.map((e) => e.details.skewSeconds)).toEqual([skew]);
      expect(custody.filter((e) => e.type === 'camera.settings_changed').map((e) => e.details)).toEqual([
        {
          profile: 'patrol',
          before: { preRecordSeconds: 10, resolution: '1080p', wifi: true, unitName: 'UNIT 8' },
          after: { preRecordSeconds: 30, resolution: '1080p', wifi: false, unitName: 'UNIT 8' },
          changed: ['preRecordSeconds', 'wifi'],
        },
      ]);
      // Configured before its recordings were listed.
      const order = result.log.map((l) => l.event);
      expect(order.indexOf('camera.settings_changed')).toBeLessThan(order.indexOf('camera.listed'));

      const settings = await result.json<Array<Record<string, unknown>>>('settings', 'CAM-0008');
      expect(settings).toMatchObject([
        {
          serial: 'CAM-0008',
          profile: 'patrol',
          settings: { preRecordSeconds: 30, resolution: '1080p', wifi: false, unitName: 'UNIT 8' },
          pending: {},
          configuredAt: expect.any(String),
        },
      ]);

      // The event log at true times (the camera's less the skew measured at docking), the two
      // lines that are not entries skipped and counted.
      const stored = await result.json<Array<{ camera: string; at: string; type: string }>>(
        'events',
        '--camera',
        'CAM-0008',
      );
      expect(stored).toEqual(
        events.map((e) => ({
          camera: 'CAM-0008',
          at: new Date(Math.round(e.at - skew * 1000)).toISOString(),
          type: e.type,
        })),
      );
      expect(result.events('mass_storage.file_lines_skipped')).toMatchObject([{ file: 'EVENTS.LOG', skipped: 2 }]);

      // What the camera reads when it leaves the dock: its settings file with only the changed
      // lines rewritten, and the dock's clock at the moment it was connected.
      expect((await readFatImage(image, 'SETTINGS.TXT'))?.toString('latin1')).toBe(
        settingsFile.replace('preRecordSeconds=10', 'preRecordSeconds=30').replace('wifi=on', 'wifi=off'),
      );
      const time = (await readFatImage(image, 'TIME.TXT'))?.toString('latin1') ?? '';
      expect(time).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\n$/);
      const setTo = Date.parse(`${time.trim().replace(' ', 'T')}Z`);
      expect(Math.abs(setTo - plugAt), `TIME.TXT holds ${time.trim()}`).toBeLessThan(15_000);
      expect((await readFatImage(image, 'EVENTS.LOG'))?.toString('latin1')).toBe(eventLog);
      // The recordings are gone, the camera's files stay, and no temporary file is left.
      expect(await listFatImage(image, { hidden: true })).toEqual(['EVENTS.LOG', 'SETTINGS.TXT', 'TIME.TXT']);

      const configured = result.events('camera.settings_changed', 'CAM-0008')[0]!.time;
      timings.push(
        timingLine(
          '8 camera files of the example profile',
          { plugged: plugAt, docked, verified, bytes: files.reduce((n, f) => n + f.data.length, 0) },
          `; docked → configured ${configured - docked.time} ms; scenario ${Date.now() - t0} ms`,
        ),
      );
    } finally {
      await cleanUp();
    }
  }, 240_000);
});

describe('dockd in a guest without udev', () => {
  let vm: Vm | undefined;

  afterAll(async () => {
    await vm?.stop();
  });

  it('5. finds and offloads a camera by periodic enumeration alone', async () => {
    const files = footage(['DCIM/100BODY/REC0501.MP4', 'DCIM/100BODY/REC0502.MP4'], (i) => 3 * MB + i);
    const image = await makeFatImage({ path: path.join(work, 'cam5.img'), sizeMb: 48, files });
    vm = await startVm({ dataDir: path.join(work, 'plain'), script: RUNNER, udev: false });
    expect(vm.serial).toMatch(/^dockd-init: udev off$/m);
    const d = new GuestDaemon(
      vm,
      'poll',
      daemonConfig({ allow: ['46f4:0001'], massStorage: { mount: true }, pollIntervalMs: 500 }),
    );
    await d.start();

    const from = d.mark();
    const plugAt = Date.now();
    await vm.plugStorage({ id: 'cam5', image, serial: 'CAM-0005', port: '1' });
    const { docked, verified } = await d.visit('CAM-0005', files.length, from, () => vm!.unplug('cam5'));
    const result = await d.stop();

    result.expectCleanRun(files.length);
    await result.expectCustodyInOrder(await result.expectArchived('CAM-0005', files));
    expect(await listFatImage(image)).toEqual([]);
    writeFileSync(path.join(vm.dataDir, 'next'), 'quit');
    expect(await vm.exitCode(15_000)).toBe(0);

    timings.push(
      timingLine('5 no udev, polling every 500 ms', {
        plugged: plugAt,
        docked,
        verified,
        bytes: files.reduce((n, f) => n + f.data.length, 0),
      }),
    );
  }, 240_000);
});
