import type { Logger } from 'pino';
import type { Db } from '../store/db.js';
import type { Config } from '../config.js';
import { recentHealth, storeVerdict } from '../battery/fleet.js';

/**
 * The battery alert policy, run at each battery reading of a docked camera: the camera's verdict
 * is stored for `dockd status`, and a warning is logged when the camera will not last a shift
 * (battery.short_runtime) or its battery has worn (battery.degraded).
 */
export function batteryAlerts(db: Db, cfg: Config['battery'], log: Logger): (serial: string, visit: number) => void {
  return (serial, visit) => {
    const { view } = recentHealth(db, serial, cfg.shiftHours);
    try {
      storeVerdict(db, serial, cfg.shiftHours, view);
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
      shiftHours: cfg.shiftHours,
    };
    if (view.status === 'short') {
      log.warn(
        { event: 'battery.short_runtime', ...fields },
        `camera ${serial} will not last a ${cfg.shiftHours} h shift (about ${view.projectedRuntimeHours} h from full)`,
      );
    } else if (view.status === 'degraded') {
      log.warn({ event: 'battery.degraded', ...fields }, `camera ${serial} battery health is ${view.healthPercent} %`);
    }
  };
}
