/**
 * A real Linux guest under QEMU with cameras hot-plugged over USB, for tests that must see what
 * the kernel, udev and node-usb really do. The guest (scripts/vm/build-guest.sh) holds no project
 * code: it mounts this repository read-only at /app and `dataDir` read-write at /data, and runs
 * one command given on its kernel command line, whose output comes back on the serial console
 * as "[guest] LINE".
 *
 *   const vm = await startVm({ dataDir, script: '#!/bin/sh\ncd /app && exec node dist/…' });
 *   await vm.waitForSerial(/^\[guest\] ready$/m, 30_000);
 *   await vm.plugStorage({ id: 'cam1', image, serial: 'CAM-0001' });
 *   ...
 *   await vm.unplug('cam1');
 *   await vm.stop();
 *
 * QEMU is killed by PID in every exit path: stop(), this process's 'exit' event, the kernel when
 * the thread that started QEMU dies (PR_SET_PDEATHSIG), and a detached watchdog besides.
 * See scripts/vm/README.md for costs, debugging and the Debian packages it needs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import {
  accessSync,
  constants,
  createWriteStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  utimesSync,
  writeFileSync,
  type WriteStream,
} from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '../..');
const BUILD_SCRIPT = path.join(ROOT, 'scripts', 'vm', 'build-guest.sh');
const GUEST_PREFIX = '[guest] ';

// ---------------------------------------------------------------------------------------------
// Processes

interface Output {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
}

function run(
  cmd: string,
  args: string[],
  opts: { input?: string | Buffer; env?: NodeJS.ProcessEnv; stderr?: 'pipe' | 'inherit' } = {},
): Promise<Output> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', opts.stderr ?? 'pipe'],
      env: opts.env ?? process.env,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on('data', (b: Buffer) => out.push(b));
    child.stderr?.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.on('close', (code, signal) =>
      resolve({ code, signal, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString() }),
    );
    // A command that exits without reading its input must not become an EPIPE here.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(opts.input);
  });
}

async function runOk(cmd: string, args: string[], opts: Parameters<typeof run>[2] = {}): Promise<Buffer> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.code ?? r.signal}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** QEMU processes alive in this process; killed when it exits, however a test ended. */
const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function track(child: ChildProcess): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const c of live) killPid(c.pid, 'SIGKILL');
  });
}

function killPid(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

const QEMU = 'qemu-system-x86_64';
const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));

/**
 * 'exit' handlers do not run when this process is killed (vitest ends its workers that way), so
 * the kernel is asked to kill QEMU with the thread that started it (util-linux's setpriv, which
 * then execs QEMU under the same PID).
 */
function spawnQemu(args: string[], qemu = QEMU): ChildProcess {
  const child = SETPRIV
    ? spawn(SETPRIV, ['--pdeathsig', 'KILL', '--', qemu, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(qemu, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  track(child);
  return child;
}

/**
 * A second line of defence (no setpriv, a QEMU started from a thread that lives on): a detached
 * shell polls for this process and kills QEMU within a second of its end, and removes the QMP
 * socket's folder.
 */
function startWatchdog(qemuPid: number, runDir: string): ChildProcess {
  const script = [
    'while kill -0 "$2" 2>/dev/null; do',
    '  if ! kill -0 "$1" 2>/dev/null; then kill -9 "$2"; rm -rf "$3"; exit 0; fi',
    '  sleep 1',
    'done',
  ].join('\n');
  const dog = spawn('/bin/sh', ['-c', script, 'dockd-vm-watchdog', String(process.pid), String(qemuPid), runDir], {
    detached: true,
    stdio: 'ignore',
  });
  dog.unref();
  return dog;
}

// ---------------------------------------------------------------------------------------------
// The guest image

export interface Guest {
  /** Folder holding `kernel` and `initramfs.cpio`, named by a hash of their inputs. */
  dir: string;
  kernel: string;
  initrd: string;
}

const guests = new Map<string, Promise<Guest>>();

/**
 * Builds the guest (scripts/vm/build-guest.sh), or finds it cached: ~2 s when cached, 30–100 s
 * on a first run (downloads ~75 MB of .debs). Call it from a beforeAll with a long timeout so
 * that a first build is not charged to a test. Installs missing Debian packages when root.
 */
export function prepareGuest(cacheDir = process.env.DOCKD_VM_CACHE ?? path.join(ROOT, '.vm-cache')): Promise<Guest> {
  let p = guests.get(cacheDir);
  if (!p) {
    p = (async () => {
      // The build's progress goes straight to the terminal: a first build is slow and says why.
      const r = await run('bash', [BUILD_SCRIPT, cacheDir], { stderr: 'inherit' });
      if (r.code !== 0) throw new Error(`${BUILD_SCRIPT} failed (exit ${r.code ?? r.signal})`);
      const dir = r.stdout.toString().trim().split('\n').pop() ?? '';
      const guest = { dir, kernel: path.join(dir, 'kernel'), initrd: path.join(dir, 'initramfs.cpio') };
      if (!existsSync(guest.kernel) || !existsSync(guest.initrd))
        throw new Error(`${BUILD_SCRIPT} printed ${dir}, which holds no guest`);
      return guest;
    })();
    p.catch(() => guests.delete(cacheDir));
    guests.set(cacheDir, p);
  }
  return p;
}

// ---------------------------------------------------------------------------------------------
// QMP

export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
  timestamp?: { seconds: number; microseconds: number };
}

interface Pending {
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
  command: string;
}

/** QEMU's machine protocol: one JSON object a line over a unix socket. */
export class Qmp {
  private readonly pending = new Map<number, Pending>();
  private readonly listeners = new Set<(e: QmpEvent) => void>();
  private nextId = 1;
  private buffer = '';
  private closed: Error | undefined;

  private constructor(private readonly socket: net.Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('close', () => this.fail(new Error('QMP connection closed')));
    socket.on('error', (err) => this.fail(err));
  }

  /** Connects (retrying while QEMU creates the socket) and negotiates capabilities. */
  static async connect(socketPath: string, opts: { timeoutMs: number; gone: () => boolean }): Promise<Qmp> {
    const deadline = Date.now() + opts.timeoutMs;
    for (;;) {
      const socket = await new Promise<net.Socket | Error>((resolve) => {
        const s = net.createConnection(socketPath);
        s.once('connect', () => resolve(s));
        s.once('error', (err) => resolve(err));
      });
      if (socket instanceof net.Socket) {
        const greeting = await new Promise<string>((resolve, reject) => {
          let got = '';
          const onData = (b: Buffer) => {
            got += b.toString();
            if (got.includes('\n')) {
              socket.off('data', onData);
              socket.pause();
              resolve(got);
            }
          };
          socket.on('data', onData);
          socket.once('error', reject);
        });
        if (!greeting.includes('"QMP"')) throw new Error(`not a QMP greeting: ${greeting}`);
        const qmp = new Qmp(socket);
        const rest = greeting.slice(greeting.indexOf('\n') + 1);
        if (rest) qmp.onData(rest);
        socket.resume();
        await qmp.execute('qmp_capabilities');
        return qmp;
      }
      if (opts.gone()) throw new Error('QEMU exited before its QMP socket answered');
      if (Date.now() > deadline) throw new Error(`QMP socket ${socketPath}: ${socket.message}`);
      await sleep(50);
    }
  }

  execute<T = unknown>(command: string, args?: Record<string, unknown>): Promise<T> {
    if (this.closed) return Promise.reject(new Error(`QMP ${command}: ${this.closed.message}`));
    const id = this.nextId++;
    const msg = args === undefined ? { execute: command, id } : { execute: command, arguments: args, id };
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, command });
      this.socket.write(`${JSON.stringify(msg)}\n`);
    });
  }

  /** Calls `listener` for every event until the returned function is called. */
  onEvent(listener: (e: QmpEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Resolves with the first event named `name` that `match` accepts, from now on. */
  waitEvent(name: string, match: (e: QmpEvent) => boolean = () => true, timeoutMs = 10_000): Promise<QmpEvent> {
    return new Promise((resolve, reject) => {
      const off = this.onEvent((e) => {
        if (e.event !== name || !match(e)) return;
        clearTimeout(timer);
        off();
        resolve(e);
      });
      const timer = setTimeout(() => {
        off();
        reject(new Error(`no QMP event ${name} within ${timeoutMs} ms`));
      }, timeoutMs);
    });
  }

  close(): void {
    this.socket.destroy();
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    let nl: number;
    while ((nl = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, nl).trim();
      this.buffer = this.buffer.slice(nl + 1);
      if (line) this.onMessage(JSON.parse(line) as Record<string, unknown>);
    }
  }

  private onMessage(msg: Record<string, unknown>): void {
    if (typeof msg.event === 'string') {
      for (const l of [...this.listeners]) l(msg as unknown as QmpEvent);
      return;
    }
    const id = msg.id;
    const p = typeof id === 'number' ? this.pending.get(id) : undefined;
    if (!p || typeof id !== 'number') return;
    this.pending.delete(id);
    const error = msg.error as { class?: string; desc?: string } | undefined;
    if (error) p.reject(new Error(`QMP ${p.command}: ${error.desc ?? error.class ?? 'error'}`));
    else p.resolve(msg.return);
  }

  private fail(err: Error): void {
    if (this.closed) return;
    this.closed = err;
    for (const p of this.pending.values()) p.reject(new Error(`QMP ${p.command}: ${err.message}`));
    this.pending.clear();
  }
}

// ---------------------------------------------------------------------------------------------
// The machine

export interface StartVmOptions {
  /** Host folder the guest mounts read-write at /data; created when missing. */
  dataDir: string;
  /** Run systemd-udevd in the guest (true). Without it node-usb gets no hot-plug events. */
  udev?: boolean;
  /** Guest memory (1024). The initramfs takes ~120 MB of it. */
  memoryMb?: number;
  /** Virtual CPUs (2). */
  cpus?: number;
  /** Written to `dataDir/guest.sh` (mode 0755) before boot and run as the guest's command. */
  script?: string;
  /** Guest path of the command to run (/data/guest.sh); no spaces. */
  cmd?: string;
  /** Folder mounted read-only at /app (the repository). */
  appDir?: string;
  /** More words for the kernel command line. */
  kernelArgs?: string[];
  /** More QEMU arguments. */
  extraArgs?: string[];
  /** The QEMU program (qemu-system-x86_64); the harness's own test puts a crashing one first. */
  qemu?: string;
  /** Where the serial console is written (`dataDir/serial.log`). */
  serialLog?: string;
  /** How long init may take to start the command (120 s). */
  bootTimeoutMs?: number;
  /** 'auto' uses KVM only where /dev/kvm exists and a probe boot succeeded ($DOCKD_VM_ACCEL or 'auto'). */
  accel?: 'auto' | 'kvm' | 'tcg';
  /** Copy serial lines to stderr as they come ($DOCKD_VM_ECHO=1). */
  echo?: boolean;
  cacheDir?: string;
}

export interface PlugStorageOptions {
  /** QEMU device id; also names the block node (`ID-disk`). Letters, digits, `-`, `_`, `.`. */
  id: string;
  /** Raw disk image, e.g. from makeFatImage(). */
  image: string;
  /** USB serial number string (iSerialNumber). */
  serial: string;
  /**
   * Controller port "1"–"8". Each carries both speeds: QEMU's xHCI pairs USB 2 port N with USB 3
   * port N, so usb-storage (SuperSpeed) on port "3" is Linux's "2-3" (second root hub) and the
   * High-Speed-only usb-mtp on port "3" is "1-3". "9" and up do not exist (device_add refuses
   * them). By default QEMU takes a free one.
   */
  port?: string;
  readOnly?: boolean;
}

export interface PlugMtpOptions {
  id: string;
  /** Host folder the device serves. */
  rootdir: string;
  serial: string;
  /** Refuse deletes and writes (false). */
  readonly?: boolean;
  /** Storage description shown by GetStorageInfo. */
  desc?: string;
  port?: string;
}

export interface WaitOptions {
  /** Offset into `vm.serial` where the search starts (0); take `vm.serial.length` before acting. */
  from?: number;
}

export interface Vm {
  readonly pid: number;
  readonly dataDir: string;
  readonly serialLog: string;
  readonly guest: Guest;
  readonly accel: 'kvm' | 'tcg';
  /** Milliseconds from spawning QEMU until init started the command. */
  readonly bootMs: number;
  /** Everything the serial console printed so far, "\r" removed. */
  readonly serial: string;
  readonly qmp: Qmp;
  /** True once QEMU has exited. */
  readonly exited: boolean;
  /**
   * Waits for `pattern` in complete lines of the serial output (use the `m` flag and `^…$` for
   * one line). The match's `index` is an offset into `serial`. Rejects at once if QEMU exits.
   */
  waitForSerial(pattern: RegExp, timeoutMs?: number, opts?: WaitOptions): Promise<RegExpExecArray>;
  /** The command's output lines so far, without the "[guest] " prefix. */
  guestLines(): string[];
  plugStorage(opts: PlugStorageOptions): Promise<void>;
  plugMtp(opts: PlugMtpOptions): Promise<void>;
  /** device_del, waits for DEVICE_DELETED, then removes a storage device's block node. */
  unplug(id: string): Promise<void>;
  /** QEMU's own view: `info usb`. */
  usbInfo(): Promise<string>;
  /**
   * Bytes QEMU has read from files so far (`rchar` of its /proc/PID/io). Disk images are files, so
   * while the guest reads a camera this counts how far it got, without asking the guest.
   */
  hostReadBytes(): number;
  /** Waits for the guest to power off; its command's exit code, or null if it never wrote one. */
  exitCode(timeoutMs?: number): Promise<number | null>;
  /** Kills QEMU (SIGKILL, by PID) and waits for it. Safe to call twice. */
  stop(): Promise<void>;
}

const ID_RE = /^[A-Za-z][A-Za-z0-9_.-]{0,25}$/;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

function canUseKvm(): boolean {
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

function qemuArgs(
  guest: Guest,
  o: {
    accel: 'kvm' | 'tcg';
    memoryMb: number;
    cpus: number;
    append: string;
    qmpSocket?: string;
    shares: Array<{ tag: string; dir: string; readonly: boolean }>;
  },
): string[] {
  const args = [
    '-nodefaults',
    '-no-user-config',
    '-display',
    'none',
    '-no-reboot',
    ...(o.accel === 'kvm' ? ['-accel', 'kvm', '-cpu', 'host'] : ['-accel', 'tcg,thread=multi', '-cpu', 'max']),
    '-smp',
    String(o.cpus),
    '-m',
    String(o.memoryMb),
    '-kernel',
    guest.kernel,
    '-initrd',
    guest.initrd,
    '-append',
    o.append,
    '-serial',
    'stdio',
    // More root-hub ports than the default 4+4: a dock holds many cameras.
    '-device',
    'qemu-xhci,id=xhci,p2=8,p3=8',
  ];
  for (const s of o.shares) {
    args.push(
      '-virtfs',
      `local,path=${s.dir},mount_tag=${s.tag},security_model=none${s.readonly ? ',readonly=on' : ''}`,
    );
  }
  if (o.qmpSocket) args.push('-qmp', `unix:${o.qmpSocket},server=on,wait=off`);
  return args;
}

const BASE_APPEND = 'console=ttyS0 quiet panic=-1 mitigations=off';

/**
 * The notes this harness grew from found a /dev/kvm whose nested module cannot run a stock kernel
 * (boots hang or die with "emulation failure"), so KVM is used only after one probe boot of this
 * guest reached its command. The answer is kept beside the guest.
 */
async function chooseAccel(guest: Guest, want: 'auto' | 'kvm' | 'tcg'): Promise<'kvm' | 'tcg'> {
  if (want !== 'auto') return want;
  if (!canUseKvm()) return 'tcg';
  const verdictFile = path.join(guest.dir, 'kvm-probe');
  if (existsSync(verdictFile)) return readFileSync(verdictFile, 'utf8').trim() === 'kvm' ? 'kvm' : 'tcg';
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'dockd-kvm-probe-'));
  const args = qemuArgs(guest, {
    accel: 'kvm',
    memoryMb: 512,
    cpus: 1,
    append: `${BASE_APPEND} dockd.udev=0 dockd.cmd=/bin/true`,
    shares: [
      { tag: 'app', dir: scratch, readonly: true },
      { tag: 'data', dir: scratch, readonly: false },
    ],
  });
  const child = spawnQemu(args);
  let out = '';
  child.stdout?.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr?.on('data', (b: Buffer) => (out += b.toString()));
  const ok = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 30_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(/dockd-init: exit 0/.test(out));
    });
  });
  killPid(child.pid, 'SIGKILL');
  rmSync(scratch, { recursive: true, force: true });
  const verdict = ok ? 'kvm' : 'tcg';
  writeFileSync(verdictFile, `${verdict}\n`);
  return verdict;
}

/** Boots the guest and resolves once its init has started the command (udev settled, if on). */
export async function startVm(options: StartVmOptions): Promise<Vm> {
  try {
    return await bootVm(options);
  } catch (err) {
    // QEMU itself has died of a signal before the guest printed a line (a general protection fault
    // under TCG, seen once in CI). Nothing of ours ran yet, so one more boot tests the same thing.
    if (!(err instanceof QemuCrashedError)) throw err;
    process.stderr.write(`${err.message.split('\n')[0]}; booting once more\n`);
    return bootVm(options);
  }
}

class QemuCrashedError extends Error {}

async function bootVm(options: StartVmOptions): Promise<Vm> {
  const dataDir = path.resolve(options.dataDir);
  mkdirSync(dataDir, { recursive: true });
  const appDir = path.resolve(options.appDir ?? ROOT);
  const udev = options.udev ?? true;
  const cmd = options.cmd ?? '/data/guest.sh';
  if (options.script !== undefined) writeFileSync(path.join(dataDir, 'guest.sh'), options.script, { mode: 0o755 });
  if (/[\s"']/.test(cmd)) throw new Error(`guest command must be a path without spaces or quotes: ${cmd}`);
  for (const dir of [dataDir, appDir]) {
    if (/,/.test(dir)) throw new Error(`QEMU cannot share a folder whose path holds a comma: ${dir}`);
  }
  rmSync(path.join(dataDir, 'exit-code'), { force: true });

  const guest = await prepareGuest(options.cacheDir);
  const envAccel = process.env.DOCKD_VM_ACCEL;
  const accel = await chooseAccel(
    guest,
    options.accel ?? (envAccel === 'kvm' || envAccel === 'tcg' ? envAccel : 'auto'),
  );

  // A unix socket path must stay under 108 bytes, which dataDir may not.
  const runDir = mkdtempSync(path.join(os.tmpdir(), 'dockd-vm-'));
  const qmpSocket = path.join(runDir, 'qmp.sock');
  const serialLog = path.resolve(options.serialLog ?? path.join(dataDir, 'serial.log'));
  const append = [
    BASE_APPEND,
    `dockd.cmd=${cmd}`,
    ...(udev ? [] : ['dockd.udev=0']),
    ...(options.kernelArgs ?? []),
  ].join(' ');
  const args = [
    ...qemuArgs(guest, {
      accel,
      memoryMb: options.memoryMb ?? 1024,
      cpus: options.cpus ?? 2,
      append,
      qmpSocket,
      shares: [
        { tag: 'app', dir: appDir, readonly: true },
        { tag: 'data', dir: dataDir, readonly: false },
      ],
    }),
    ...(options.extraArgs ?? []),
  ];

  const spawnedAt = Date.now();
  const child = spawnQemu(args, options.qemu);
  if (child.pid === undefined) {
    const err = await new Promise<Error>((resolve) => child.once('error', resolve));
    rmSync(runDir, { recursive: true, force: true });
    throw new Error(`cannot start ${options.qemu ?? QEMU}: ${err.message}`);
  }
  const pid = child.pid;
  const watchdog = startWatchdog(pid, runDir);
  const log: WriteStream = createWriteStream(serialLog, { flags: 'w' });
  log.write(`# ${QEMU} ${args.map(shellQuote).join(' ')}\n`);
  const echo = options.echo ?? process.env.DOCKD_VM_ECHO === '1';

  let serial = '';
  let hasExited = false;
  let exitSignal: NodeJS.Signals | null = null;
  const waiters = new Set<() => void>();
  const notify = () => {
    for (const w of [...waiters]) w();
  };
  child.stdout?.on('data', (b: Buffer) => {
    const text = b.toString().replace(/\r/g, '');
    serial += text;
    log.write(text);
    if (echo) process.stderr.write(text);
    notify();
  });
  let stderrText = '';
  child.stderr?.on('data', (b: Buffer) => {
    const text = b.toString();
    stderrText += text;
    log.write(text.replace(/^/gm, '[qemu] '));
    if (echo) process.stderr.write(text);
  });
  // 'close', not 'exit': the console's last lines may still be in the pipe when QEMU exits.
  const exitedPromise = new Promise<void>((resolve) => {
    child.once('close', (code, signal) => {
      hasExited = true;
      exitSignal = signal;
      log.write(`\n# qemu exited: ${code ?? signal}\n`);
      resolve();
      notify();
    });
  });

  const describeEnd = () => {
    const tail = serial.split('\n').slice(-40).join('\n');
    return `${stderrText ? `qemu stderr: ${stderrText.trim()}\n` : ''}last serial lines (full log: ${serialLog}):\n${tail}`;
  };

  const waitForSerial = (pattern: RegExp, timeoutMs = 30_000, opts: WaitOptions = {}): Promise<RegExpExecArray> => {
    const from = opts.from ?? 0;
    const re = new RegExp(pattern.source, pattern.flags.replace(/[gy]/g, ''));
    return new Promise((resolve, reject) => {
      const check = () => {
        // Only complete lines: a JSON line half-received would match a prefix pattern.
        const end = serial.lastIndexOf('\n') + 1;
        if (end > from) {
          const m = re.exec(serial.slice(from, end));
          if (m) {
            m.index += from;
            done();
            resolve(m);
            return;
          }
        }
        if (hasExited) {
          done();
          reject(new Error(`QEMU exited while waiting for ${pattern}\n${describeEnd()}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no ${pattern} on the serial console within ${timeoutMs} ms\n${describeEnd()}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });
  };

  let qmp: Qmp | undefined;
  let stopped = false;
  const stop = async () => {
    if (!stopped) {
      stopped = true;
      killPid(pid, 'SIGKILL');
    }
    await exitedPromise;
    qmp?.close();
    // The watchdog runs in a group of its own (detached), with its `sleep`.
    if (watchdog.pid !== undefined) killPid(-watchdog.pid, 'SIGKILL');
    rmSync(runDir, { recursive: true, force: true });
    await new Promise<void>((resolve) => log.end(resolve));
  };

  let bootMs: number;
  try {
    qmp = await Qmp.connect(qmpSocket, { timeoutMs: 20_000, gone: () => hasExited });
    await waitForSerial(/^dockd-init: start /m, options.bootTimeoutMs ?? 120_000);
    bootMs = Date.now() - spawnedAt;
  } catch (err) {
    const crashed = hasExited && !stopped && exitSignal !== null && serial.trim() === '';
    await stop();
    const message = err instanceof Error ? err.message : String(err);
    if (crashed)
      throw new QemuCrashedError(`QEMU died of ${exitSignal} before the guest printed anything\n${describeEnd()}`);
    throw new Error(message.includes('last serial lines') ? message : `${message}\n${describeEnd()}`);
  }
  const q = qmp;

  const plugged = new Map<string, 'storage' | 'mtp'>();
  const checkId = (id: string) => {
    if (!ID_RE.test(id)) throw new Error(`device id must match ${ID_RE}: ${id}`);
    if (plugged.has(id)) throw new Error(`device ${id} is already plugged`);
  };

  const vm: Vm = {
    pid,
    dataDir,
    serialLog,
    guest,
    accel,
    bootMs,
    get serial() {
      return serial;
    },
    qmp: q,
    get exited() {
      return hasExited;
    },
    waitForSerial,
    guestLines() {
      return serial
        .split('\n')
        .filter((l) => l.startsWith(GUEST_PREFIX))
        .map((l) => l.slice(GUEST_PREFIX.length));
    },
    async plugStorage(o) {
      checkId(o.id);
      const node = `${o.id}-disk`;
      const readOnly = o.readOnly ?? false;
      await q.execute('blockdev-add', {
        driver: 'raw',
        'node-name': node,
        'read-only': readOnly,
        file: { driver: 'file', filename: path.resolve(o.image), 'read-only': readOnly },
      });
      try {
        await q.execute('device_add', {
          driver: 'usb-storage',
          id: o.id,
          bus: 'xhci.0',
          drive: node,
          serial: o.serial,
          removable: true,
          ...(o.port !== undefined ? { port: o.port } : {}),
        });
      } catch (err) {
        await q.execute('blockdev-del', { 'node-name': node }).catch(() => undefined);
        throw err;
      }
      plugged.set(o.id, 'storage');
    },
    async plugMtp(o) {
      checkId(o.id);
      await q.execute('device_add', {
        driver: 'usb-mtp',
        id: o.id,
        bus: 'xhci.0',
        rootdir: path.resolve(o.rootdir),
        readonly: o.readonly ?? false,
        serial: o.serial,
        ...(o.desc !== undefined ? { desc: o.desc } : {}),
        ...(o.port !== undefined ? { port: o.port } : {}),
      });
      plugged.set(o.id, 'mtp');
    },
    async unplug(id) {
      const kind = plugged.get(id);
      // Listen before asking: a USB device is gone before device_del even returns.
      const deleted = q.waitEvent('DEVICE_DELETED', (e) => e.data?.device === id, 10_000);
      deleted.catch(() => undefined);
      await q.execute('device_del', { id });
      await deleted;
      plugged.delete(id);
      if (kind !== 'storage') return;
      // The drive is released a moment after the device; until then blockdev-del says "in use".
      for (let attempt = 0; ; attempt++) {
        try {
          await q.execute('blockdev-del', { 'node-name': `${id}-disk` });
          return;
        } catch (err) {
          if (attempt >= 20) throw err;
          await sleep(50);
        }
      }
    },
    async usbInfo() {
      return q.execute<string>('human-monitor-command', { 'command-line': 'info usb' });
    },
    hostReadBytes() {
      const m = /^rchar: (\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'));
      if (!m) throw new Error(`no rchar in /proc/${pid}/io`);
      return Number(m[1]);
    },
    async exitCode(timeoutMs = 120_000) {
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), timeoutMs);
      });
      const r = await Promise.race([exitedPromise, timedOut]);
      clearTimeout(timer);
      if (r === 'timeout') throw new Error(`guest still running after ${timeoutMs} ms\n${describeEnd()}`);
      try {
        const n = parseInt(readFileSync(path.join(dataDir, 'exit-code'), 'utf8'), 10);
        return Number.isFinite(n) ? n : null;
      } catch {
        return null;
      }
    },
    stop,
  };
  return vm;
}

// ---------------------------------------------------------------------------------------------
// FAT images, built and read without loop mounts (mtools)

export interface FatFile {
  /** Path inside the filesystem, e.g. 'DCIM/100BODY/REC0001.MP4'. */
  path: string;
  data: Buffer;
  /** Modification time as stored in the directory entry (FAT keeps local time, 2 s steps). */
  mtime?: Date;
}

export interface MakeFatImageOptions {
  path: string;
  /** Whole disk size (64). FAT32 needs at least ~40 MB. */
  sizeMb?: number;
  files?: FatFile[];
  /** Volume label, at most 11 characters. */
  label?: string;
}

/** The partition starts at 1 MiB: mtools addresses it as IMAGE@@1M. */
const PARTITION = '@@1M';
const MTOOLS_ENV = { ...process.env, MTOOLS_SKIP_CHECK: '1' };

/** A disk image with an MBR and one FAT32 partition at 1 MiB, holding `files`. */
export async function makeFatImage(o: MakeFatImageOptions): Promise<string> {
  const image = path.resolve(o.path);
  const sizeMb = o.sizeMb ?? 64;
  await runOk('truncate', ['-s', `${sizeMb}M`, image]);
  // Type c: FAT32 with LBA, what cameras and card formatters write.
  await runOk('sfdisk', ['--quiet', image], { input: 'label: dos\nstart=2048, type=c\n' });
  const target = `${image}${PARTITION}`;
  await runOk('mformat', ['-i', target, '-F', '-H', '2048', '-v', o.label ?? 'CAMERA', '::'], { env: MTOOLS_ENV });
  const files = o.files ?? [];
  if (files.length === 0) return image;
  // One mcopy of a mirrored tree: a call per file costs ~10 ms each.
  const tree = mkdtempSync(path.join(os.tmpdir(), 'dockd-fat-'));
  try {
    const tops = new Set<string>();
    for (const f of files) {
      const rel = f.path.replace(/^\/+/, '');
      const local = path.join(tree, rel);
      mkdirSync(path.dirname(local), { recursive: true });
      writeFileSync(local, f.data);
      if (f.mtime) utimesSync(local, f.mtime, f.mtime);
      tops.add(rel.split('/')[0] ?? rel);
    }
    await runOk('mcopy', ['-i', target, '-s', '-m', '-Q', ...[...tops].map((t) => path.join(tree, t)), '::'], {
      env: MTOOLS_ENV,
    });
  } finally {
    rmSync(tree, { recursive: true, force: true });
  }
  return image;
}

/** A file's bytes from an image made by makeFatImage(), or null if it is not there. Unplug first. */
export async function readFatImage(image: string, file: string): Promise<Buffer | null> {
  const r = await run(
    'mcopy',
    ['-n', '-i', `${path.resolve(image)}${PARTITION}`, `::${file.replace(/^\/+/, '')}`, '-'],
    { env: MTOOLS_ENV },
  );
  if (r.code === 0) return r.stdout;
  if (/not found/i.test(r.stderr)) return null;
  throw new Error(`mcopy ::${file} from ${image}: ${r.stderr.trim()}`);
}

/**
 * Every file (not folder) in an image made by makeFatImage(), as 'DCIM/100BODY/REC0001.MP4';
 * with `hidden`, files with the hidden attribute too.
 */
export async function listFatImage(image: string, opts: { hidden?: boolean } = {}): Promise<string[]> {
  const args = ['-i', `${path.resolve(image)}${PARTITION}`, '-/', '-b', ...(opts.hidden ? ['-a'] : []), '::'];
  const out = await runOk('mdir', args, { env: MTOOLS_ENV });
  return out
    .toString()
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith('::/') && !l.endsWith('/'))
    .map((l) => l.slice(3))
    .sort();
}

/**
 * Writes `data` as `file` on an image made by makeFatImage(), over what is there (as a camera
 * does when it reuses a name), with the modification time `mtime`. Unplug first.
 */
export async function writeFatFile(image: string, file: string, data: Buffer, mtime: Date): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dockd-fat-'));
  try {
    const local = path.join(dir, path.posix.basename(file));
    writeFileSync(local, data);
    utimesSync(local, mtime, mtime);
    await runOk(
      'mcopy',
      ['-i', `${path.resolve(image)}${PARTITION}`, '-o', '-m', '-Q', local, `::${file.replace(/^\/+/, '')}`],
      { env: MTOOLS_ENV },
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
