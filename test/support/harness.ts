/**
 * Black-box harness: the real built daemon as a child process against a temporary simulated
 * dock, observed only through the CLI's --json output, its JSON logs and the files it leaves.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, mkdirSync, writeFileSync, renameSync, rmSync, readFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';

const execFileP = promisify(execFile);
export const ROOT = path.resolve(import.meta.dirname, '../..');
export const BIN = path.join(ROOT, 'bin', 'dockd.js');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function cli(args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<CliResult> {
  try {
    const { stdout, stderr } = await execFileP(process.execPath, [BIN, ...args], {
      env: { ...process.env, ...opts.env },
      cwd: opts.cwd ?? ROOT,
      maxBuffer: 256 * 1024 * 1024,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

export interface SimFile {
  rel: string;
  size?: number;
  data?: Buffer;
}

export interface CameraOptions {
  serial: string;
  files?: SimFile[];
  spec?: Record<string, unknown>;
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

export interface LogLine {
  level: number;
  time: number;
  msg: string;
  event?: string;
  [k: string]: unknown;
}

export class TestDock {
  readonly root: string;
  readonly dataDir: string;
  readonly simDir: string;
  readonly configPath: string;
  /** sha256 of every file placed on a camera, by serial + relative path. */
  readonly sources = new Map<string, { sha256: string; bytes: number; data: Buffer }>();
  private daemons: DaemonProcess[] = [];

  constructor(config: Record<string, unknown> = {}, opts: { dataDir?: string } = {}) {
    this.root = mkdtempSync(path.join(os.tmpdir(), 'dockd-test-'));
    this.dataDir = opts.dataDir ?? path.join(this.root, 'data');
    this.simDir = path.join(this.root, 'dock');
    this.configPath = path.join(this.root, 'dockd.config.json');
    this.writeConfig(config);
  }

  writeConfig(config: Record<string, unknown>): void {
    const base = {
      dataDir: this.dataDir,
      sim: { dir: this.simDir },
      usb: { enabled: false },
      daemon: { heartbeatIntervalMs: 200 },
      log: { level: 'debug' },
    };
    const ingest = {
      minFreeBytes: 0,
      readTimeoutMs: 2000,
      retry: { attempts: 5, baseDelayMs: 50, maxDelayMs: 200 },
      ...(config.ingest as object),
    };
    writeFileSync(this.configPath, JSON.stringify({ ...base, ...config, ingest }, null, 2));
  }

  /** Puts a camera in a slot: its files first, camera.json last by rename, as the contract says. */
  dock(slot: string, cam: CameraOptions): void {
    const dir = path.join(this.simDir, slot);
    mkdirSync(dir, { recursive: true });
    for (const f of cam.files ?? []) {
      const data = f.data ?? randomBytes(f.size ?? 1024);
      const file = path.join(dir, f.rel);
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, data);
      this.sources.set(`${cam.serial}\n${f.rel}`, { sha256: sha256(data), bytes: data.length, data });
    }
    this.writeCameraJson(slot, { serial: cam.serial, model: 'SimCam 2', firmware: '4.1.7', ...cam.spec });
  }

  writeCameraJson(slot: string, spec: Record<string, unknown> | string): void {
    const dir = path.join(this.simDir, slot);
    mkdirSync(dir, { recursive: true });
    const tmp = path.join(dir, `.camera.json.${process.pid}.tmp`);
    writeFileSync(tmp, typeof spec === 'string' ? spec : JSON.stringify(spec));
    renameSync(tmp, path.join(dir, 'camera.json'));
  }

  /**
   * Writes a file of a camera by a path given as raw bytes (any bytes but `/` and NUL in a name,
   * UTF-8 or not). Call it before `dock()`, which writes camera.json last.
   */
  putRawFile(slot: string, rel: Buffer, data: Buffer): Buffer {
    const file = Buffer.concat([Buffer.from(path.join(this.simDir, slot) + '/'), rel]);
    mkdirSync(file.subarray(0, file.lastIndexOf(0x2f)), { recursive: true });
    writeFileSync(file, data);
    return file;
  }

  undock(slot: string): void {
    rmSync(path.join(this.simDir, slot, 'camera.json'), { force: true });
  }

  cameraFileExists(slot: string, rel: string): boolean {
    return existsSync(path.join(this.simDir, slot, rel));
  }

  /** The daemon started last, for failure messages. */
  get lastDaemon(): DaemonProcess | undefined {
    return this.daemons.at(-1);
  }

  /** `as`: run the daemon as another user (root can then take write permission away from it). */
  start(extraArgs: string[] = [], env: NodeJS.ProcessEnv = {}, as?: { uid: number; gid: number }): DaemonProcess {
    const d = new DaemonProcess(['--config', this.configPath, 'start', ...extraArgs], env, as);
    this.daemons.push(d);
    return d;
  }

  async cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
    return cli(['--config', this.configPath, ...args], { env });
  }

  async json<T = unknown>(args: string[]): Promise<T> {
    const r = await this.cli([...args, '--json']);
    if (r.code !== 0 && r.code !== 1) throw new Error(`dockd ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
    return JSON.parse(r.stdout) as T;
  }

  async recordings(filter: string[] = []): Promise<RecordingJson[]> {
    return this.json<RecordingJson[]>(['recordings', ...filter]);
  }

  async status(): Promise<StatusJson> {
    return this.json<StatusJson>(['status']);
  }

  async cleanup(): Promise<void> {
    for (const d of this.daemons) d.kill('SIGKILL');
    await Promise.all(this.daemons.map((d) => d.exited));
    rmSync(this.root, { recursive: true, force: true });
  }
}

export class DaemonProcess {
  readonly child: ChildProcess;
  readonly logs: LogLine[] = [];
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private buf = '';

  constructor(args: string[], env: NodeJS.ProcessEnv = {}, as?: { uid: number; gid: number }) {
    this.child = spawn(process.execPath, [BIN, ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
      ...as,
    });
    this.child.stdout!.setEncoding('utf8').on('data', (s: string) => {
      this.buf += s;
      let i;
      while ((i = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, i);
        this.buf = this.buf.slice(i + 1);
        try {
          this.logs.push(JSON.parse(line) as LogLine);
        } catch {
          this.logs.push({ level: 0, time: Date.now(), msg: line, event: 'unparsed' });
        }
      }
    });
    this.child.stderr!.setEncoding('utf8').on('data', (s: string) => (this.stderr += s));
    this.exited = new Promise((resolve) => this.child.on('exit', (code, signal) => resolve({ code, signal })));
  }

  events(name: string): LogLine[] {
    return this.logs.filter((l) => l.event === name);
  }

  async waitForLog(pred: (l: LogLine) => boolean, timeoutMs = 20_000): Promise<LogLine> {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      const hit = this.logs.find(pred);
      if (hit) return hit;
      if (this.child.exitCode !== null)
        throw new Error(
          `daemon exited (${this.child.exitCode}) while waiting; stderr: ${this.stderr}\nlast lines:\n${this.logs
            .slice(-5)
            .map((l) => JSON.stringify(l))
            .join('\n')}`,
        );
      await sleep(50);
    }
    throw new Error(
      `timed out waiting for a log line; last lines:\n${this.logs
        .slice(-15)
        .map((l) => JSON.stringify(l))
        .join('\n')}\n${this.stderr}`,
    );
  }

  async waitForEvent(name: string, timeoutMs?: number): Promise<LogLine> {
    return this.waitForLog((l) => l.event === name, timeoutMs);
  }

  kill(signal: NodeJS.Signals): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
  }
}

export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | null | false>,
  timeoutMs = 30_000,
  everyMs = 150,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    await sleep(everyMs);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}

export interface RecordingJson {
  id: string;
  camera: string;
  sourcePath: string;
  archivePath: string | null;
  bytes: number;
  sha256: string | null;
  status: 'pending' | 'copying' | 'verified' | 'failed';
  attempts: number;
  lastError: string | null;
  deletedFromCamera: boolean;
}

export interface StatusJson {
  daemon: {
    running: boolean;
    pid: number | null;
    startedAt: string | null;
    heartbeatAt: string | null;
    version: string | null;
  };
  cameras: Array<{
    serial: string;
    slot: string;
    docked: boolean;
    battery: { percent: number; charging: boolean } | null;
    pending: number;
    failed: number;
    progress: null | Record<string, number | null>;
  }>;
  queue: { pending: number; active: number; failed: number; verified: number };
  archive: { path: string; freeBytes: number };
}

export interface CustodyJson {
  seq: number;
  at: string;
  type: string;
  camera: string | null;
  recording: string | null;
  sha256: string | null;
  actor: string;
  details: Record<string, unknown>;
  prevHash: string;
  hash: string;
}

export interface VerifyJson {
  ok: boolean;
  chain: { ok: boolean; events: number; firstBadSeq: number | null };
  files: { checked: number; ok: number; missing: string[]; mismatched: string[] };
  checkpoints: { checked: number; ok: number; bad: Array<{ seq: number; reason: string }> };
  head: null | { ok: boolean };
}

/** Waits until every listed recording of the dock is verified and, by default, off the camera. */
export async function allVerified(
  dock: TestDock,
  count: number,
  opts: { deleted?: boolean; timeoutMs?: number } = {},
): Promise<RecordingJson[]> {
  const deleted = opts.deleted ?? true;
  let seen: RecordingJson[] = [];
  try {
    return await waitFor(
      `${count} verified recordings`,
      async () => {
        const recs = (seen = await dock.recordings());
        return recs.length === count && recs.every((r) => r.status === 'verified' && (!deleted || r.deletedFromCamera))
          ? recs
          : null;
      },
      opts.timeoutMs ?? 30_000,
    );
  } catch (err) {
    // Which recording was short of it, and how: a timeout alone says nothing about the cause.
    const where = seen.map(
      (r) =>
        `${r.camera} ${r.sourcePath}: ${r.status}${r.deletedFromCamera ? ', deleted' : ''}, ${r.attempts} attempts${r.lastError ? `, ${r.lastError}` : ''}`,
    );
    const d = dock.lastDaemon;
    const tail = d
      ? `\nthe daemon's last lines${d.child.exitCode !== null ? ` (it exited ${d.child.exitCode})` : ''}:\n${d.logs
          .slice(-25)
          .map((l) => JSON.stringify(l))
          .join('\n')}`
      : '';
    throw new Error(`${(err as Error).message}; the store had ${seen.length}: ${where.join('; ') || 'none'}${tail}`);
  }
}

export function readArchived(p: string): Buffer {
  return readFileSync(p);
}
