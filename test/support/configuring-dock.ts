/**
 * A dock PC in one process, for tests of a driver the whole way: the dock manager with its
 * configurator (issue 24), the ingest engine and the store, with the drivers a test hands it.
 */
import { afterEach } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import type { CameraDriver } from '../../drivers/types.js';
import { defaultConfig, parseConfig, type RetryConfig } from '../../src/config.js';
import { CustodyLog } from '../../src/store/custody-log.js';
import { PlainArchive } from '../../src/archive/plain.js';
import { BatteryRecorder } from '../../src/battery/recorder.js';
import { CameraConfigurator } from '../../src/dock/configure.js';
import { DockManager } from '../../src/dock/manager.js';
import { CameraStore } from '../../src/store/cameras.js';
import { Transitions } from '../../src/store/transitions.js';
import { IngestEngine } from '../../src/ingest/engine.js';
import { Planner } from '../../src/ingest/planner.js';
import { openStore } from '../../src/store/db.js';

/** A line of the daemon's JSON log, as pino writes it. */
export interface LogLine {
  event?: string;
  level: number;
  msg: string;
  [field: string]: unknown;
}

export type Cleanup = Array<() => Promise<void> | void>;

/** What a test pushes here is undone after it, the last pushed first. Call at the top of a file. */
export function cleanupAfterEach(): Cleanup {
  const cleanup: Cleanup = [];
  afterEach(async () => {
    for (const f of cleanup.splice(0).reverse()) await f();
  });
  return cleanup;
}

/** Waits until `cond` holds, polling every 10 ms. */
export async function until(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export interface DockInProcess {
  /** The config's `clock` and `settings` sections count; without it, no camera is configured. */
  config?: Record<string, unknown>;
  retry?: RetryConfig;
  openRetry?: RetryConfig;
}

/**
 * A dock with `drivers`; `cleanup` collects what stops it and removes its data dir.
 */
export function dockInProcess(drivers: CameraDriver[], opts: DockInProcess, cleanup: Cleanup) {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'dockd-cfgdock-'));
  const db = openStore(dataDir);
  const lines: LogLine[] = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as LogLine) });
  const custody = new CustodyLog(db);
  const cfg = opts.config ? parseConfig(opts.config, dataDir) : null;
  const configurator = cfg
    ? new CameraConfigurator(db, custody, { clock: cfg.clock, settings: cfg.settings, earliest: () => 0 })
    : undefined;
  const cleared: string[] = [];
  const archive = new PlainArchive({ dataDir });
  const engine = new IngestEngine({
    transitions: new Transitions(db, custody),
    archive,
    cfg: { ...defaultConfig().ingest, minFreeBytes: 0, retry: opts.retry ?? defaultConfig().ingest.retry },
    log,
    events: {
      deviceGone: () => {},
      relist: () => {},
      cleared: (serial) => void cleared.push(serial),
    },
  });
  const dock = new DockManager({
    cameras: new CameraStore(db, custody),
    planner: new Planner(db, custody, log),
    engine,
    battery: new BatteryRecorder(db),
    log,
    drivers,
    batteryIntervalMs: 60_000,
    openRetry: opts.openRetry ?? { attempts: 4, baseDelayMs: 30, maxDelayMs: 60 },
    configurator,
  });
  cleanup.push(async () => {
    await dock.stop();
    await engine.stop();
    await archive.close();
    db.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  const events = (name: string) => lines.filter((l) => l.event === name);
  return { dock, db, custody, lines, events, cleared, dataDir };
}

/** A dock that configures its cameras after `config` (its `clock` and `settings` sections). */
export function configuringDock(drivers: CameraDriver[], config: Record<string, unknown>, cleanup: Cleanup) {
  return dockInProcess(drivers, { config, retry: { attempts: 5, baseDelayMs: 20, maxDelayMs: 50 } }, cleanup);
}
