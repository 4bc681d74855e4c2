/**
 * A real S3 store with Object Lock for tests: a single-node Ceph RADOS Gateway started by
 * scripts/rgw/start.sh in a temporary folder, on 127.0.0.1 only.
 *
 *   const rgw = await startRgw();   // in beforeAll
 *   ...
 *   await rgw.stop();               // in afterAll
 *
 * Daemons left by a test that fails or a runner that dies are still ended: on this process's
 * exit they are killed by PID, and start.sh's watchdog kills them once this process is gone
 * (even after SIGKILL).
 */
import { execFile } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { s3ClientFor } from '../../src/replication/store.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const SCRIPTS = path.join(ROOT, 'scripts', 'rgw');
const INSTALL_HINT = 'run scripts/rgw/install.sh as root (it installs ceph-mon ceph-osd radosgw ceph-common)';
const REQUIRED = ['ceph-mon', 'ceph-osd', 'radosgw', 'radosgw-admin', 'ceph', 'monmaptool'];

export interface RgwPids {
  mon: number;
  osd: number;
  rgw: number;
}

export interface Rgw {
  /** http://127.0.0.1:PORT; use path-style addressing. */
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** Folder holding the whole cluster: ceph.conf, data, logs (log/), pid files (run/). */
  dir: string;
  /** PIDs of the current daemons; rgw changes on restartRgw(). */
  readonly pids: RgwPids;
  /** Stops every daemon (SIGKILL) and removes dir. Safe to call twice. */
  stop(): Promise<void>;
  /** Takes the S3 endpoint away: radosgw alone is stopped, by SIGKILL (a crash) unless told. */
  killRgw(signal?: 'SIGKILL' | 'SIGTERM'): Promise<void>;
  /** Starts radosgw again on the same port with the kept data; resolves once S3 answers. */
  restartRgw(): Promise<void>;
}

export interface StartRgwOptions {
  /** S3 port; a free one by default. */
  port?: number;
  /** Seconds start.sh may take before it gives up (60). */
  timeoutSec?: number;
}

interface Ready {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  pids: RgwPids;
}

interface ScriptResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Clusters whose daemons may still run, for the exit handler. */
const live = new Map<string, () => RgwPids>();
let exitHandlerInstalled = false;

function missingPackages(): string[] {
  const dirs = (process.env.PATH ?? '').split(path.delimiter).filter(Boolean);
  return REQUIRED.filter(
    (cmd) =>
      !dirs.some((d) => {
        try {
          accessSync(path.join(d, cmd), constants.X_OK);
          return true;
        } catch {
          return false;
        }
      }),
  );
}

function runScript(
  script: string,
  args: string[],
  timeoutMs: number,
  env: NodeJS.ProcessEnv = {},
): Promise<ScriptResult> {
  return new Promise((resolve) => {
    execFile(
      'bash',
      [path.join(SCRIPTS, script), ...args],
      // The watchdog needs to know whose exit should end the cluster.
      {
        env: { ...process.env, ...env, RGW_OWNER_PID: String(process.pid) },
        timeout: timeoutMs,
        killSignal: 'SIGKILL',
      },
      (err, stdout, stderr) => {
        const e = err as (Error & { code?: number | string; killed?: boolean }) | null;
        const code = e === null ? 0 : typeof e.code === 'number' ? e.code : -1;
        resolve({ code, stdout, stderr: e?.killed ? `${stderr}\n(${script} killed after ${timeoutMs} ms)` : stderr });
      },
    );
  });
}

function parseReady(stdout: string): Ready {
  const line = stdout.split('\n').find((l) => l.startsWith('RGW_READY '));
  if (line === undefined) throw new Error(`start.sh printed no RGW_READY line:\n${stdout}`);
  const fields = new Map<string, string>();
  for (const part of line.slice('RGW_READY '.length).trim().split(/\s+/)) {
    const eq = part.indexOf('=');
    if (eq > 0) fields.set(part.slice(0, eq), part.slice(eq + 1));
  }
  const get = (k: string): string => {
    const v = fields.get(k);
    if (v === undefined || v === '') throw new Error(`RGW_READY line lacks ${k}: ${line}`);
    return v;
  };
  const [mon, osd, rgw] = get('pids').split(',').map(Number);
  if (![mon, osd, rgw].every((p) => Number.isInteger(p) && (p as number) > 0)) {
    throw new Error(`RGW_READY line has bad pids: ${line}`);
  }
  return {
    endpoint: get('endpoint'),
    accessKeyId: get('access_key'),
    secretAccessKey: get('secret_key'),
    pids: { mon: mon as number, osd: osd as number, rgw: rgw as number },
  };
}

/** True if PID is alive and was started with this cluster's ceph.conf or folder as an argument. */
function belongsTo(pid: number, dir: string): boolean {
  try {
    const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return args.includes(path.join(dir, 'ceph.conf')) || args.includes(dir);
  } catch {
    return false;
  }
}

/** Synchronous last resort, for process exit: SIGKILL by PID, checked against the cluster. */
function killNow(dir: string, pids: RgwPids): void {
  const targets = [pids.rgw, pids.osd, pids.mon];
  for (const name of ['client.rgw.a', 'osd.0', 'mon.a']) {
    try {
      targets.push(Number(readFileSync(path.join(dir, 'run', `${name}.pid`), 'utf8').trim()));
    } catch {
      // no pid file: that daemon was never started or has stopped cleanly
    }
  }
  for (const pid of new Set(targets)) {
    if (Number.isInteger(pid) && pid > 0 && belongsTo(pid, dir)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  try {
    const wpid = Number(readFileSync(path.join(dir, 'run', 'watchdog.pid'), 'utf8').trim());
    // The watchdog leads its own process group (with its sleep).
    if (Number.isInteger(wpid) && wpid > 0 && belongsTo(wpid, dir)) process.kill(-wpid, 'SIGKILL');
  } catch {
    // no watchdog
  }
}

function installExitHandler(): void {
  if (exitHandlerInstalled) return;
  exitHandlerInstalled = true;
  process.on('exit', () => {
    for (const [dir, pids] of live) {
      killNow(dir, pids());
      rmSync(dir, { recursive: true, force: true });
    }
    live.clear();
  });
}

function scriptError(what: string, r: ScriptResult): Error {
  if (r.code === 3) return new Error(`${what}: Ceph is not installed: ${INSTALL_HINT}.\n${r.stderr.trim()}`);
  return new Error(`${what} failed (exit ${r.code}):\n${r.stderr.trim()}\n${r.stdout.trim()}`.trim());
}

/** A client for the test's own looks at the store, built as dockd builds its own (SDK retries on). */
export function rgwClient(r: Pick<Rgw, 'endpoint' | 'accessKeyId' | 'secretAccessKey'>): S3Client {
  return s3ClientFor(
    { endpoint: r.endpoint, region: 'us-east-1', forcePathStyle: true },
    { accessKeyId: r.accessKeyId, secretAccessKey: r.secretAccessKey },
    3,
  );
}

export async function startRgw(opts: StartRgwOptions = {}): Promise<Rgw> {
  const missing = missingPackages();
  if (missing.length > 0) {
    throw new Error(`Ceph is not installed (${missing.join(', ')} not found on PATH): ${INSTALL_HINT}.`);
  }
  installExitHandler();
  // Short: Ceph's admin sockets under it must fit the 107-byte limit of Unix socket paths.
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rgw-'));
  const timeoutSec = opts.timeoutSec ?? 60;
  const startArgs = opts.port === undefined ? [dir] : [dir, String(opts.port)];
  let pids: RgwPids = { mon: 0, osd: 0, rgw: 0 };
  live.set(dir, () => pids);

  const start = async (what: string): Promise<Ready> => {
    const r = await runScript('start.sh', startArgs, (timeoutSec + 30) * 1000, {
      RGW_READY_TIMEOUT: String(timeoutSec),
      // dir is ours and temporary: the watchdog may remove it too.
      RGW_OWNER_TEMP: '1',
    });
    if (r.code !== 0) throw scriptError(what, r);
    return parseReady(r.stdout);
  };

  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    const r = await runScript('stop.sh', [dir, '--kill'], 60_000);
    killNow(dir, pids);
    live.delete(dir);
    rmSync(dir, { recursive: true, force: true });
    if (r.code !== 0) throw scriptError('scripts/rgw/stop.sh', r);
  };

  let ready: Ready;
  try {
    ready = await start('scripts/rgw/start.sh');
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
  pids = ready.pids;

  return {
    endpoint: ready.endpoint,
    accessKeyId: ready.accessKeyId,
    secretAccessKey: ready.secretAccessKey,
    dir,
    get pids() {
      return { ...pids };
    },
    stop,
    async killRgw(signal = 'SIGKILL') {
      if (stopped) throw new Error('killRgw() after stop()');
      const args = signal === 'SIGKILL' ? [dir, '--rgw-only', '--kill'] : [dir, '--rgw-only'];
      const r = await runScript('stop.sh', args, 60_000);
      if (r.code !== 0) throw scriptError('scripts/rgw/stop.sh --rgw-only', r);
    },
    async restartRgw() {
      if (stopped) throw new Error('restartRgw() after stop()');
      const again = await start('scripts/rgw/start.sh (restart)');
      if (again.endpoint !== ready.endpoint) {
        throw new Error(`RGW came back on ${again.endpoint}, not ${ready.endpoint}`);
      }
      pids = again.pids;
    },
  };
}
