import type { CameraDriver, DeviceInfo } from '../../drivers/types.js';

/** Picks the driver with the highest score for a device; ties go to the earlier one. */
export function selectDriver(drivers: CameraDriver[], device: DeviceInfo): CameraDriver | null {
  let best: CameraDriver | null = null;
  let bestScore = 0;
  for (const d of drivers) {
    const s = d.matches(device);
    if (s > bestScore) {
      best = d;
      bestScore = s;
    }
  }
  return best;
}
