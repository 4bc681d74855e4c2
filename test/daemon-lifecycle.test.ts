/**
 * The daemon's life as a process: stopped with work under way, killed, and a start that fails
 * after it has taken the lock. Each ends with what the next user of the data dir finds: a store
 * `dockd status` reads, a lock the next daemon takes, and every recording accounted for.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { openStore } from '../src/store/db.js';
import {
  allVerified,
  TestDock,
  waitFor,
  type CustodyJson,
  type DaemonProcess,
  type LogLine,
  type VerifyJson,
} from './support/harness.js';

/** src/cli/start.ts: past it the process gives up on a graceful stop and exits 1. */
const STOP_DEADLINE_MS = 9000;

let dock: TestDock | undefined;
afterEach(async () => {
  await dock?.cleanup();
  dock = undefined;
});

/** Resolves with the exit, or fails when the process is still there after `ms`. */
async function exitWithin(d: DaemonProcess, ms: number): Promise<{ code: number | null; ms: number }> {
  const t0 = Date.now();
  const exit = await Promise.race([d.exited, sleep(ms).then(() => null)]);
  if (!exit) throw new Error(`the daemon was still running ${ms} ms later; stderr: ${d.stderr}\n${tail(d.logs)}`);
  return { code: exit.code, ms: Date.now() - t0 };
}

function tail(logs: LogLine[]): string {
  return logs
    .slice(-10)
    .map((l) => JSON.stringify(l))
    .join('\n');
}

function errorLines(d: DaemonProcess): LogLine[] {
  return d.logs.filter((l) => l.level >= 50);
}

/** Entries of a camera's own event log, dated long before any `battery.keepDays`. */
function seedOldCameraEvents(dataDir: string, serial: string, n: number): void {
  const db = openStore(dataDir);
  try {
    const insert = db.prepare(
      "INSERT INTO camera_events (camera, at, camera_at, type, visit) VALUES (?, 1000, ?, 'power_on', 1)",
    );
    db.transaction(() => {
      for (let i = 1; i <= n; i++) insert.run(serial, i);
    })();
  } finally {
    db.close();
  }
}

/** A daemon started after the last one takes the lock, and status shows it running. */
async function nextStartRuns(dock: TestDock): Promise<DaemonProcess> {
  const next = dock.start();
  await next.waitForEvent('daemon.started');
  await waitFor('the new daemon running in status', async () => {
    const s = await dock.status();
    return s.daemon.running && s.daemon.pid === next.child.pid;
  });
  return next;
}

describe('daemon lifecycle', () => {
  it('stops on SIGTERM within the deadline while a copy and the start-up sweep are under way; the sweep stops between batches and the next start finishes it', async () => {
    dock = new TestDock();
    // Years of a camera's event log never pruned: the first sweep deletes it in
    // batches, oldest first, for a second or more.
    const old = 800_000;
    seedOldCameraEvents(dock.dataDir, 'SLOW-1', old);
    dock.dock('s1', {
      serial: 'SLOW-1',
      files: [{ rel: 'big.mp4', size: 6_000_000 }],
      spec: { throughputBytesPerSec: 1_000_000 },
    });
    const d = dock.start();
    const reader = new Database(path.join(dock.dataDir, 'dockd.db'), { readonly: true });
    try {
      await waitFor(
        'a copy and the prune both under way',
        async () => {
          const { oldest } = reader.prepare('SELECT min(id) oldest FROM camera_events').get() as {
            oldest: number | null;
          };
          if (oldest === null) throw new Error('the prune was over before the copy began');
          return oldest > 1 && d.events('offload.started').length > 0;
        },
        20_000,
        10,
      );
    } finally {
      reader.close();
    }
    d.kill('SIGTERM');
    const exit = await exitWithin(d, STOP_DEADLINE_MS + 5000);
    expect(exit.code, tail(d.logs)).toBe(0);
    expect(exit.ms).toBeLessThan(STOP_DEADLINE_MS);
    expect(d.events('daemon.stop_timeout')).toEqual([]);
    // Nothing failed for the store closing under it: the sweep stopped, then the daemon closed.
    expect(errorLines(d)).toEqual([]);
    const events = d.logs.map((l) => l.event);
    const [pruned] = d.events('camera.events_pruned') as Array<LogLine & { events: number }>;
    expect(pruned).toMatchObject({ interrupted: true });
    expect(pruned!.events).toBeGreaterThan(0);
    expect(pruned!.events).toBeLessThan(old);
    expect(events.indexOf('camera.events_pruned')).toBeGreaterThan(events.indexOf('daemon.stopping'));
    expect(events.at(-1)).toBe('daemon.stopped');

    const after = await dock.status();
    expect(after.daemon).toMatchObject({ running: false, pid: d.child.pid });
    expect(after.queue).toMatchObject({ pending: 1, active: 0, failed: 0, verified: 0 });
    const left = old - pruned!.events;
    expect(await dock.json<unknown[]>(['events', '--camera', 'SLOW-1'])).toHaveLength(left);
    const v = await dock.json<VerifyJson>(['verify']);
    expect(v.chain.ok).toBe(true);
    const types = (await dock.json<CustodyJson[]>(['custody', '--camera', 'SLOW-1'])).map((e) => e.type);
    expect(types).not.toContain('offload.verified');

    // The lock is free: the next daemon starts, finishes the interrupted copy and the prune.
    const next = await nextStartRuns(dock);
    const [r] = await allVerified(dock, 1);
    expect(r!.sha256).toBe(dock.sources.get('SLOW-1\nbig.mp4')!.sha256);
    expect(dock.cameraFileExists('s1', 'big.mp4')).toBe(false);
    const rest = await next.waitForEvent('camera.events_pruned', 30_000);
    expect(rest).toMatchObject({ events: left });
    expect(rest).not.toHaveProperty('interrupted');
    expect(await dock.json(['events', '--camera', 'SLOW-1'])).toEqual([]);
  });

  it('killed with SIGKILL in the middle of a copy, leaves the lock to the next start and loses nothing', async () => {
    dock = new TestDock();
    dock.dock('f1', {
      serial: 'FAST-1',
      files: [
        { rel: 'a.mp4', size: 200_000 },
        { rel: 'b.mp4', size: 300_000 },
      ],
    });
    dock.dock('s1', {
      serial: 'SLOW-1',
      files: [{ rel: 'big.mp4', size: 6_000_000 }],
      spec: { throughputBytesPerSec: 1_000_000 },
    });
    const d = dock.start();
    await waitFor(
      'FAST-1 offloaded and SLOW-1 copying',
      async () => {
        const recs = await dock!.recordings();
        const fast = recs.filter((r) => r.camera === 'FAST-1');
        return (
          fast.length === 2 &&
          fast.every((r) => r.status === 'verified' && r.deletedFromCamera) &&
          recs.some((r) => r.camera === 'SLOW-1' && r.status === 'copying')
        );
      },
      30_000,
      50,
    );
    d.kill('SIGKILL');
    expect((await d.exited).signal).toBe('SIGKILL');

    // The store is readable at once, and shows the daemon gone once its heartbeat is stale.
    await waitFor('the killed daemon not running in status', async () => !(await dock!.status()).daemon.running);
    const next = await nextStartRuns(dock);
    const recs = await allVerified(dock, 3);
    for (const r of recs) {
      expect(r.sha256, r.sourcePath).toBe(dock.sources.get(`${r.camera}\n${r.sourcePath}`)!.sha256);
      // What was verified before the kill is not copied again.
      if (r.camera === 'FAST-1') expect(r.attempts, r.sourcePath).toBe(1);
      const types = (await dock.json<CustodyJson[]>(['custody', '--recording', r.id])).map((e) => e.type);
      expect(
        types.filter((t) => t === 'offload.verified'),
        r.sourcePath,
      ).toHaveLength(1);
    }
    expect(next.events('offload.verified').map((l) => l.camera)).toEqual(['SLOW-1']);
    next.kill('SIGTERM');
    expect((await next.exited).code).toBe(0);
    const v = await dock.json<VerifyJson>(['verify']);
    expect(v).toMatchObject({ ok: true, files: { checked: 3, ok: 3 } });
  });

  it('a start that fails after taking the lock (a sim.dir it cannot make) exits, frees the lock and the store, and the next start runs', async () => {
    dock = new TestDock({ daemon: { heartbeatIntervalMs: 60_000 } });
    dock.dock('s1', { serial: 'CAM-1', files: [{ rel: 'a.mp4', size: 50_000 }] });
    // A regular file where the simulated dock's folder would go: found only when the bus starts,
    // after the lock, the store, recovery, the heartbeat and the ingest workers.
    const blocker = path.join(dock.root, 'not-a-folder');
    writeFileSync(blocker, 'x');
    dock.writeConfig({ sim: { dir: path.join(blocker, 'dock') }, daemon: { heartbeatIntervalMs: 60_000 } });
    const failed = dock.start();
    const exit = await exitWithin(failed, 15_000);
    expect(exit.code).toBe(1);
    expect(failed.stderr.trim().split('\n')).toHaveLength(1);
    expect(failed.stderr).toMatch(/not a directory/);
    expect(failed.events('daemon.started')).toHaveLength(1);

    // Status does not take the dead process for a running daemon, though its heartbeat is recent.
    const s = await dock.status();
    expect(s.daemon).toMatchObject({ running: false, pid: failed.child.pid });
    expect((await dock.cli(['status', '--require-running'])).code).toBe(1);

    dock.writeConfig({ daemon: { heartbeatIntervalMs: 60_000 } });
    const next = await nextStartRuns(dock);
    await allVerified(dock, 1);
    expect(errorLines(next)).toEqual([]);
  });

  it('a start refused for its replication credentials, after the heartbeat is written, leaves status saying not running', async () => {
    dock = new TestDock({
      daemon: { heartbeatIntervalMs: 60_000 },
      replication: { credentialsFile: 'no-such-credentials.json' },
    });
    const failed = dock.start();
    const exit = await exitWithin(failed, 15_000);
    expect(exit.code).toBe(2);
    expect(failed.stderr).toMatch(/^dockd: config: replication: .*no-such-credentials\.json does not exist/);
    expect(failed.events('daemon.started')).toHaveLength(1);
    expect((await dock.status()).daemon).toMatchObject({ running: false, pid: failed.child.pid });

    dock.writeConfig({ daemon: { heartbeatIntervalMs: 60_000 } });
    await nextStartRuns(dock);
  });
});
