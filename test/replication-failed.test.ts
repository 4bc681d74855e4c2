/**
 * An upload that keeps failing until its retries are used up: the log's last word on it says it
 * was given up, once, and status counts it. The object store is replaced by one that always
 * drops the connection (what a store behind a dead link does); the rest is real: the store, the
 * queue, the custody log, the CLI.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { parseConfig } from '../src/config.js';
import { openStore, type Db } from '../src/store/db.js';
import { CustodyLog } from '../src/store/custody-log.js';
import { Checkpoints } from '../src/custody/checkpoints.js';
import { loadOrCreateDockKey } from '../src/crypto/signing.js';
import { queueReplication } from '../src/store/replication-jobs.js';
import { Replicator } from '../src/replication/replicator.js';
import type { ObjectStore } from '../src/replication/store.js';
import { cli, waitFor, type LogLine } from './support/harness.js';

let dir: string;
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const REPLICATION = {
  endpoint: 'http://127.0.0.1:9',
  bucket: 'evidence',
  dockId: 'station-test',
  retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 5 },
};

/** A data dir with one verified recording queued for replication. */
function storeWithQueuedUpload(): Db {
  dir = mkdtempSync(path.join(os.tmpdir(), 'dockd-repl-failed-'));
  const dataDir = path.join(dir, 'data');
  const db = openStore(dataDir);
  const now = new Date().toISOString();
  const file = path.join(dir, 'REC0001.MP4');
  writeFileSync(file, 'footage');
  db.prepare("INSERT INTO cameras (serial, first_seen, last_seen) VALUES ('C-1', ?, ?)").run(now, now);
  db.prepare(
    "INSERT INTO recordings (id, camera, source_path, source_id, bytes, status, sha256, stored_sha256, archive_path, discovered_at, verified_at) VALUES ('r1', 'C-1', 'DCIM/REC0001.MP4', 's1', 7, 'verified', ?, ?, ?, ?, ?)",
  ).run('a'.repeat(64), 'a'.repeat(64), file, now, now);
  queueReplication(db, 'r1', now);
  return db;
}

/** The connection drops on every request, as it does when the store is unreachable. */
const unreachable = {
  head: () => Promise.reject(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })),
  checkBucket: () => Promise.reject(new Error('not reached')),
  destroy: () => undefined,
} as unknown as ObjectStore;

describe('replication whose retries run out', () => {
  it('logs replication.failed once, as its last line, and status counts the failed upload', async () => {
    const db = storeWithQueuedUpload();
    const lines: LogLine[] = [];
    const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as LogLine) });
    const cfg = parseConfig({ dataDir: path.join(dir, 'data'), replication: REPLICATION }, dir);
    const replicator = new Replicator(
      db,
      new CustodyLog(db),
      new Checkpoints(db, loadOrCreateDockKey(cfg.dataDir)),
      cfg.replication!,
      unreachable,
      log,
      () => false,
    );
    replicator.start();
    try {
      await waitFor(
        'the upload given up',
        async () => db.prepare("SELECT 1 FROM jobs WHERE state = 'failed'").get(),
        10_000,
        20,
      );
      // Time for the loop to come round again: a given-up job must not be tried or logged again.
      await new Promise((r) => setTimeout(r, 700));
    } finally {
      await replicator.stop();
    }
    const replication = lines.filter((l) => l.event?.startsWith('replication.'));
    expect(replication.map((l) => l.event)).toEqual(['replication.retry', 'replication.retry', 'replication.failed']);
    const last = replication.at(-1)!;
    expect(last).toMatchObject({ level: 50, camera: 'C-1', recording: 'r1', attempts: 3, error: 'socket hang up' });
    expect(last.msg).not.toMatch(/retrying/);
    expect(last.msg).toMatch(/giving up/);
    db.close();

    const config = path.join(dir, 'dockd.config.json');
    writeFileSync(config, JSON.stringify({ dataDir: path.join(dir, 'data'), replication: REPLICATION }));
    const json = await cli(['--config', config, 'status', '--json']);
    expect(json.code).toBe(0);
    expect((JSON.parse(json.stdout) as { replication: { failed: number; count: number } }).replication).toMatchObject({
      failed: 1,
      count: 0,
    });
    const human = await cli(['--config', config, 'status']);
    expect(human.stdout).toMatch(
      /^replicate 0 waiting \(0 B\) {2}1 FAILED \(retries exhausted: dockd replicate --all queues them again\)/m,
    );
  });
});
