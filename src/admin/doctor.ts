/**
 * `dockd doctor`: everything an unattended dock PC can get wrong that the daemon cannot fix by
 * itself, each as one check with one line saying what to do about it. Nothing here writes to the
 * store; the only lock taken is the brief probe of the daemon lock.
 */
import {
  accessSync,
  constants,
  existsSync,
  readdirSync,
  readFileSync,
  statfsSync,
  statSync,
  type Stats,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Config } from '../config.js';
import { dbPath } from '../store/db.js';
import { newestCustodyAt } from '../store/custody-log.js';
import { DataDirLock } from '../store/lock.js';
import { MIGRATIONS } from '../store/schema.js';
import { readDaemon, type DaemonRow } from '../store/heartbeat.js';
import {
  describeKeyFile,
  keyDir,
  keyIdOf,
  PRIVATE_KEY_FILE,
  PUBLIC_KEY_FILE,
  rawPublicKey,
  readPrivateKeyFile,
  readPublicKeyFile,
} from '../crypto/signing.js';
import { checkpointsSigned } from '../store/checkpoints.js';
import { bytes, duration } from '../lib/format.js';
import { openExistingStore, type InspectedStore } from './store-file.js';
import { chunkAead, type ChunkAead } from '../crypto/aead.js';

export type CheckStatus = 'ok' | 'warn' | 'fail';

export interface Check {
  name: string;
  status: CheckStatus;
  detail: string;
  /** One line saying what to do; null when there is nothing to do. */
  fix: string | null;
}

export interface DoctorReport {
  ok: boolean;
  checks: Check[];
}

/** Side effects that tests and other platforms replace; the defaults are the real machine. */
export interface DoctorEnv {
  now: () => number;
  uid: () => number;
  sysUsb: string;
  devUsb: string;
  /** Which ChaCha20-Poly1305 seals encrypted copies (src/crypto/aead.ts). */
  aead: ChunkAead['kind'];
}

export const WAL_WARN_BYTES = 512 * 1024 * 1024;
const MIN_YEAR = 2024;
const DAY_MS = 24 * 3600 * 1000;
const CLOCK_WARN_MS = 5 * 60 * 1000;

const defaultEnv: DoctorEnv = {
  now: () => Date.now(),
  uid: () => process.getuid?.() ?? -1,
  sysUsb: '/sys/bus/usb',
  devUsb: '/dev/bus/usb',
  aead: chunkAead.kind,
};

const ok = (name: string, detail: string): Check => ({ name, status: 'ok', detail, fix: null });
const warn = (name: string, detail: string, fix: string): Check => ({ name, status: 'warn', detail, fix });
const fail = (name: string, detail: string, fix: string): Check => ({ name, status: 'fail', detail, fix });

function octal(mode: number): string {
  return '0' + (mode & 0o777).toString(8).padStart(3, '0');
}

function statOrNull(p: string): Stats | null {
  try {
    return statSync(p);
  } catch {
    return null;
  }
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Node has no getpwuid; /etc/passwd names the local users a dock PC has. */
export function userName(uid: number): string {
  try {
    for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const [name, , id] = line.split(':');
      if (name && id === String(uid)) return name;
    }
  } catch {
    // no passwd file: fall through to the number
  }
  return `uid ${uid}`;
}

function currentUser(uid: number): string {
  try {
    return os.userInfo().username;
  } catch {
    return userName(uid);
  }
}

export function configCheck(configFile: string | null, cfg: Config): Check {
  const where = configFile ? `loaded ${configFile}` : 'no config file; built-in defaults';
  return ok('config', `${where} (data dir ${cfg.dataDir})`);
}

function dataDirCheck(dataDir: string, env: DoctorEnv): { check: Check; exists: boolean } {
  const st = statOrNull(dataDir);
  if (!st)
    return {
      exists: false,
      check: fail(
        'data-dir',
        `${dataDir} does not exist`,
        'start the daemon once (it creates the data dir), or check dataDir in the config and --data-dir',
      ),
    };
  if (!st.isDirectory())
    return { exists: false, check: fail('data-dir', `${dataDir} is not a directory`, 'point dataDir at a directory') };
  const uid = env.uid();
  if (uid >= 0 && st.uid !== uid) {
    const owner = userName(st.uid);
    return {
      exists: true,
      check: fail(
        'data-dir',
        `${dataDir} is owned by ${owner}, not by ${currentUser(uid)} running this check`,
        `run doctor as the user the daemon runs as (sudo -u ${owner} dockd doctor), or hand the data dir to that user: chown -R USER: ${dataDir}`,
      ),
    };
  }
  if (st.mode & 0o007)
    return {
      exists: true,
      check: warn('data-dir', `${dataDir} is open to other users (mode ${octal(st.mode)})`, `chmod 750 ${dataDir}`),
    };
  return { exists: true, check: ok('data-dir', `${dataDir} (mode ${octal(st.mode)}, owned by ${currentUser(uid)})`) };
}

/** Footage and the custody log are evidence: other local users must not read them. */
function permissionsCheck(dataDir: string): Check {
  const db = dbPath(dataDir);
  const open: string[] = [];
  const fixes: string[] = [];
  for (const f of [db, db + '-wal', db + '-shm']) {
    const st = statOrNull(f);
    if (st && st.mode & 0o007) {
      open.push(`${path.basename(f)} ${octal(st.mode)}`);
      fixes.push(f);
    }
  }
  const archive = path.join(dataDir, 'archive');
  const ast = statOrNull(archive);
  if (ast && ast.mode & 0o007) open.push(`archive/ ${octal(ast.mode)}`);
  if (!open.length) return ok('permissions', 'dockd.db and archive/ are closed to other users');
  const cmds = [
    fixes.length ? `chmod o-rwx ${fixes.join(' ')}` : null,
    ast && ast.mode & 0o007 ? `chmod -R o-rwx ${archive}` : null,
  ].filter(Boolean);
  return fail(
    'permissions',
    `readable by other users: ${open.join(', ')}`,
    `${cmds.join(' && ')}; run the daemon with UMask=0027 (as scripts/service/dockd.service does)`,
  );
}

/** Whoever reads the dock's private key can sign a forged custody chain head. */
/**
 * What the daemon's next start will make of the key files (src/custody/dock-key.ts): a torn or
 * lost private key that signed custody checkpoints stops it; one that signed none is replaced.
 * Null when the files hold a key pair, or hold nothing yet.
 */
function keyContentsCheck(dataDir: string, store: InspectedStore | null): Check | null {
  let priv, pub;
  try {
    priv = readPrivateKeyFile(dataDir);
    pub = readPublicKeyFile(dataDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EACCES') throw err;
    return ok('keys', `keys/ 0700, private key 0600; its contents are readable only by the daemon's user`);
  }
  if (priv.state === 'ok' && pub.state === 'ok') return null;
  if (priv.state === 'missing' && pub.state === 'missing') return null;
  if (priv.state === 'ok')
    return warn(
      'keys',
      `${describeKeyFile(PUBLIC_KEY_FILE, pub)}`,
      'nothing to do: the next start writes it again from the private key',
    );
  const found = `${describeKeyFile(PRIVATE_KEY_FILE, priv)}, ${describeKeyFile(PUBLIC_KEY_FILE, pub)}`;
  const keyId = pub.state === 'ok' ? keyIdOf(rawPublicKey(pub.key)) : null;
  const signed = store ? checkpointsSigned(store.db, keyId) : undefined;
  const restore = `restore ${keyDir(dataDir)} from a backup of this dock before the daemon starts`;
  if (!signed)
    return fail('keys', `${found}; whether it signed custody checkpoints cannot be read (see database)`, restore);
  if (signed.checkpoints > 0)
    return fail(
      'keys',
      `${found}, and it signed ${signed.checkpoints} custody checkpoint(s) up to seq ${signed.lastSeq}: the daemon will not start`,
      restore,
    );
  return warn(
    'keys',
    `${found}; it signed no custody checkpoint, so the next start replaces it with a new key (custody.key_replaced)`,
    `nothing to do, or ${restore} to keep the old key`,
  );
}

function keysCheck(dataDir: string, store: InspectedStore | null): Check {
  const dir = keyDir(dataDir);
  const st = statOrNull(dir);
  if (!st) return ok('keys', 'no dock signing key yet; the daemon creates it at its first start');
  const problems: string[] = [];
  const fixes: string[] = [];
  if (st.mode & 0o077) {
    problems.push(`keys/ is mode ${octal(st.mode)}, not 0700`);
    fixes.push(`chmod 700 ${dir}`);
  }
  const priv = path.join(dir, 'dock-signing.pem');
  const pst = statOrNull(priv);
  if (pst && pst.mode & 0o077) {
    problems.push(`dock-signing.pem is mode ${octal(pst.mode)}, not 0600`);
    fixes.push(`chmod 600 ${priv}`);
  }
  if (problems.length) return fail('keys', problems.join('; '), fixes.join(' && '));
  return (
    keyContentsCheck(dataDir, store) ?? ok('keys', pst ? 'keys/ 0700, private key 0600' : 'keys/ 0700, no private key')
  );
}

function diskCheck(dataDir: string, cfg: Config): Check {
  const archive = path.join(dataDir, 'archive');
  const where = existsSync(archive) ? archive : dataDir;
  let free: number;
  try {
    const st = statfsSync(where);
    free = st.bavail * st.bsize;
  } catch (err) {
    return fail(
      'disk-space',
      `cannot read free space of ${where}: ${errText(err)}`,
      'check that the archive filesystem is mounted',
    );
  }
  const min = cfg.ingest.minFreeBytes;
  const detail = `${bytes(free)} free on the archive filesystem; ingest.minFreeBytes is ${bytes(min)}`;
  const fix =
    'free space on that filesystem or move the data dir to a bigger disk (recordings leave the archive only through retention)';
  if (free < min) return fail('disk-space', `${detail}: offloading is paused`, fix);
  if (free < 2 * min) return warn('disk-space', `${detail}: less than twice the reserve left`, fix);
  return ok('disk-space', detail);
}

const RESTORE_FIX =
  'stop the daemon, keep the damaged file aside, restore the newest backup (README: Backup and restore), then run dockd verify';

function databaseCheck(store: InspectedStore): Check {
  let rows: Array<{ integrity_check: string }>;
  try {
    rows = store.db.pragma('integrity_check') as Array<{ integrity_check: string }>;
  } catch (err) {
    return fail('database', `integrity_check failed: ${errText(err)}`, RESTORE_FIX);
  }
  const msgs = rows.map((r) => r.integrity_check);
  if (msgs.length !== 1 || msgs[0] !== 'ok') {
    const shown = msgs.slice(0, 3).join('; ') + (msgs.length > 3 ? `; … (${msgs.length} problems)` : '');
    return fail('database', `integrity_check: ${shown}`, RESTORE_FIX);
  }
  const version = store.db.pragma('user_version', { simple: true }) as number;
  if (version > MIGRATIONS.length) {
    return fail(
      'database',
      `schema ${version} was written by a newer dockd (this one knows ${MIGRATIONS.length})`,
      'install the dockd version that wrote this database',
    );
  }
  const later =
    version < MIGRATIONS.length ? `; schema ${version} is migrated to ${MIGRATIONS.length} at the next start` : '';
  return ok('database', `integrity_check ok${later}`);
}

function walCheck(store: InspectedStore): Check {
  let mode: string;
  try {
    mode = String(store.db.pragma('journal_mode', { simple: true }));
  } catch (err) {
    return fail('wal', `cannot read journal_mode: ${errText(err)}`, RESTORE_FIX);
  }
  const walBytes = statOrNull(store.file + '-wal')?.size ?? 0;
  if (mode !== 'wal') {
    return warn(
      'wal',
      `journal_mode is ${mode}, not wal`,
      'start the daemon: it switches the database back to WAL; do not open dockd.db with tools that change journal_mode',
    );
  }
  if (walBytes > WAL_WARN_BYTES) {
    return warn(
      'wal',
      `journal_mode wal; dockd.db-wal is ${bytes(walBytes)}`,
      'look for a long-lived reader of dockd.db (a forgotten sqlite3 shell, a status --watch) that keeps the WAL from being checkpointed; a clean daemon stop checkpoints it',
    );
  }
  return ok('wal', `journal_mode wal; dockd.db-wal is ${bytes(walBytes)}`);
}

function heartbeatFresh(row: DaemonRow | undefined, now: number): boolean {
  return !!row && !row.stopped_at && now - Date.parse(row.heartbeat_at) < 3 * row.heartbeat_ms;
}

function daemonCheck(dataDir: string, store: InspectedStore | null, env: DoctorEnv): Check {
  // Probing creates the lock file when it is missing; one owned by whoever runs doctor would
  // then keep the daemon's user from ever starting. No file means no daemon ever held it.
  let held = false;
  if (existsSync(path.join(dataDir, 'daemon.lock'))) {
    try {
      held = DataDirLock.isHeld(dataDir);
    } catch (err) {
      return warn('daemon', `cannot probe the daemon lock: ${errText(err)}`, "run doctor as the daemon's user");
    }
  }
  let row: DaemonRow | undefined;
  try {
    row = store ? readDaemon(store.db) : undefined;
  } catch {
    row = undefined;
  }
  const now = env.now();
  const fresh = heartbeatFresh(row, now);
  const age = row ? `${duration((now - Date.parse(row.heartbeat_at)) / 1000)} ago` : 'never';
  if (held && fresh) return ok('daemon', `running, pid ${row!.pid}, heartbeat ${age}`);
  if (held) {
    return warn(
      'daemon',
      `a daemon holds the lock but its heartbeat is stale (last ${age}${row?.stopped_at ? ', marked stopped' : ''}): hung?`,
      'look at journalctl -u dockd; if it stays stale, systemctl restart dockd',
    );
  }
  if (fresh) {
    return fail(
      'daemon',
      `the heartbeat is fresh (${age}, pid ${row!.pid}) but no daemon holds the lock`,
      'something other than dockd start is writing to this data dir, or the daemon died just now: look at journalctl -u dockd and run doctor again',
    );
  }
  const last = row
    ? row.stopped_at
      ? `stopped at ${row.stopped_at}`
      : `last heartbeat ${age}, not stopped cleanly`
    : 'never ran on this data dir';
  return warn('daemon', `not running (${last})`, 'systemctl start dockd (or dockd start)');
}

/** Custody times come from this clock; a dead RTC battery or a clock set back shows here. */
function clockCheck(store: InspectedStore | null, env: DoctorEnv): Check {
  const now = env.now();
  const year = new Date(now).getUTCFullYear();
  if (year < MIN_YEAR) {
    return fail(
      'clock',
      `the system clock says ${new Date(now).toISOString()}`,
      'set the clock and enable time sync (timedatectl set-ntp true); check the RTC battery',
    );
  }
  let newest: string | null = null;
  try {
    newest = store ? newestCustodyAt(store.db) : null;
  } catch {
    return ok(
      'clock',
      `${new Date(now).toISOString()}; custody events unreadable to compare with (see the database check)`,
    );
  }
  if (!newest) return ok('clock', `${new Date(now).toISOString()}; no custody events to compare with`);
  const ahead = Date.parse(newest) - now;
  const detail = `system clock ${new Date(now).toISOString()}, newest custody event ${newest}`;
  const fix =
    'the clock went back: fix it and enable time sync (timedatectl set-ntp true) before more custody events are written';
  if (ahead > DAY_MS) return fail('clock', `${detail}, more than a day in the future`, fix);
  if (ahead > CLOCK_WARN_MS) return warn('clock', `${detail}, ${duration(ahead / 1000)} in the future`, fix);
  return ok('clock', detail);
}

function usbCheck(cfg: Config, env: DoctorEnv): Check {
  if (!cfg.usb.enabled) return ok('usb', 'USB is off in the config (usb.enabled = false)');
  if (!existsSync(env.sysUsb)) return ok('usb', `no USB bus on this machine (${env.sysUsb} is missing)`);
  try {
    accessSync(env.devUsb, constants.R_OK | constants.X_OK);
  } catch {
    return warn(
      'usb',
      `${env.devUsb} is not accessible to ${currentUser(env.uid())}`,
      'install scripts/service/70-dockd.rules and run the daemon as a member of group dockd',
    );
  }
  let total = 0;
  let open = 0;
  for (const bus of safeList(env.devUsb)) {
    for (const dev of safeList(path.join(env.devUsb, bus))) {
      total++;
      try {
        accessSync(path.join(env.devUsb, bus, dev), constants.R_OK | constants.W_OK);
        open++;
      } catch {
        // hubs and other devices stay root's; only cameras get group dockd
      }
    }
  }
  return ok('usb', `${env.devUsb} accessible; ${open} of ${total} devices open to this user`);
}

function encryptionCheck(cfg: Config, env: DoctorEnv): Check {
  if (!cfg.encryption) return ok('encryption', 'off: recordings are archived as the cameras recorded them');
  const to = `to ${cfg.encryption.recipients.length} age recipient${cfg.encryption.recipients.length === 1 ? '' : 's'}`;
  if (env.aead === 'native') return ok('encryption', `${to}; ChaCha20-Poly1305 by dockd's native binding`);
  return warn(
    'encryption',
    `${to}; ChaCha20-Poly1305 by node:crypto, about half as fast: the native binding (build/Release/dockd_aead.node) did not build or load`,
    "in dockd's folder, npm run install (it needs python3, make and g++), then restart the daemon",
  );
}

function safeList(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

export function runDoctor(cfg: Config, configFile: string | null, envOverrides: Partial<DoctorEnv> = {}): DoctorReport {
  const env = { ...defaultEnv, ...envOverrides };
  const checks: Check[] = [configCheck(configFile, cfg)];
  const dir = dataDirCheck(cfg.dataDir, env);
  checks.push(dir.check);
  let store: InspectedStore | null = null;
  if (dir.exists) {
    let cannotOpen: Check | null = null;
    try {
      store = openExistingStore(cfg.dataDir);
    } catch (err) {
      const missing = !existsSync(dbPath(cfg.dataDir));
      cannotOpen = missing
        ? fail('database', `no dockd.db in ${cfg.dataDir}`, 'start the daemon once: it creates the database')
        : fail('database', `cannot open dockd.db: ${errText(err)}`, RESTORE_FIX);
    }
    try {
      checks.push(permissionsCheck(cfg.dataDir), keysCheck(cfg.dataDir, store), diskCheck(cfg.dataDir, cfg));
      if (cannotOpen) checks.push(cannotOpen);
      if (store) checks.push(databaseCheck(store), walCheck(store));
      checks.push(daemonCheck(cfg.dataDir, store, env));
      checks.push(clockCheck(store, env));
    } finally {
      store?.close();
    }
  } else {
    checks.push(clockCheck(null, env));
  }
  checks.push(usbCheck(cfg, env), encryptionCheck(cfg, env));
  return { ok: checks.every((c) => c.status !== 'fail'), checks };
}
