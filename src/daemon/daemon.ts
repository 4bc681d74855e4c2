/**
 * The composition root: the only place that wires config, store, custody, buses, drivers, dock
 * and ingest together. Shutdown runs in reverse order of start-up under one deadline.
 */
import type { Logger } from 'pino';
import { FailureStreak } from '../log.js';
import { openStore, type Db } from '../store/db.js';
import { DataDirLock } from '../store/lock.js';
import { CustodyLog } from '../store/custody-log.js';
import { LocalArchive } from '../archive/local.js';
import { IngestEngine } from '../ingest/engine.js';
import { Planner } from '../ingest/planner.js';
import { recover } from '../ingest/recovery.js';
import { DockManager } from '../dock/manager.js';
import { CameraConfigurator } from '../dock/configure.js';
import { pruneCameraEvents } from '../store/camera-settings.js';
import { BatteryRecorder } from '../battery/recorder.js';
import { recentHealth, storeVerdict } from '../battery/fleet.js';
import { SimBus } from '../bus/sim.js';
import { UsbBus, UsbDeviceRegistry } from '../usb/bus.js';
import { cameraDrivers } from '../dock/drivers.js';
import type { Bus } from '../bus/types.js';
import { recordBeat, recordStart, recordStop, verifiedThisVisit } from '../store/heartbeat.js';
import { Checkpoints } from '../custody/checkpoints.js';
import type { Checkpoint } from '../store/checkpoints.js';
import { openDockKey } from '../custody/dock-key.js';
import { RateMeter } from './rate.js';
import { VERSION } from '../version.js';
import { sweepRetention } from '../custody/retention.js';
import { refuseSecretKeys } from '../crypto/write-only.js';
import type { Config } from '../config.js';
import { ConfigError } from '../lib/config-error.js';
import { loadCredentials } from '../replication/credentials.js';
import type { Replicator } from '../replication/replicator.js';
import type { FleetPublisher } from '../fleet/publish.js';

export interface RunningDaemon {
  db: Db;
  stop(reason: string): Promise<void>;
  stopped: Promise<void>;
}

export async function startDaemon(cfg: Config, log: Logger): Promise<RunningDaemon> {
  refuseSecretKeys(cfg.dataDir);
  const lock = DataDirLock.acquire(cfg.dataDir);
  const db = openStore(cfg.dataDir);
  const custody = new CustodyLog(db);
  const archive = new LocalArchive(cfg.dataDir, cfg.encryption !== null);
  await recover(db, custody, archive, log.child({ mod: 'recovery' }));

  let dockKey;
  try {
    dockKey = openDockKey(cfg.dataDir, db, custody, log.child({ mod: 'custody' }));
  } catch (err) {
    db.close();
    lock.release();
    throw err;
  }
  const checkpoints = new Checkpoints(db, dockKey);
  const logCheckpoint = (cp: Checkpoint | null) => {
    if (cp)
      log.info(
        { event: 'custody.checkpoint', seq: cp.seq, hash: cp.hash, keyId: cp.keyId, signature: cp.signature },
        `custody chain head ${cp.seq} signed`,
      );
  };
  recordStart(db, { pid: process.pid, intervalMs: cfg.daemon.heartbeatIntervalMs, version: VERSION });
  custody.record({ type: 'daemon.started', details: { pid: process.pid, version: VERSION, dataDir: cfg.dataDir } });
  log.info(
    {
      event: 'daemon.started',
      version: VERSION,
      dataDir: cfg.dataDir,
      pid: process.pid,
      dockKey: dockKey.publicKeyB64,
      keyId: dockKey.keyId,
    },
    `dockd ${VERSION} started`,
  );

  const startedAt = new Date().toISOString();
  let replicator: Replicator | null = null;
  let fleet: FleetPublisher | null = null;
  if (cfg.replication) {
    let creds;
    try {
      creds = loadCredentials(cfg.replication);
    } catch (err) {
      lock.release();
      db.close();
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
    replicator = new Replicator(
      db,
      custody,
      checkpoints,
      cfg.replication,
      new ObjectStore(cfg.replication, creds),
      log.child({ mod: 'replication' }),
      () => engine.queueActive > 0,
    );
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
  const engine = new IngestEngine(
    db,
    custody,
    archive,
    cfg.ingest,
    log.child({ mod: 'ingest' }),
    {
      deviceGone: (serial, reason) => dock?.deviceGone(serial, reason),
      cleared: (serial) => {
        log.info({ event: 'camera.cleared', camera: serial }, `camera ${serial}: nothing left to offload`);
        void configurator.cleared(serial);
      },
      relist: (serial) => dock?.relist(serial),
    },
    { replicate: cfg.replication !== null, recipients: cfg.encryption?.recipients ?? null },
  );
  const planner = new Planner(
    db,
    custody,
    log.child({ mod: 'planner' }),
    (id) => void archive.discardStaging(id).catch(() => undefined),
  );
  const battery = new BatteryRecorder(db, cfg.battery.keepDays);
  const usbDevices = new UsbDeviceRegistry();
  dock = new DockManager(db, custody, planner, engine, battery, log.child({ mod: 'dock' }), {
    drivers: cameraDrivers(cfg, (d) => usbDevices.native(d)),
    driverRules: cfg.usb.drivers,
    onBattery: (serial, visit) => {
      const { view } = recentHealth(db, serial, cfg.battery.shiftHours);
      try {
        storeVerdict(db, serial, cfg.battery.shiftHours, view);
      } catch (err) {
        // Only status's shortcut is lost (it judges the camera itself); the docking goes on.
        log.warn(
          { event: 'battery.verdict_not_stored', camera: serial, error: String(err) },
          `camera ${serial}: battery verdict not stored: ${String(err)}`,
        );
      }
      const fields = {
        camera: serial,
        visit,
        drainPercentPerHour: view.drainPercentPerHour,
        projectedRuntimeHours: view.projectedRuntimeHours,
        healthPercent: view.healthPercent,
        shiftHours: cfg.battery.shiftHours,
      };
      if (view.status === 'short') {
        log.warn(
          { event: 'battery.short_runtime', ...fields },
          `camera ${serial} will not last a ${cfg.battery.shiftHours} h shift (about ${view.projectedRuntimeHours} h from full)`,
        );
      } else if (view.status === 'degraded') {
        log.warn(
          { event: 'battery.degraded', ...fields },
          `camera ${serial} battery health is ${view.healthPercent} %`,
        );
      }
    },
    batteryIntervalMs: cfg.battery.sampleIntervalMs,
    configurator,
    onPresence: () => fleet?.poke(),
  });

  const buses: Bus[] = [];
  if (cfg.sim.dir) buses.push(new SimBus(cfg.sim.dir, log.child({ mod: 'sim' })));
  if (cfg.usb.enabled) buses.push(new UsbBus(cfg.usb, log.child({ mod: 'usb' }), { registry: usbDevices }));
  for (const bus of buses) await bus.start(dock);
  replicator?.start();
  fleet?.start();

  const rates = new RateMeter();
  const beatFailing = new FailureStreak();
  const beat = setInterval(() => {
    // Read in the same tick as the engine's bytes in flight: status adds the two up without
    // counting a file that finished in between twice (src/cli/progress.ts).
    try {
      const cameras = engine.progress().map((c) => ({
        ...c,
        ...verifiedThisVisit(db, c.serial),
        rateBytesPerSec: rates.update(c.serial, c.receivedBytes, c.inflightBytes > 0),
      }));
      recordBeat(db, {
        cameras,
        diskLow: engine.diskLowNow,
        storeUnwritable: engine.storeUnwritable,
        conflicts: dock?.conflicts() ?? [],
        active: engine.queueActive,
        replicationError: replicator?.lastError ?? null,
      });
      const failedForMs = beatFailing.ended();
      // Whoever was paged by the failure learns from the same log that it is over.
      if (failedForMs !== null)
        log.info(
          { event: 'daemon.heartbeat_restored', failedForMs },
          `the heartbeat is written again, after ${Math.round(failedForMs / 1000)} s`,
        );
      logCheckpoint(checkpoints.maybeSign(cfg.custody.checkpointEvery));
    } catch (err) {
      // A full disk, or another process holding the store locked, refuses even the heartbeat;
      // status then shows the daemon as not running.
      if (beatFailing.failed())
        log.error(
          { event: 'daemon.heartbeat_failed', err },
          `cannot write the heartbeat: ${(err as Error)?.message ?? String(err)}`,
        );
    }
    engine.kick();
  }, cfg.daemon.heartbeatIntervalMs);

  const sweep = async () => {
    try {
      const { deleted } = await sweepRetention(db, custody, cfg.retention);
      for (const d of deleted)
        log.info(
          { event: 'retention.deleted', camera: d.camera, recording: d.id, sha256: d.sha256, reason: d.reason },
          `retention deleted ${d.id}`,
        );
    } catch (err) {
      log.error({ event: 'retention.error', err }, 'retention sweep failed');
    }
    try {
      const samples = await battery.prune();
      if (samples)
        log.info(
          { event: 'battery.pruned', samples, keepDays: cfg.battery.keepDays },
          `deleted ${samples} battery samples older than ${cfg.battery.keepDays} days`,
        );
    } catch (err) {
      // As with the retention sweep: the next sweep tries again, and nothing depends on it meanwhile.
      log.error({ event: 'battery.prune_failed', err }, 'battery sample pruning failed');
    }
    try {
      // Cameras' event logs are kept exactly as long as their battery samples.
      const events = await pruneCameraEvents(db, battery.cutoff());
      if (events)
        log.info(
          { event: 'camera.events_pruned', events, keepDays: cfg.battery.keepDays },
          `deleted ${events} camera event-log entries older than ${cfg.battery.keepDays} days`,
        );
    } catch (err) {
      log.error({ event: 'camera.events_prune_failed', err }, 'camera event-log pruning failed');
    }
  };
  void sweep();
  const sweeper = setInterval(() => void sweep(), cfg.retention.sweepIntervalMs);

  let resolveStopped!: () => void;
  const stopped = new Promise<void>((r) => (resolveStopped = r));
  let stopping: Promise<void> | null = null;

  const stop = (reason: string): Promise<void> => {
    stopping ??= (async () => {
      log.info({ event: 'daemon.stopping', reason }, `stopping (${reason})`);
      clearInterval(beat);
      clearInterval(sweeper);
      for (const bus of buses) await bus.stop().catch(() => undefined);
      await engine.stop();
      await replicator?.stop();
      await dock.stop();
      custody.record({ type: 'daemon.stopped', details: { reason } });
      logCheckpoint(checkpoints.signHead());
      await fleet?.stop();
      recordStop(db);
      db.close();
      lock.release();
      log.info({ event: 'daemon.stopped', reason }, 'stopped');
      resolveStopped();
    })();
    return stopping;
  };
  return { db, stop, stopped };
}
