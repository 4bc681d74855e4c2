/**
 * `dockd doctor` and `dockd backup`, black-box: a real daemon makes a data dir the way a dock PC
 * has one, then each test breaks one thing in a copy of it and expects doctor to name it.
 */
import Database from 'better-sqlite3';
import { spawn, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  statfsSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import os from 'node:os';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { allVerified, cli, DaemonProcess, ROOT, TestDock, waitFor, type CliResult } from './support/harness.js';
import { runDoctor } from '../src/admin/doctor.js';
import { parseConfig } from '../src/config.js';
import { generateIdentity } from '../src/crypto/age.js';

type Status = 'ok' | 'warn' | 'fail';
interface DoctorJson {
  ok: boolean;
  checks: Array<{ name: string; status: Status; detail: string; fix: string | null }>;
}

const CHECKS = [
  'config',
  'data-dir',
  'permissions',
  'keys',
  'disk-space',
  'database',
  'wal',
  'daemon',
  'clock',
  'usb',
  'encryption',
];

function parse(r: CliResult): DoctorJson {
  try {
    return JSON.parse(r.stdout) as DoctorJson;
  } catch {
    throw new Error(`doctor exited ${r.code} without JSON; stderr: ${r.stderr}`);
  }
}

function check(rep: DoctorJson, name: string) {
  const c = rep.checks.find((x) => x.name === name);
  if (!c) throw new Error(`no check named ${name} in ${JSON.stringify(rep)}`);
  return c;
}

function statuses(rep: DoctorJson): Record<string, Status> {
  return Object.fromEntries(rep.checks.map((c) => [c.name, c.status]));
}

// Read-write connections that only read: a read-only one would leave -wal/-shm files behind.
function custodyRows(file: string): unknown[] {
  const db = new Database(file, { fileMustExist: true });
  try {
    return db.prepare('SELECT * FROM custody_events ORDER BY seq').all();
  } finally {
    db.close();
  }
}

// The service unit runs the daemon with UMask=0027; the data dirs made here must be as closed.
let savedUmask = 0;
beforeAll(() => {
  savedUmask = process.umask(0o027);
});
afterAll(() => {
  process.umask(savedUmask);
});

describe('dockd doctor and backup', () => {
  let dock: TestDock;
  let daemon: DaemonProcess;
  let backupFile: string;
  let copies = 0;

  const doctor = async (args: string[] = []): Promise<{ code: number; rep: DoctorJson; r: CliResult }> => {
    const r = await cli(['--config', dock.configPath, ...args, 'doctor', '--json']);
    return { code: r.code, rep: parse(r), r };
  };

  /** A private copy of the stopped daemon's data dir, for one test to break. */
  const copyOfData = (): string => {
    const dir = path.join(dock.root, `copy-${++copies}`);
    cpSync(dock.dataDir, dir, { recursive: true });
    return dir;
  };

  /** The dock's config with some keys replaced, as a file of its own. */
  const configWith = (patch: Record<string, unknown>): string => {
    const base = JSON.parse(readFileSync(dock.configPath, 'utf8')) as Record<string, Record<string, unknown>>;
    const merged: Record<string, unknown> = { ...base };
    for (const [k, v] of Object.entries(patch))
      merged[k] = typeof v === 'object' && v !== null ? { ...base[k], ...v } : v;
    const file = path.join(dock.root, `config-${++copies}.json`);
    writeFileSync(file, JSON.stringify(merged));
    return file;
  };

  beforeAll(async () => {
    dock = new TestDock();
    dock.dock('bay-1', {
      serial: 'DU-0101',
      files: [1, 2, 3].map((n) => ({ rel: `DCIM/100/REC000${n}.MP4`, size: 150_000 })),
    });
    daemon = dock.start();
    await allVerified(dock, 3);
  });

  afterAll(async () => {
    await dock?.cleanup();
  });

  it('passes every check on a healthy data dir with the daemon running', async () => {
    const { code, rep } = await doctor();
    expect(rep.checks.map((c) => c.name)).toEqual(CHECKS);
    expect(statuses(rep)).toEqual(Object.fromEntries(CHECKS.map((n) => [n, 'ok'])));
    expect(rep.ok).toBe(true);
    expect(code).toBe(0);
    expect(check(rep, 'config').detail).toContain(dock.configPath);
    expect(check(rep, 'daemon').detail).toContain(String(daemon.child.pid));
    expect(check(rep, 'usb').detail).toMatch(/usb\.enabled = false/);

    const human = await dock.cli(['doctor']);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/all \d+ checks ok/);
  });

  it('backs up while the daemon writes; the copy passes integrity_check and holds the same custody rows', async () => {
    // A second camera keeps the daemon appending custody events during the backup.
    dock.dock('bay-2', {
      serial: 'DU-0102',
      files: Array.from({ length: 12 }, (_, i) => ({ rel: `DCIM/100/B${i}.MP4`, size: 100_000 })),
    });
    const before = custodyRows(path.join(dock.dataDir, 'dockd.db')).length;
    mkdirSync(path.join(dock.root, 'backups'));
    backupFile = path.join(dock.root, 'backups', 'dockd-backup.db');
    const r = await dock.cli(['backup', backupFile, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as {
      ok: boolean;
      file: string;
      integrity: string;
      custodyEvents: number;
      lastSeq: number;
    };
    expect(out).toMatchObject({ ok: true, file: backupFile, integrity: 'ok' });
    expect(statSync(backupFile).mode & 0o777).toBe(0o600);
    expect(existsSync(backupFile + '-wal')).toBe(false);

    const copy = new Database(backupFile, { fileMustExist: true });
    expect(copy.pragma('integrity_check', { simple: true })).toBe('ok');
    copy.close();
    const saved = custodyRows(backupFile);
    const live = custodyRows(path.join(dock.dataDir, 'dockd.db'));
    expect(saved.length).toBe(out.custodyEvents);
    expect(saved.length).toBeGreaterThanOrEqual(before);
    expect(saved).toEqual(live.slice(0, saved.length));

    await allVerified(dock, 15);
  });

  it('refuses to overwrite an existing backup without --force', async () => {
    const was = readFileSync(backupFile);
    const refused = await dock.cli(['backup', backupFile]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/already exists.*--force/);
    expect(readFileSync(backupFile).equals(was)).toBe(true);

    const forced = await dock.cli(['backup', backupFile, '--force', '--json']);
    expect(forced.code, forced.stderr).toBe(0);
    expect(custodyRows(backupFile).length).toBe((JSON.parse(forced.stdout) as { custodyEvents: number }).custodyEvents);
    expect(readFileSync(backupFile).equals(was)).toBe(false);
  });

  it('warns "hung?" when a daemon holds the lock but its heartbeat is stale', async () => {
    const other = new TestDock();
    try {
      const d = other.start();
      await d.waitForEvent('daemon.started');
      await waitFor('a running daemon', async () => (await other.status()).daemon.running);
      process.kill(d.child.pid!, 'SIGSTOP');
      try {
        await sleep(1500); // five heartbeat intervals of 200 ms
        const r = await other.cli(['doctor', '--json']);
        const rep = parse(r);
        expect(check(rep, 'daemon')).toMatchObject({ status: 'warn' });
        expect(check(rep, 'daemon').detail).toMatch(/holds the lock.*stale.*hung\?/);
        expect(r.code).toBe(0);
      } finally {
        process.kill(d.child.pid!, 'SIGCONT');
      }
    } finally {
      await other.cleanup();
    }
  });

  describe('after a clean stop', () => {
    let writer: ChildProcess | undefined;

    beforeAll(async () => {
      daemon.kill('SIGTERM');
      await daemon.exited;
    });
    afterEach(() => {
      writer?.kill();
      writer = undefined;
    });

    it('still passes, with a warning that the daemon is not running', async () => {
      const { code, rep } = await doctor();
      expect(code).toBe(0);
      expect(rep.ok).toBe(true);
      expect(check(rep, 'daemon')).toMatchObject({ status: 'warn' });
      expect(check(rep, 'daemon').detail).toMatch(/not running/);
      expect(rep.checks.filter((c) => c.status !== 'ok').map((c) => c.name)).toEqual(['daemon']);
      // Inspecting must not leave WAL files behind for the daemon's user to trip over.
      expect(existsSync(path.join(dock.dataDir, 'dockd.db-wal'))).toBe(false);
    });

    it('fails a dockd.db that other users can read', async () => {
      const dir = copyOfData();
      chmodSync(path.join(dir, 'dockd.db'), 0o644);
      const { code, rep } = await doctor(['--data-dir', dir]);
      expect(code).toBe(1);
      expect(rep.ok).toBe(false);
      expect(check(rep, 'permissions')).toMatchObject({ status: 'fail' });
      expect(check(rep, 'permissions').detail).toContain('dockd.db 0644');
      expect(check(rep, 'permissions').fix).toContain('chmod o-rwx');
    });

    it('fails an archive/ that other users can read, and a signing key that is not owner-only', async () => {
      const dir = copyOfData();
      chmodSync(path.join(dir, 'archive'), 0o755);
      chmodSync(path.join(dir, 'keys', 'dock-signing.pem'), 0o644);
      const { code, rep } = await doctor(['--data-dir', dir]);
      expect(code).toBe(1);
      expect(check(rep, 'permissions').detail).toContain('archive/ 0755');
      expect(check(rep, 'keys')).toMatchObject({ status: 'fail' });
      expect(check(rep, 'keys').fix).toContain('chmod 600');
    });

    it('says what the next start will do with a signing key a power cut left empty', async () => {
      const signedDir = copyOfData();
      const pem = path.join(signedDir, 'keys', 'dock-signing.pem');
      writeFileSync(pem, '');
      const signedDb = new Database(path.join(signedDir, 'dockd.db'), { fileMustExist: true });
      const checkpoints = (signedDb.prepare('SELECT count(*) n FROM chain_checkpoints').get() as { n: number }).n;
      signedDb.close();
      expect(checkpoints).toBeGreaterThan(0);
      const signed = await doctor(['--data-dir', signedDir]);
      expect(signed.code).toBe(1);
      expect(check(signed.rep, 'keys')).toMatchObject({ status: 'fail' });
      expect(check(signed.rep, 'keys').detail).toContain('keys/dock-signing.pem is empty (0 bytes)');
      expect(check(signed.rep, 'keys').detail).toContain(`signed ${checkpoints} custody checkpoint(s)`);
      expect(check(signed.rep, 'keys').fix).toContain('restore');

      // A key that signed nothing yet is made anew by the next start: a warning, not a failure.
      const freshDir = copyOfData();
      writeFileSync(path.join(freshDir, 'keys', 'dock-signing.pem'), '');
      const freshDb = new Database(path.join(freshDir, 'dockd.db'), { fileMustExist: true });
      freshDb.exec('DELETE FROM chain_checkpoints');
      freshDb.close();
      const fresh = await doctor(['--data-dir', freshDir]);
      expect(check(fresh.rep, 'keys')).toMatchObject({ status: 'warn' });
      expect(check(fresh.rep, 'keys').detail).toContain('replaces it with a new key');

      // A torn public half is written again from the private key.
      const pubDir = copyOfData();
      writeFileSync(path.join(pubDir, 'keys', 'dock-signing.pub.pem'), '-----BEGIN PUB');
      const pub = await doctor(['--data-dir', pubDir]);
      expect(check(pub.rep, 'keys')).toMatchObject({ status: 'warn' });
      expect(check(pub.rep, 'keys').detail).toContain('keys/dock-signing.pub.pem is torn');
      expect(pub.rep.checks.map((c) => c.name)).toEqual(CHECKS);
    });

    it('fails when free space is below ingest.minFreeBytes and warns below twice that', async () => {
      const absurd = await cli(['--config', configWith({ ingest: { minFreeBytes: 1e18 } }), 'doctor', '--json']);
      expect(absurd.code).toBe(1);
      expect(check(parse(absurd), 'disk-space')).toMatchObject({ status: 'fail' });

      const st = statfsSync(path.join(dock.dataDir, 'archive'));
      const free = st.bavail * st.bsize;
      const tight = await cli([
        '--config',
        configWith({ ingest: { minFreeBytes: Math.floor(free * 0.7) } }),
        'doctor',
        '--json',
      ]);
      expect(check(parse(tight), 'disk-space')).toMatchObject({ status: 'warn' });
      expect(tight.code).toBe(0);
    });

    it('fails a corrupted database', async () => {
      const dir = copyOfData();
      const file = path.join(dir, 'dockd.db');
      const db = new Database(file, { fileMustExist: true });
      const root = (
        db.prepare("SELECT rootpage FROM sqlite_master WHERE name = 'custody_events'").get() as { rootpage: number }
      ).rootpage;
      const pageSize = db.pragma('page_size', { simple: true }) as number;
      db.close();
      expect(existsSync(file + '-wal')).toBe(false);
      const fd = openSync(file, 'r+');
      writeSync(fd, randomBytes(pageSize), 0, pageSize, (root - 1) * pageSize);
      closeSync(fd);

      const { code, rep } = await doctor(['--data-dir', dir]);
      expect(code).toBe(1);
      expect(check(rep, 'database')).toMatchObject({ status: 'fail' });
      expect(check(rep, 'database').detail).toMatch(/integrity_check|malformed/);
      expect(check(rep, 'database').fix).toMatch(/restore/);
    });

    it('fails a fresh heartbeat that no daemon holds the lock for', async () => {
      const dir = copyOfData();
      const db = new Database(path.join(dir, 'dockd.db'));
      db.prepare('UPDATE daemon SET heartbeat_at = ?, heartbeat_ms = 600000, stopped_at = NULL').run(
        new Date().toISOString(),
      );
      db.close();
      const { code, rep } = await doctor(['--data-dir', dir]);
      expect(code).toBe(1);
      expect(check(rep, 'daemon')).toMatchObject({ status: 'fail' });
      expect(check(rep, 'daemon').detail).toMatch(/no daemon holds the lock/);
    });

    it('fails a clock that is more than a day behind the newest custody event', async () => {
      const dir = copyOfData();
      const db = new Database(path.join(dir, 'dockd.db'));
      const head = db.prepare('SELECT seq, hash FROM custody_events ORDER BY seq DESC LIMIT 1').get() as {
        seq: number;
        hash: string;
      };
      db.prepare(
        "INSERT INTO custody_events (seq, at, type, actor, details, prev_hash, hash) VALUES (?, ?, 'test.future', 'test', '{}', ?, ?)",
      ).run(head.seq + 1, new Date(Date.now() + 2 * 86_400_000).toISOString(), head.hash, '0'.repeat(64));
      db.close();
      const { code, rep } = await doctor(['--data-dir', dir]);
      expect(code).toBe(1);
      expect(check(rep, 'clock')).toMatchObject({ status: 'fail' });
    });

    it('fails a data dir that does not exist', async () => {
      const { code, rep } = await doctor(['--data-dir', path.join(dock.root, 'nowhere')]);
      expect(code).toBe(1);
      expect(check(rep, 'data-dir')).toMatchObject({ status: 'fail' });
      expect(existsSync(path.join(dock.root, 'nowhere'))).toBe(false);
    });

    it('exits 2 on a bad config, naming the key', async () => {
      const r = await cli(['--config', configWith({ ingest: { concurrency: -1 } }), 'doctor', '--json']);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/ingest\.concurrency/);
    });

    it('finishes a backup of a larger database that another process keeps writing to', async () => {
      const dir = copyOfData();
      const file = path.join(dir, 'dockd.db');
      const db = new Database(file);
      // About 8,000 pages: some 30 backup steps, each a chance for the writer to get in between.
      const insert = db.prepare(
        "INSERT INTO battery_samples (camera, at, percent, charging, source, visit) VALUES (?, ?, 50, 0, 'dock', 1)",
      );
      const filler = 'DU-FILL-' + 'x'.repeat(3500);
      db.transaction(() => {
        for (let i = 0; i < 8000; i++) insert.run(filler, i);
      })();
      db.close();
      // Stands in for the daemon's heartbeat, only far more often: SQLite restarts a backup
      // whenever the source changes between two of its steps.
      writer = spawn(
        process.execPath,
        [
          '-e',
          `const db = new (require('better-sqlite3'))(${JSON.stringify(file)}); db.pragma('busy_timeout = 5000'); setInterval(() => db.prepare('UPDATE daemon SET heartbeat_at = ?').run(new Date().toISOString()), 1); console.log('writing');`,
        ],
        { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
      );
      try {
        await new Promise((resolve) => writer!.stdout!.once('data', resolve));
        const out = path.join(dock.root, `large-${++copies}.db`);
        const r = await cli(['--config', dock.configPath, '--data-dir', dir, 'backup', out, '--json']);
        expect(r.code, r.stderr).toBe(0);
        expect((JSON.parse(r.stdout) as { pages: number }).pages).toBeGreaterThan(7000);
        expect(custodyRows(out)).toEqual(custodyRows(path.join(dock.dataDir, 'dockd.db')));
      } finally {
        writer?.kill();
      }
    });

    it('restores as the README says: backup over dockd.db, WAL files removed, start, verify', async () => {
      const dir = copyOfData();
      copyFileSync(backupFile, path.join(dir, 'dockd.db'));
      rmSync(path.join(dir, 'dockd.db-wal'), { force: true });
      rmSync(path.join(dir, 'dockd.db-shm'), { force: true });
      const config = configWith({ dataDir: dir, sim: { dir: null } });
      const restored = new DaemonProcess(['--config', config, 'start']);
      try {
        await restored.waitForEvent('daemon.started');
        const v = await cli(['--config', config, 'verify', '--json']);
        expect(v.code, v.stdout + v.stderr).toBe(0);
        expect((JSON.parse(v.stdout) as { chain: { ok: boolean } }).chain.ok).toBe(true);
      } finally {
        restored.kill('SIGTERM');
        await restored.exited;
      }
    });
  });
});

describe('doctor checks that need another machine', () => {
  let tmp: string;
  beforeAll(() => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'dockd-doctor-'));
  });
  afterAll(() => {
    rmSync(tmp, { recursive: true, force: true });
  });
  const cfg = () => parseConfig({ dataDir: path.join(tmp, 'no-data'), usb: { enabled: true } });
  const named = (rep: DoctorJson, name: string) => check(rep, name);

  it('encryption: off, on with the native binding, and a warning with the fix when sealing falls back to node:crypto', () => {
    const recipients = [generateIdentity().recipient];
    expect(named(runDoctor(cfg(), null), 'encryption')).toMatchObject({
      status: 'ok',
      detail: expect.stringMatching(/^off/),
    });
    const encrypting = parseConfig({ dataDir: path.join(tmp, 'no-data'), encryption: { recipients } });
    expect(named(runDoctor(encrypting, null), 'encryption')).toMatchObject({
      status: 'ok',
      detail: "to 1 age recipient; ChaCha20-Poly1305 by dockd's native binding",
    });
    const slow = named(runDoctor(encrypting, null, { aead: 'node' }), 'encryption');
    expect(slow).toMatchObject({
      status: 'warn',
      detail: expect.stringMatching(/node:crypto, about half as fast/),
      fix: expect.stringMatching(/npm run install/),
    });
  });

  it('usb: ok with a note without a USB bus, a warning when /dev/bus/usb is out of reach, a count when it is not', () => {
    const noBus = runDoctor(cfg(), null, { sysUsb: path.join(tmp, 'no-sys') });
    expect(named(noBus, 'usb')).toMatchObject({ status: 'ok' });
    expect(named(noBus, 'usb').detail).toMatch(/no USB bus on this machine/);

    mkdirSync(path.join(tmp, 'sys'));
    const noDev = runDoctor(cfg(), null, { sysUsb: path.join(tmp, 'sys'), devUsb: path.join(tmp, 'no-dev') });
    expect(named(noDev, 'usb')).toMatchObject({ status: 'warn' });
    expect(named(noDev, 'usb').fix).toMatch(/70-dockd\.rules/);

    mkdirSync(path.join(tmp, 'dev', '001'), { recursive: true });
    writeFileSync(path.join(tmp, 'dev', '001', '004'), '');
    const dev = runDoctor(cfg(), null, { sysUsb: path.join(tmp, 'sys'), devUsb: path.join(tmp, 'dev') });
    expect(named(dev, 'usb')).toMatchObject({ status: 'ok' });
    expect(named(dev, 'usb').detail).toMatch(/1 of 1 devices/);
  });

  it('clock: fails a system clock before 2024', () => {
    const rep = runDoctor(cfg(), null, { now: () => Date.parse('2000-01-01T00:00:00Z') });
    expect(named(rep, 'clock')).toMatchObject({ status: 'fail' });
  });
});
