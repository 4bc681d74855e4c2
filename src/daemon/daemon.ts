/**
 * The composition root: the only place that wires config, store, custody, buses, drivers, dock
 * and ingest together. It constructs, connects, starts and stops; what runs on its own lives
 * beside it (alerts.ts, sweeps.ts, heartbeat.ts). Everything started is undone in reverse order
 * of start-up, by a start that fails part-way as by a stop (teardown.ts); the caller bounds the
 * stop with its deadline (src/cli/start.ts).
 */
import type { Logger } from 'pino';
import { openStore, type Db } from '../store/db.js';
import { DataDirLock } from '../store/lock.js';
import { CustodyLog } from '../store/custody-log.js';
import { EncryptedArchive } from '../archive/encrypted.js';
import { PlainArchive } from '../archive/plain.js';
import { Transitions } from '../store/transitions.js';
import { IngestEngine } from '../ingest/engine.js';
import { Planner } from '../ingest/planner.js';
import { recover } from '../ingest/recovery.js';
import { CameraStore } from '../store/cameras.js';
import { DockManager } from '../dock/manager.js';
import { CameraConfigurator } from '../dock/configure.js';
import { BatteryRecorder } from '../battery/recorder.js';
import { SimBus } from '../bus/sim.js';
import { UsbBus, UsbDeviceRegistry } from '../usb/bus.js';
import { cameraDrivers } from '../dock/drivers.js';
import type { Bus } from '../bus/types.js';
import { recordStart, recordStop } from '../store/heartbeat.js';
import { Checkpoints } from '../custody/checkpoints.js';
import { openDockKey } from '../custody/dock-key.js';
import { VERSION } from '../version.js';
import { refuseSecretKeys } from '../crypto/write-only.js';
import type { Config } from '../config.js';
import { ConfigError } from '../lib/config-error.js';
import { loadCredentials } from '../replication/credentials.js';
import type { Replicator } from '../replication/replicator.js';
import type { FleetPublisher } from '../fleet/publish.js';
import { batteryAlerts } from './alerts.js';
import { CheckpointSigner } from './checkpoints.js';
import { HeartbeatLoop } from './heartbeat.js';
import { Sweeps } from './sweeps.js';
import { Teardown } from './teardown.js';

export interface RunningDaemon {
  db: Db;
  /** Aborts the work under way, waits for it, and closes everything; the lock is released last. */
  stop(reason: string): Promise<void>;
  /** Settles when a stop has run to its end, whether or not every step of it succeeded. */
  stopped: Promise<void>;
}

export async function startDaemon(cfg: Config, log: Logger): Promise<RunningDaemon> {
  refuseSecretKeys(cfg.dataDir);
  const teardown = new Teardown();
  const abort = new AbortController();
  /** Set by stop: the custody session is closed by a stop, not after a failed start. */
  let stopReason: string | null = null;
  let db: Db;
  try {
    db = await assemble(cfg, log, teardown, abort.signal, () => stopReason);
  } catch (err) {
    abort.abort();
    // The error that failed the start is the one to report; the teardown's own would hide it.
    await teardown.run().catch(() => undefined);
    throw err;
  }

  let resolveStopped!: () => void;
  const stopped = new Promise<void>((r) => (resolveStopped = r));
  let stopping: Promise<void> | null = null;
  const stop = (reason: string): Promise<void> => {
    stopping ??= (async () => {
      log.info({ event: 'daemon.stopping', reason }, `stopping (${reason})`);
      stopReason = reason;
      abort.abort();
      try {
        await teardown.run();
        log.info({ event: 'daemon.stopped', reason }, 'stopped');
      } finally {
        resolveStopped();
      }
    })();
    return stopping;
  };
  return { db, stop, stopped };
}

/**
 * Opens, constructs, connects and starts everything, queuing on `teardown` the undo of each
 * piece as soon as it exists. `signal` aborts the loops; `stopReason` is null until a stop.
 */
async function assemble(
  cfg: Config,
  log: Logger,
  teardown: Teardown,
  signal: AbortSignal,
  stopReason: () => string | null,
): Promise<Db> {
  const lock = DataDirLock.acquire(cfg.dataDir);
  teardown.defer(() => lock.release());
  const db = openStore(cfg.dataDir);
  teardown.defer(() => db.close());
  const custody = new CustodyLog(db);
  const archive = cfg.encryption
    ? new EncryptedArchive({ dataDir: cfg.dataDir, recipients: cfg.encryption.recipients })
    : new PlainArchive({ dataDir: cfg.dataDir });
  teardown.defer(() => archive.close());
  await recover(db, custody, archive, log.child({ mod: 'recovery' }));

  const dockKey = openDockKey(cfg.dataDir, db, custody, log.child({ mod: 'custody' }));
  const checkpoints = new Checkpoints(db, dockKey);
  const signer = new CheckpointSigner(checkpoints, cfg.custody.checkpointEvery, log);
  recordStart(db, { pid: process.pid, intervalMs: cfg.daemon.heartbeatIntervalMs, version: VERSION });
  teardown.defer(() => recordStop(db));
  custody.record({ type: 'daemon.started', details: { pid: process.pid, version: VERSION, dataDir: cfg.dataDir } });
  log.info(
    {
      event: 'daemon.started',
      version: VERSION,
      dataDir: cfg.dataDir,
      dockKey: dockKey.publicKeyB64,
      keyId: dockKey.keyId,
    },
    `dockd ${VERSION} started`,
  );
  // The fleet's last document carries the custody head of daemon.stopped, so the publisher
  // stops after that event is appended: queued here, before it, as the list runs last first.
  let fleet: FleetPublisher | null = null;
  let fleetStarted = false;
  teardown.defer(() => (fleetStarted ? fleet?.stop() : undefined));
  teardown.defer(() => {
    const reason = stopReason();
    if (reason === null) return;
    custody.record({ type: 'daemon.stopped', details: { reason } });
    signer.signHead();
  });

  const startedAt = new Date().toISOString();
  let replicator: Replicator | null = null;
  if (cfg.replication) {
    let creds;
    try {
      creds = loadCredentials(cfg.replication);
    } catch (err) {
      throw new ConfigError('replication', (err as Error).message);
    }
    log.info(
      {
        event: 'replication.enabled',
        endpoint: cfg.replication.endpoint,
        bucket: cfg.replication.bucket,
        dockId: cfg.replication.dockId,
        accessKeyId: creds.accessKeyId,
      },
      `replicating to bucket ${cfg.replication.bucket}`,
    );
    // Loaded only when replication is on: the S3 client costs most of a second at start-up.
    const { ObjectStore } = await import('../replication/store.js');
    const { Replicator } = await import('../replication/replicator.js');
    const rep = new Replicator(
      db,
      custody,
      checkpoints,
      cfg.replication,
      new ObjectStore(cfg.replication, creds),
      log.child({ mod: 'replication' }),
      () => engine.queueActive > 0,
    );
    replicator = rep;
    teardown.defer(() => rep.stop());
    const { createFleetPublisher } = await import('../fleet/publish.js');
    fleet = createFleetPublisher({
      db,
      cfg,
      creds,
      key: dockKey,
      startedAt,
      version: VERSION,
      log: log.child({ mod: 'fleet' }),
    });
  }

  let dock: DockManager | null = null;
  const configurator = new CameraConfigurator(db, custody, {
    clock: cfg.clock,
    settings: cfg.settings,
    earliest: () => battery.cutoff(),
  });
  const engine = new IngestEngine({
    transitions: new Transitions(db, custody),
    archive,
    cfg: cfg.ingest,
    log: log.child({ mod: 'ingest' }),
    events: {
      deviceGone: (serial, reason) => dock?.deviceGone(serial, reason),
      cleared: (serial) => {
        log.info({ event: 'camera.cleared', camera: serial }, `camera ${serial}: nothing left to offload`);
        void configurator.cleared(serial);
      },
      relist: (serial) => dock?.relist(serial),
    },
    replicate: cfg.replication !== null,
  });
  // The engine first: it aborts every camera's copies at once, then the dock undocks them.
  teardown.defer(async () => {
    try {
      await engine.stop();
    } finally {
      await dock?.stop();
    }
  });
  const planner = new Planner(
    db,
    custody,
    log.child({ mod: 'planner' }),
    (id) => void archive.discardStaging(id).catch(() => undefined),
  );
  const battery = new BatteryRecorder(db, cfg.battery.keepDays);
  const usbDevices = new UsbDeviceRegistry();
  const dockManager = new DockManager({
    cameras: new CameraStore(db, custody),
    planner: planner,
    engine: engine,
    battery: battery,
    log: log.child({ mod: 'dock' }),
    drivers: cameraDrivers(cfg, (d) => usbDevices.native(d)),
    driverRules: cfg.usb.drivers,
    onBattery: batteryAlerts(db, cfg.battery, log),
    batteryIntervalMs: cfg.battery.sampleIntervalMs,
    configurator,
    onPresence: () => fleet?.poke(),
  });
  dock = dockManager;

  const buses: Bus[] = [];
  if (cfg.sim.dir) buses.push(new SimBus(cfg.sim.dir, log.child({ mod: 'sim' })));
  if (cfg.usb.enabled) buses.push(new UsbBus(cfg.usb, log.child({ mod: 'usb' }), { registry: usbDevices }));
  for (const bus of buses) {
    // Queued first: a bus that fails part-way through its start has a watcher or a timer to close.
    teardown.defer(() => bus.stop().catch(() => undefined));
    await bus.start(dockManager);
  }
  replicator?.start();
  fleet?.start();
  fleetStarted = true;

  const heartbeat = new HeartbeatLoop({
    db,
    intervalMs: cfg.daemon.heartbeatIntervalMs,
    log,
    ingest: engine,
    conflicts: () => dockManager.conflicts(),
    replicationError: () => replicator?.lastError ?? null,
    signer,
  });
  heartbeat.start(signal);
  teardown.defer(() => heartbeat.stop());
  const sweeps = new Sweeps({
    db,
    custody,
    battery,
    retention: cfg.retention,
    keepDays: cfg.battery.keepDays,
    log,
  });
  sweeps.start(signal);
  teardown.defer(() => sweeps.stop());
  return db;
}
