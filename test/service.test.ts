/**
 * The files that make dockd a service on a dock PC: the systemd unit is checked by systemd's own
 * tools, and install.sh is run for real, always into a staging root (--root), never into /.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  appendFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, ROOT } from './support/harness.js';

const SERVICE_DIR = path.join(ROOT, 'scripts', 'service');
const UNIT = path.join(SERVICE_DIR, 'dockd.service');
const RULES = path.join(SERVICE_DIR, '70-dockd.rules');
const INSTALL = path.join(SERVICE_DIR, 'install.sh');
const linux = process.platform === 'linux';

function run(cmd: string, args: string[]): { status: number | null; stdout: string; stderr: string; output: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' } });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, output: r.stdout + r.stderr };
}

function requireSystemdAnalyze(): void {
  const r = spawnSync('systemd-analyze', ['--version']);
  if (r.error || r.status !== 0) throw new Error('systemd-analyze is missing: on Debian, apt-get install systemd');
}

/** Key=value lines of a unit file, by key, in order (a key may repeat). */
function directives(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (m) out.set(m[1]!, [...(out.get(m[1]!) ?? []), m[2]!]);
  }
  return out;
}

/**
 * The unit as shipped runs /usr/bin/node /opt/dockd/bin/dockd.js; systemd-analyze fails a unit
 * whose ExecStart binary is missing, so the copy points at the node and the dockd.js this test
 * runs with. User=dockd need not exist: verify does not resolve users.
 */
function verifiableCopy(dir: string, transform: (unit: string) => string = (u) => u): string {
  const unit = readFileSync(UNIT, 'utf8').replace(
    /^ExecStart=\/usr\/bin\/node \/opt\/dockd\/bin\/dockd\.js/m,
    `ExecStart=${process.execPath} ${BIN}`,
  );
  expect(unit).toContain(`ExecStart=${process.execPath} ${BIN} start`);
  const sub = mkdtempSync(path.join(dir, 'unit-'));
  const file = path.join(sub, 'dockd.service');
  writeFileSync(file, transform(unit));
  return file;
}

/** Every entry under a tree with its type, mode, size, content hash or link target, and mtime. */
function listing(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const p = path.join(dir, name);
      const st = lstatSync(p);
      const rel = path.relative(root, p);
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isSymbolicLink()) out.push(`${rel} link ${mode} -> ${readlinkSync(p)} ${st.mtimeMs}`);
      else if (st.isDirectory()) {
        // A directory's own mtime moves with scratch files made and removed inside it; its
        // entries are listed one by one instead.
        out.push(`${rel}/ dir ${mode} ${st.uid}:${st.gid}`);
        walk(p);
      } else {
        out.push(
          `${rel} file ${mode} ${st.uid}:${st.gid} ${st.size} ${createHash('sha256').update(readFileSync(p)).digest('hex')} ${st.mtimeMs}`,
        );
      }
    }
  };
  walk(root);
  return out;
}

describe.skipIf(!linux)('systemd unit scripts/service/dockd.service', () => {
  let tmp: string;
  beforeAll(() => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'dockd-unit-'));
  });
  afterAll(() => {
    rmSync(tmp, { recursive: true, force: true });
  });

  it('passes systemd-analyze verify without a single complaint', () => {
    requireSystemdAnalyze();
    const file = verifiableCopy(tmp);
    const r = run('systemd-analyze', ['verify', '--man=no', file]);
    expect(r.status, r.output).toBe(0);
    // Bad values and unknown keys are only warnings to systemd: any line about the unit fails.
    const aboutUnit = r.output.split('\n').filter((l) => l.includes(file) || l.includes('dockd.service'));
    expect(aboutUnit).toEqual([]);
  });

  it('is checked for real: systemd-analyze verify reports a broken copy', () => {
    requireSystemdAnalyze();
    const badValue = verifiableCopy(tmp, (u) => u.replace(/^Restart=on-failure$/m, 'Restart=sometimes'));
    expect(run('systemd-analyze', ['verify', '--man=no', badValue]).output).toMatch(/restart/i);
    const badBinary = verifiableCopy(tmp, (u) =>
      u.replace(`ExecStart=${process.execPath}`, 'ExecStart=/nonexistent/node'),
    );
    const r = run('systemd-analyze', ['verify', '--man=no', badBinary]);
    expect(r.status).not.toBe(0);
    expect(r.output).toMatch(/nonexistent/);
  });

  it('keeps its hardening: the directives are there and the offline exposure score stays low', () => {
    requireSystemdAnalyze();
    const d = directives(readFileSync(UNIT, 'utf8'));
    expect(d.get('User')).toEqual(['dockd']);
    expect(d.get('NoNewPrivileges')).toEqual(['yes']);
    expect(d.get('ProtectSystem')).toEqual(['strict']);
    expect(d.get('ReadWritePaths')).toEqual(['/var/lib/dockd']);
    expect(d.get('PrivateTmp')).toEqual(['yes']);
    expect(d.get('ProtectHome')).toEqual(['yes']);
    expect(d.get('Restart')).toEqual(['on-failure']);
    expect(d.get('RestartSec')).toHaveLength(1);
    expect(d.get('StartLimitIntervalSec')).toHaveLength(1);
    expect(d.get('StartLimitBurst')).toHaveLength(1);
    expect(d.get('Environment')).toContain('DOCKD_CONFIG=/etc/dockd/dockd.json');
    expect(d.get('KillSignal')).toEqual(['SIGTERM']);
    expect(d.get('TimeoutStopSec')).toEqual(['15']);
    expect(d.get('ExecStart')).toEqual(['/usr/bin/node /opt/dockd/bin/dockd.js start']);
    // The daemon does not ping a watchdog, so one would kill a healthy daemon.
    expect(d.has('WatchdogSec')).toBe(false);
    // systemd-analyze security prints 0.0 (locked down) to 10.0 (exposed); the threshold is x10.
    const r = run('systemd-analyze', ['security', '--offline=true', '--threshold=30', verifiableCopy(tmp)]);
    expect(r.status, r.output).toBe(0);
  });
});

describe('udev rule scripts/service/70-dockd.rules', () => {
  it('gives group dockd the still-image class and has a VID:PID template', () => {
    const lines = readFileSync(RULES, 'utf8').split('\n');
    const rules = lines.filter((l) => l.trim() && !l.trim().startsWith('#'));
    const pair = /^\s*[A-Z_]+(\{[^}]+\})?\s*(==|!=|\+=|:=|=)\s*"[^"]*"\s*$/;
    for (const rule of rules) {
      for (const part of rule.split(',')) expect(pair.test(part), `${part} in ${rule}`).toBe(true);
    }
    expect(
      rules.some(
        (r) =>
          r.includes('ID_USB_INTERFACES}=="*:06????:*"') && r.includes('MODE="0660"') && r.includes('GROUP="dockd"'),
      ),
    ).toBe(true);
    expect(lines.some((l) => /^#\s*SUBSYSTEM==.*ATTR\{idVendor\}==.*ATTR\{idProduct\}==.*GROUP="dockd"/.test(l))).toBe(
      true,
    );
  });
});

describe.skipIf(!linux)('scripts/service/install.sh --root', () => {
  let tmp: string;
  let root: string;
  const install = (...args: string[]) => run('sh', [INSTALL, '--root', root, ...args]);

  beforeAll(() => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'dockd-install-'));
    root = path.join(tmp, 'root');
  });
  afterAll(() => {
    rmSync(tmp, { recursive: true, force: true });
  });

  it('installs the app, config, data dir, unit and udev rule into the staging root', () => {
    expect(existsSync(path.join(ROOT, 'dist', 'src', 'cli', 'main.js')), 'build first (npm run build)').toBe(true);
    const first = install();
    expect(first.status, first.output).toBe(0);
    expect(first.stdout).toMatch(/changed: installed the app/);

    const unit = readFileSync(path.join(root, 'etc/systemd/system/dockd.service'), 'utf8');
    expect(unit).toMatch(/^ExecStart=\/\S*node \/opt\/dockd\/bin\/dockd\.js start$/m);
    expect(readFileSync(path.join(root, 'etc/udev/rules.d/70-dockd.rules'), 'utf8')).toBe(readFileSync(RULES, 'utf8'));
    const config = JSON.parse(readFileSync(path.join(root, 'etc/dockd/dockd.json'), 'utf8')) as { dataDir: string };
    expect(config.dataDir).toBe('/var/lib/dockd');
    expect(lstatSync(path.join(root, 'etc/dockd/dockd.json')).mode & 0o777).toBe(0o640);
    expect(lstatSync(path.join(root, 'var/lib/dockd')).mode & 0o777).toBe(0o750);

    // The installed copy runs on its own, with production dependencies only.
    const app = path.join(root, 'opt/dockd');
    const version = run(process.execPath, [path.join(app, 'bin/dockd.js'), '--version']);
    expect(version.status, version.output).toBe(0);
    expect(version.stdout.trim()).toBe(
      (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version,
    );
    expect(existsSync(path.join(app, 'node_modules/better-sqlite3'))).toBe(true);
    expect(existsSync(path.join(app, 'node_modules/vitest'))).toBe(false);
    expect(existsSync(path.join(app, 'node_modules/typescript'))).toBe(false);
    // The installed daemon seals with the native binding, not node:crypto's slower cipher.
    const aead = run(process.execPath, [
      '--input-type=module',
      '-e',
      `import { chunkAead } from ${JSON.stringify(path.join(app, 'dist/src/crypto/aead.js'))}; console.log(chunkAead.kind);`,
    ]);
    expect(aead.stdout.trim(), aead.output).toBe('native');
  });

  it('ships the battery logs of the demo: the installed demo shows battery figures, not unknown', () => {
    const demo = run(process.execPath, [path.join(root, 'opt/dockd/bin/dockd.js'), 'demo']);
    expect(demo.status, demo.output).toBe(0);
    expect(demo.stdout).toMatch(/DU-0108\s+short\s+drain [\d.]+ %\/h, [\d.]+ h from full/);
    expect(demo.stdout).not.toMatch(/DU-0108\s+unknown/);
  });

  it('changes nothing on a second run, and says so', () => {
    const before = listing(tmp);
    const second = install();
    expect(second.status, second.output).toBe(0);
    expect(second.stdout).toMatch(/nothing changed/);
    expect(second.stdout).not.toMatch(/changed:/);
    expect(listing(tmp)).toEqual(before);
  });

  it('puts back an installed file that was edited, and keeps an edited config', () => {
    const unit = path.join(root, 'etc/systemd/system/dockd.service');
    const config = path.join(root, 'etc/dockd/dockd.json');
    appendFileSync(unit, 'Nice=5\n');
    writeFileSync(config, '{ "dataDir": "/srv/dockd" }\n');
    const r = install();
    expect(r.status, r.output).toBe(0);
    expect(r.stdout).toMatch(/changed: installed .*dockd\.service/);
    expect(readFileSync(unit, 'utf8')).not.toContain('Nice=5');
    expect(readFileSync(config, 'utf8')).toContain('/srv/dockd');
  });

  it('refuses a --prefix that holds something else', () => {
    mkdirSync(path.join(root, 'usr/local/bin'), { recursive: true });
    const r = install('--prefix', '/usr/local');
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/not a dockd install/);
    expect(existsSync(path.join(root, 'usr/local/bin'))).toBe(true);
  });

  it('uninstalls the unit, rule and app but keeps config and data; a second uninstall does nothing', () => {
    const first = install('--uninstall');
    expect(first.status, first.output).toBe(0);
    expect(existsSync(path.join(root, 'etc/systemd/system/dockd.service'))).toBe(false);
    expect(existsSync(path.join(root, 'etc/udev/rules.d/70-dockd.rules'))).toBe(false);
    expect(existsSync(path.join(root, 'opt/dockd'))).toBe(false);
    expect(existsSync(path.join(root, 'etc/dockd/dockd.json'))).toBe(true);
    expect(existsSync(path.join(root, 'var/lib/dockd'))).toBe(true);
    const second = install('--uninstall');
    expect(second.status, second.output).toBe(0);
    expect(second.stdout).toMatch(/nothing to remove/);
  });
});
