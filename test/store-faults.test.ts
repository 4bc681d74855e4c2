import { afterEach, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { allVerified, sha256, TestDock, waitFor, type DaemonProcess, type VerifyJson } from './support/harness.js';

let dock: TestDock | undefined;
afterEach(async () => {
  await dock?.cleanup();
  dock = undefined;
});

/** Every recording of the camera verified once with its camera's SHA-256, archived intact, and gone from the camera. */
async function expectOffloaded(dock: TestDock, serial: string, slot: string, count: number): Promise<void> {
  for (const r of await allVerified(dock, count)) {
    const src = dock.sources.get(`${serial}\n${r.sourcePath}`)!;
    expect(r.sha256).toBe(src.sha256);
    expect(sha256(readFileSync(r.archivePath!))).toBe(src.sha256);
    expect(dock.cameraFileExists(slot, r.sourcePath)).toBe(false);
  }
}

/** The daemon never crashed, stops on SIGTERM with 0, and `dockd verify` finds the chain and `files` archived files sound. */
async function stopsCleanlyAndVerifies(dock: TestDock, d: DaemonProcess, files: number): Promise<void> {
  expect(d.events('daemon.crashed')).toEqual([]);
  d.kill('SIGTERM');
  expect((await d.exited).code).toBe(0);
  const v = JSON.parse((await dock.cli(['verify', '--json'])).stdout) as VerifyJson;
  expect(v).toMatchObject({ ok: true, files: { checked: files, ok: files } });
}

describe('a store that fails under the running daemon', () => {
  // An admin's sqlite3 shell left inside a write transaction: every write of the daemon waits its
  // 5 s busy timeout and then fails, for as long as the shell keeps the lock.
  it('keeps every recording and the daemon through a write lock held past the busy timeout, and says when it is over', async () => {
    dock = new TestDock({ ingest: { readTimeoutMs: 30_000 } });
    dock.dock('s1', {
      serial: 'L-1',
      files: [
        { rel: 'DCIM/A.MP4', size: 24_000_000 },
        { rel: 'DCIM/B.MP4', size: 3_000_000 },
      ],
      spec: { throughputBytesPerSec: 4_000_000 },
    });
    const d = dock.start();
    await d.waitForEvent('offload.started');

    const shell = new Database(path.join(dock.dataDir, 'dockd.db'));
    shell.prepare('BEGIN IMMEDIATE').run();
    try {
      const failed = await d.waitForEvent('daemon.heartbeat_failed', 15_000);
      expect(failed.msg).toMatch(/database is locked/);
      // Reading is not refused: status answers, and tells the truth that no heartbeat comes.
      const during = await dock.status();
      expect(during.daemon.running).toBe(false);
      await sleep(2000);
    } finally {
      shell.prepare('COMMIT').run();
      shell.close();
    }

    const restored = await d.waitForEvent('daemon.heartbeat_restored', 15_000);
    expect(restored.failedForMs).toBeGreaterThan(1000);
    await expectOffloaded(dock, 'L-1', 's1', 2);
    expect(d.events('daemon.heartbeat_failed')).toHaveLength(1);
    await waitFor('the daemon shown as running again', async () => (await dock!.status()).daemon.running);
    await stopsCleanlyAndVerifies(dock, d, 2);
  }, 90_000);

  // A read of the queue that fails, as on a failing disk: here the jobs table is renamed away
  // by another process for a few seconds while a camera is being offloaded.
  it('keeps every recording and the daemon when the queue cannot be read for a while, and goes on once it can', async () => {
    dock = new TestDock({});
    dock.dock('s1', {
      serial: 'Q-1',
      files: [
        { rel: 'DCIM/A.MP4', size: 12_000_000 },
        { rel: 'DCIM/B.MP4', size: 2_000_000 },
        { rel: 'DCIM/C.MP4', size: 2_000_000 },
      ],
      spec: { throughputBytesPerSec: 4_000_000 },
    });
    const d = dock.start();
    await d.waitForEvent('offload.started');
    const shell = new Database(path.join(dock.dataDir, 'dockd.db'));
    shell.exec('ALTER TABLE jobs RENAME TO jobs_elsewhere');
    try {
      const unreadable = await d.waitForEvent('ingest.queue_unreadable', 15_000);
      expect(unreadable.level).toBe(50);
      expect(unreadable.msg).toMatch(/no such table: jobs/);
      await sleep(3000);
      // Nothing is deleted from the camera while the store cannot say what was verified.
      for (const f of ['DCIM/A.MP4', 'DCIM/B.MP4', 'DCIM/C.MP4']) expect(dock.cameraFileExists('s1', f)).toBe(true);
    } finally {
      shell.exec('ALTER TABLE jobs_elsewhere RENAME TO jobs');
      shell.close();
    }

    await d.waitForEvent('ingest.queue_readable', 15_000);
    await expectOffloaded(dock, 'Q-1', 's1', 3);
    expect(d.events('ingest.queue_unreadable')).toHaveLength(1);
    await stopsCleanlyAndVerifies(dock, d, 3);
  }, 90_000);
});
