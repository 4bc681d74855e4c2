/**
 * The docking lifecycle: docked → listing → offloading → cleared → undocked. It turns bus events
 * into sessions, records each camera's visit (identity, slot, clock skew, battery) and hands the
 * camera to the ingest engine. Events for one slot are handled strictly one after another.
 */
import type { Logger } from 'pino';
import { DriverError, type CameraDriver, type CameraSession, type DeviceInfo } from '../../drivers/types.js';
import type { BatteryRecorder } from '../battery/recorder.js';
import type { CameraStore } from '../store/cameras.js';
import type { IngestEngine } from '../ingest/engine.js';
import type { Planner } from '../ingest/planner.js';
import type { BusListener } from '../bus/types.js';
import type { RetryConfig } from '../config.js';
import { backoffMs } from '../lib/failure-policy.js';
import { classify, errorText } from '../ingest/errors.js';
import { selectDriver } from './drivers.js';
import type { CameraConfigurator } from './configure.js';

const SERIAL = /^[^\p{Cc}]{1,64}$/u;

/**
 * A camera that fails to open with a transient error is tried again while it stays plugged in:
 * right after it is plugged, gvfs or gphoto2 may hold it, a mass-storage volume may not be mounted
 * yet, a first PTP transaction may time out. It is given up after six attempts, with 30–60 s of
 * waiting between them in all.
 */
const OPEN_RETRY: RetryConfig = { attempts: 6, baseDelayMs: 2000, maxDelayMs: 30_000 };

interface Slot {
  device: DeviceInfo;
  state: 'opening' | 'docked' | 'gone' | 'invalid' | 'retrying' | 'conflict';
  session?: CameraSession;
  serial?: string;
  visit?: number;
  /** The clock skew measured at docking: it dates what this visit lists. */
  skew?: number | null;
  /** For a refused duplicate: the slot where its serial is docked, and since when. */
  conflict?: { dockedIn: string; since: string };
  lastBattery?: { percent: number; charging: boolean } | null;
}

export interface DockOptions {
  /** The cameras' rows and their custody events. */
  cameras: CameraStore;
  planner: Planner;
  engine: IngestEngine;
  battery: BatteryRecorder;
  log: Logger;
  drivers: CameraDriver[];
  batteryIntervalMs: number;
  /** `usb.drivers`: VID:PID → driver name, chosen before any driver's own score. */
  driverRules?: Record<string, string>;
  /** Called after each battery reading, so battery alerts can be raised once per visit. */
  onBattery?(serial: string, visit: number): void;
  /** Called when a camera docks or leaves: the fleet's state document says who is here. */
  onPresence?(serial: string, docked: boolean): void;
  /** How often and how fast a transient failure to open a camera is retried. */
  openRetry?: RetryConfig;
  /** Event log, clock and settings of each camera at docking; absent = none of them. */
  configurator?: CameraConfigurator;
}

export class DockManager implements BusListener {
  private readonly slots = new Map<string, Slot>();
  private readonly chains = new Map<string, Promise<void>>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly reopenTimers = new Map<string, NodeJS.Timeout>();
  private readonly cameras: CameraStore;
  private readonly planner: Planner;
  private readonly engine: IngestEngine;
  private readonly battery: BatteryRecorder;
  private readonly log: Logger;

  constructor(private readonly opts: DockOptions) {
    ({
      cameras: this.cameras,
      planner: this.planner,
      engine: this.engine,
      battery: this.battery,
      log: this.log,
    } = opts);
  }

  private key(bus: string, key: string): string {
    return `${bus}:${key}`;
  }

  /** Runs `fn` after everything already queued for the same slot. */
  private serially(k: string, fn: () => Promise<void>): Promise<void> {
    const prev = this.chains.get(k) ?? Promise.resolve();
    const next = prev.then(fn).catch((err: unknown) => {
      this.log.error({ event: 'dock.error', slotKey: k, err }, 'docking step failed');
    });
    this.chains.set(k, next);
    return next;
  }

  attach(device: DeviceInfo): void {
    const k = this.key(device.bus, device.key);
    void this.serially(k, () => this.dock(k, device));
  }

  change(device: DeviceInfo): void {
    const k = this.key(device.bus, device.key);
    void this.serially(k, async () => {
      const slot = this.slots.get(k);
      if (slot?.state === 'docked') await this.sampleBattery(slot);
      else await this.dock(k, device);
    });
  }

  detach(bus: DeviceInfo['bus'], key: string): void {
    const k = this.key(bus, key);
    void this.serially(k, () => this.undock(k, 'removed'));
  }

  /** The engine saw the device vanish mid-transfer although the bus did not (yet) say so. */
  deviceGone(serial: string, reason: string): void {
    for (const [k, slot] of this.slots) {
      if (slot.serial === serial && slot.state === 'docked')
        void this.serially(k, () => this.undock(k, 'device gone', reason));
    }
  }

  private async dock(k: string, device: DeviceInfo, attempt = 1): Promise<void> {
    const existing = this.slots.get(k);
    if (existing?.state === 'docked') return;
    // A bus event for the slot (a change, a new attach) starts over from the first attempt.
    clearTimeout(this.reopenTimers.get(k));
    this.reopenTimers.delete(k);
    const driver = selectDriver(this.opts.drivers, device, this.opts.driverRules);
    const slotLog = this.log.child({ slot: device.slot });
    if (!driver) {
      slotLog.debug({ event: 'usb.ignored', device }, 'no driver for device');
      return;
    }
    const slot: Slot = { device, state: 'opening' };
    this.slots.set(k, slot);
    let session: CameraSession;
    try {
      session = await driver.open(device, slotLog.child({ mod: driver.name }));
      const id = await session.identity();
      if (!SERIAL.test(id.serial))
        throw new DriverError('permanent', 'bad-serial', 'camera reports no usable serial (1–64 printable characters)');
      slot.session = session;
      slot.serial = id.serial;
      if (await this.refuseDuplicate(slot, id, driver.name)) return;
      await this.openVisit(slot, id, session, driver.name);
    } catch (err) {
      slot.state = 'invalid';
      await slot.session?.close().catch(() => undefined);
      const retry = this.opts.openRetry ?? OPEN_RETRY;
      // The dock PC's own store refusing the visit (read-only, full) is no fault of the camera:
      // it is docked as soon as the store takes writes again, however long that takes.
      const storeFault = !(err instanceof DriverError) && ['storeUnwritable', 'diskLow'].includes(classify(err));
      if (
        (storeFault || (err instanceof DriverError && err.transient && attempt < retry.attempts)) &&
        this.slots.get(k) === slot
      ) {
        slot.state = 'retrying';
        const delayMs = backoffMs(attempt, retry);
        slotLog.warn(
          {
            event: 'camera.open_retry',
            slotKey: device.key,
            attempt,
            attempts: storeFault ? null : retry.attempts,
            delayMs,
            code: err instanceof DriverError ? err.code : ((err as NodeJS.ErrnoException).code ?? null),
            error: errorText(err),
          },
          `cannot ${storeFault ? 'record the docking of' : 'open'} the camera in slot ${device.slot} (attempt ${attempt}${storeFault ? '' : ` of ${retry.attempts}`}): ${errorText(err)}; trying again in ${(delayMs / 1000).toFixed(1)} s`,
        );
        const timer = setTimeout(() => {
          this.reopenTimers.delete(k);
          void this.serially(k, async () => {
            // Unplugged or opened some other way meanwhile: nothing to retry.
            if (this.slots.get(k) !== slot || slot.state !== 'retrying') return;
            await this.dock(k, device, attempt + 1);
          });
        }, delayMs);
        timer.unref();
        this.reopenTimers.set(k, timer);
        return;
      }
      const where = device.path ? `${device.path}/camera.json` : device.key;
      const tries = attempt > 1 ? ` after ${attempt} attempts` : '';
      slotLog.error(
        {
          event: 'camera.rejected',
          slotKey: device.key,
          file: where,
          attempts: attempt,
          code: err instanceof DriverError ? err.code : undefined,
          error: (err as Error).message,
        },
        `cannot dock camera in slot ${device.slot}${tries}: ${(err as Error).message}`,
      );
      return;
    }
  }

  /**
   * Two cameras that report one serial (cloned or mis-provisioned) must not share one record:
   * the second would be docked over the first, whose recordings it cannot hold. When the serial
   * is docked in another slot whose camera still answers with it, the newcomer is refused, said
   * so, and docked as soon as the other leaves. A camera that no longer answers there has moved.
   */
  private async refuseDuplicate(
    slot: Slot,
    id: { serial: string; model: string; firmware: string },
    driverName: string,
  ): Promise<boolean> {
    for (const [k, other] of this.slots) {
      if (other === slot || other.serial !== id.serial || other.state !== 'docked') continue;
      const answers = await other.session!.identity().then(
        (o) => o.serial === id.serial,
        () => false,
      );
      if (!answers) {
        await this.undock(k, 'moved');
        continue;
      }
      const since = new Date().toISOString();
      slot.state = 'conflict';
      slot.conflict = { dockedIn: other.device.slot, since };
      await slot.session?.close().catch(() => undefined);
      slot.session = undefined;
      this.cameras.serialConflict(id.serial, {
        slot: slot.device.slot,
        dockedIn: other.device.slot,
        bus: slot.device.bus,
        driver: driverName,
        model: id.model,
        firmware: id.firmware,
      });
      this.log.error(
        {
          event: 'camera.serial_conflict',
          camera: id.serial,
          slot: slot.device.slot,
          dockedIn: other.device.slot,
          model: id.model,
        },
        `the camera in ${slot.device.slot} reports serial ${id.serial}, which is docked in ${other.device.slot}: not offloaded until that camera leaves; a serial must be unique to each camera`,
      );
      return true;
    }
    return false;
  }

  /** Cameras refused for a serial already docked elsewhere, for status. */
  conflicts(): Array<{ serial: string; slot: string; dockedIn: string; since: string }> {
    return [...this.slots.values()]
      .filter((s) => s.state === 'conflict' && s.conflict)
      .map((s) => ({ serial: s.serial!, slot: s.device.slot, ...s.conflict! }));
  }

  /** Lists a docked camera again (its files changed under a copy or a deletion) and plans what it holds now. */
  relist(serial: string): void {
    for (const [k, slot] of this.slots) {
      if (slot.serial !== serial || slot.state !== 'docked') continue;
      void this.serially(k, async () => {
        if (slot.state !== 'docked' || !slot.session) return;
        const plan = await this.planner.plan(serial, slot.visit!, slot.session, slot.skew ?? null);
        this.log.info(
          { event: 'camera.relisted', camera: serial, slot: slot.device.slot, ...plan },
          `camera ${serial} listed again: ${plan.discovered + plan.replaced} new recordings`,
        );
        this.engine.kick();
      });
    }
  }

  private async openVisit(
    slot: Slot,
    id: { serial: string; model: string; firmware: string },
    session: CameraSession,
    driverName: string,
  ): Promise<void> {
    const serial = id.serial;
    const skew = await measureSkew(session);
    const battery = await session.battery().catch(() => null);
    const now = new Date();
    const visit = this.cameras.nextVisit(serial);
    this.cameras.docked(
      {
        serial,
        model: id.model,
        firmware: id.firmware,
        slot: slot.device.slot,
        at: now,
        clockSkewSeconds: skew,
        battery,
        details: { bus: slot.device.bus, driver: driverName },
      },
      visit,
      () => {
        if (battery) this.battery.sample(serial, visit, battery, now.getTime());
      },
    );
    slot.state = 'docked';
    slot.visit = visit;
    slot.skew = skew;
    slot.lastBattery = battery;
    const log = this.log.child({ camera: serial, slot: slot.device.slot });
    log.info(
      { event: 'camera.docked', model: id.model, firmware: id.firmware, clockSkewSeconds: skew, battery, visit },
      `camera ${serial} docked in ${slot.device.slot}`,
    );
    if (session.deviceLog && skew !== null) {
      const entries = await session.deviceLog().catch(() => []);
      const added = this.battery.ingestDeviceLog(serial, visit, entries, skew);
      if (added)
        log.info(
          { event: 'battery.log_ingested', samples: added },
          `stored ${added} entries of the camera's battery log`,
        );
    }
    this.opts.onBattery?.(serial, visit);
    await this.opts.configurator?.atDocking({ serial, model: id.model, visit, session, skew, log });
    // After the verdict, so that the fleet learns of the docking and the battery in one document.
    this.opts.onPresence?.(serial, true);
    this.startSampling(slot);
    const plan = await this.planner.plan(serial, visit, session, skew);
    log.info(
      { event: 'camera.listed', ...plan },
      `camera ${serial}: ${plan.discovered} new recordings, ${plan.known} known`,
    );
    this.engine.attach(serial, visit, session);
  }

  private startSampling(slot: Slot): void {
    const k = this.key(slot.device.bus, slot.device.key);
    clearInterval(this.timers.get(k));
    this.timers.set(
      k,
      setInterval(() => void this.serially(k, () => this.sampleBattery(slot)), this.opts.batteryIntervalMs).unref(),
    );
  }

  private async sampleBattery(slot: Slot): Promise<void> {
    if (slot.state !== 'docked' || !slot.session || !slot.serial) return;
    let reading;
    try {
      reading = await slot.session.battery();
    } catch {
      return;
    }
    if (!reading) return;
    slot.lastBattery = reading;
    const now = Date.now();
    this.cameras.batteryRead(slot.serial!, reading, now, () =>
      this.battery.sample(slot.serial!, slot.visit!, reading, now),
    );
  }

  private async undock(k: string, reason: string, error?: string): Promise<void> {
    const slot = this.slots.get(k);
    clearInterval(this.timers.get(k));
    this.timers.delete(k);
    clearTimeout(this.reopenTimers.get(k));
    this.reopenTimers.delete(k);
    if (!slot) return;
    if (slot.state !== 'docked' || !slot.serial) {
      this.slots.delete(k);
      return;
    }
    const serial = slot.serial;
    slot.state = reason === 'device gone' ? 'gone' : 'invalid';
    if (reason !== 'device gone') this.slots.delete(k);
    await this.engine.detach(serial);
    await slot.session?.close().catch(() => undefined);
    const now = new Date();
    this.cameras.undocked(
      serial,
      now,
      { slot: slot.device.slot, reason, error: error ?? null, visit: slot.visit },
      () => {
        // Leaving the dock ends charging: this sample opens the shift's non-charging interval.
        if (slot.lastBattery)
          this.battery.sample(
            serial,
            slot.visit!,
            { percent: slot.lastBattery.percent, charging: false },
            now.getTime(),
          );
      },
    );
    this.log.info(
      { event: 'camera.undocked', camera: serial, slot: slot.device.slot, reason },
      `camera ${serial} left ${slot.device.slot} (${reason})`,
    );
    this.opts.onPresence?.(serial, false);
    if (reason !== 'daemon stopped') this.dockWaiting(serial, k);
  }

  /** A camera refused for this serial may dock now that the one it collided with left. */
  private dockWaiting(serial: string, leftKey: string): void {
    for (const [k, s] of this.slots) {
      if (k === leftKey || s.state !== 'conflict' || s.serial !== serial) continue;
      const device = s.device;
      this.slots.delete(k);
      void this.serially(k, () => this.dock(k, device));
      return;
    }
  }

  dockedSerials(): string[] {
    return [...this.slots.values()].filter((s) => s.state === 'docked' && s.serial).map((s) => s.serial!);
  }

  async stop(): Promise<void> {
    for (const k of [...this.slots.keys()]) await this.serially(k, () => this.undock(k, 'daemon stopped'));
    await Promise.allSettled([...this.chains.values()]);
  }
}

async function measureSkew(session: CameraSession): Promise<number | null> {
  if (!session.clock) return null;
  try {
    const t0 = Date.now();
    const cam = await session.clock();
    const t1 = Date.now();
    const skew = (cam.getTime() - (t0 + t1) / 2) / 1000;
    return Number.isFinite(skew) ? Math.round(skew * 10) / 10 : null;
  } catch {
    return null;
  }
}
