/* eslint-disable no-control-regex -- escape codes are what these tests are about */
/**
 * The CLI as a newcomer meets it: in a pipe that closes early, on a terminal and off one, on a
 * data dir that is not there, with ids that do not exist, and asking for help.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { allVerified, BIN, cli, ROOT, TestDock, type RecordingJson } from './support/harness.js';

const execFileP = promisify(execFile);
const ESCAPE = /\x1b\[/;
const DELETED_ROWS = 3000;

let dock: TestDock;
let recs: RecordingJson[];

beforeAll(async () => {
  dock = new TestDock();
  dock.dock('bay-1', {
    serial: 'P-7',
    files: [
      { rel: 'DCIM/A.MP4', size: 200_000 },
      { rel: 'DCIM/B.MP4', size: 100_000 },
    ],
  });
  const past = new Date(Date.now() - 3600_000).toISOString();
  expect((await dock.cli(['assign', 'P-7', 'officer-17', '--from', past])).code).toBe(0);
  const d = dock.start();
  recs = await allVerified(dock, 2);
  d.kill('SIGTERM');
  await d.exited;
  // Recordings retention removed long ago: enough of them that `recordings --json` is still
  // writing when its reader has had enough.
  const db = new Database(path.join(dock.dataDir, 'dockd.db'));
  const add = db.prepare(
    "INSERT INTO recordings (id, camera, source_path, source_id, bytes, status, discovered_at, deleted_at, deleted_from_camera) VALUES (?, 'P-7', ?, ?, 1000, 'deleted', ?, ?, 1)",
  );
  db.transaction(() => {
    for (let i = 0; i < DELETED_ROWS; i++)
      add.run(`old-${i}`, `DCIM/OLD/REC${i}.MP4`, `old-${i}`, '2025-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z');
  })();
  db.close();
});
afterAll(async () => {
  await dock?.cleanup();
});

/** Runs dockd with stdout on a pipe that is closed once `enough` bytes arrived. */
async function readThenClose(
  args: string[],
  enough: number,
): Promise<{ head: string; code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [BIN, '--config', dock.configPath, ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let head = '';
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  child.stdout.setEncoding('utf8').on('data', (s: string) => {
    head += s;
    if (head.length >= enough) child.stdout.destroy();
  });
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  return { head: head.slice(0, enough), code, stderr };
}

/** Runs dockd on a pseudo-terminal (util-linux `script`), for what only a terminal gets. */
async function onTerminal(args: string[], env: NodeJS.ProcessEnv = {}, timeoutS?: number): Promise<string> {
  const quoted = [process.execPath, BIN, '--config', dock.configPath, ...args]
    .map((a) => `'${a.replace(/'/g, "'\\''")}'`)
    .join(' ');
  const command = timeoutS ? `timeout -s INT ${timeoutS} ${quoted}` : quoted;
  const { stdout } = await execFileP('script', ['-qec', command, '/dev/null'], {
    cwd: ROOT,
    env: { ...process.env, NO_COLOR: '', ...env },
  }).catch((e: { stdout: string }) => e);
  return stdout;
}

describe('output into a pipe', () => {
  it('recordings --json | head -c 100 ends quietly, without a stack trace', async () => {
    const r = await readThenClose(['recordings', '--json'], 100);
    expect(r.head).toMatch(/^\[\n {2}\{"id":/);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it('status --watch | head -1 ends quietly and writes no escape codes into the pipe', async () => {
    const r = await readThenClose(['status', '--watch'], 50);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.head).toMatch(/^daemon {3}NOT RUNNING/);
    expect(r.head).not.toMatch(ESCAPE);
  });

  it('human output off a terminal has no colours, even for failures', async () => {
    const r = await dock.cli(['status']);
    expect(r.stdout).toMatch(/NOT RUNNING/);
    expect(r.stdout).not.toMatch(ESCAPE);
  });
});

describe('on a terminal', () => {
  it('status has colours, and none with NO_COLOR or --no-color', async () => {
    expect(await onTerminal(['status'])).toMatch(/\x1b\[31mNOT RUNNING\x1b\[0m/);
    const noColor = await onTerminal(['status'], { NO_COLOR: '1' });
    expect(noColor).toMatch(/NOT RUNNING/);
    expect(noColor).not.toMatch(ESCAPE);
    const flag = await onTerminal(['--no-color', 'status']);
    expect(flag).toMatch(/NOT RUNNING/);
    expect(flag).not.toMatch(ESCAPE);
  });

  it('verify says ok in green', async () => {
    const verify = await onTerminal(['verify', '--quick']);
    expect(verify).toMatch(/custody chain {3}\x1b\[32mok\x1b\[0m/);
    expect(verify).toMatch(/archived files {2}\x1b\[32m2\/2 ok\x1b\[0m/);
  });

  it('status --watch redraws the screen', async () => {
    const screen = await onTerminal(['status', '--watch'], {}, 3);
    expect(screen.split('\x1b[H\x1b[2J').length).toBeGreaterThanOrEqual(3);
  });

  it('recordings keep their columns aligned with coloured statuses', async () => {
    const table = await onTerminal(['recordings', '--camera', 'P-7', '--status', 'verified']);
    const lines = table.split(/\r?\n/).filter(Boolean);
    expect(lines[2]).toMatch(/\x1b\[32mverified\x1b\[0m/);
    const plain = lines.map((l) => l.replace(/\x1b\[[0-9;]*m/g, ''));
    expect(plain[2]!.indexOf('verified')).toBe(plain[0]!.indexOf('STATUS'));
  });
});

describe('read commands on a data dir that is not there', () => {
  it('exit 1 naming the directory, and create nothing', async () => {
    const empty = mkdtempSync(path.join(os.tmpdir(), 'dockd-empty-'));
    try {
      for (const args of [
        ['cameras'],
        ['status'],
        ['recordings', '--json'],
        ['custody', '--camera', 'X'],
        ['verify'],
        ['battery'],
        ['status', '--watch'],
      ]) {
        const r = await cli(args, { cwd: empty });
        expect(r.code, args.join(' ')).toBe(1);
        expect(r.stderr.trim()).toBe(
          `dockd: no dockd data in ${path.join(empty, 'var')} (no dockd.db there): check --data-dir or dataDir in the config`,
        );
        expect(r.stdout).toBe('');
      }
      const typo = path.join(empty, 'data-typo');
      const r = await cli(['--data-dir', typo, 'status']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(`no dockd data in ${typo}`);
      expect(readdirSync(empty)).toEqual([]);
      expect(existsSync(typo)).toBe(false);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});

describe('ids and serials that do not exist', () => {
  it('exit 1 with a message naming them, like hold does', async () => {
    for (const [args, msg] of [
      [['hold', 'nope', '--reason', 'x'], 'nope'],
      [['custody', '--recording', 'nope'], 'no recording nope'],
      [['custody', '--camera', 'NOPE-1'], 'no camera NOPE-1'],
      [['recordings', '--camera', 'NOPE-1'], 'no camera NOPE-1'],
      [['retry', 'nope'], 'no recording nope'],
      [['retry', '--camera', 'NOPE-1'], 'no camera NOPE-1'],
      [['battery', 'NOPE-1'], 'no camera NOPE-1'],
    ] as const) {
      const r = await dock.cli([...args]);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr, args.join(' ')).toMatch(msg);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
    // Those that exist still work.
    expect((await dock.cli(['custody', '--recording', recs[0]!.id])).code).toBe(0);
    expect((await dock.cli(['custody', '--camera', 'P-7'])).code).toBe(0);
  });
});

describe('recordings', () => {
  it('--status deleted lists the recordings retention removed', async () => {
    const deleted = await dock.json<RecordingJson[]>(['recordings', '--status', 'deleted']);
    expect(deleted).toHaveLength(DELETED_ROWS);
    expect(deleted.every((r) => (r.status as string) === 'deleted')).toBe(true);
    expect((await dock.cli(['recordings', '--status', 'gone'])).stderr).toMatch(
      /--status must be one of pending, copying, verified, failed, deleted/,
    );
  });

  it('the table shows the officer who held the camera', async () => {
    const r = await dock.cli(['recordings', '--status', 'verified']);
    const [head, , ...rows] = r.stdout.trim().split('\n');
    expect(head).toMatch(/\bOFFICER\b/);
    expect(rows).toHaveLength(2);
    for (const row of rows) expect(row).toMatch(/P-7\s+officer-17\s+DCIM\//);
  });
});

describe('help', () => {
  it("dockd --help and a command's help show examples", async () => {
    const top = await cli(['--help']);
    expect(top.code).toBe(0);
    expect(top.stdout).toMatch(/Examples:\n {2}\$ dockd demo/);
    expect(top.stdout).toMatch(/\$ dockd start --sim-dir/);
    const status = await cli(['status', '--help']);
    expect(status.stdout).toMatch(/Examples:[\s\S]*\$ dockd status --watch/);
    const recordings = await cli(['recordings', '--help']);
    expect(recordings.stdout).toMatch(/Examples:[\s\S]*\$ dockd recordings --status failed/);
  });
});

describe('dockd start', () => {
  it('prints readable lines on a terminal, JSON with --json-logs', async () => {
    const readable = await onTerminal(['start'], {}, 3);
    const lines = readable.split(/\r?\n/).filter(Boolean);
    const started = lines.find((l) => l.includes('daemon.started'));
    expect(started, readable).toMatch(
      /^\x1b\[2m\d\d:\d\d:\d\d\.\d{3}\x1b\[0m \x1b\[32mINFO \x1b\[0m \x1b\[36mdaemon\.started\x1b\[0m dockd \S+ started/,
    );
    expect(lines.some((l) => l.startsWith('{'))).toBe(false);
    const plain = await onTerminal(['start'], { NO_COLOR: '1' }, 3);
    expect(plain).toMatch(/\d\d:\d\d:\d\d\.\d{3} INFO {2}daemon\.started dockd \S+ started/);
    expect(plain).not.toMatch(ESCAPE);

    const json = await onTerminal(['start', '--json-logs'], {}, 3);
    const parsed = json
      .split(/\r?\n/)
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { event?: string; level: number });
    expect(parsed.find((l) => l.event === 'daemon.started')?.level).toBe(30);
  });
});
