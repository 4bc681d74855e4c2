/**
 * Per-model tables of the drivers (the PTP setting profiles, the mass-storage camera files): a
 * row names the camera it is for by USB VID:PID or by model, and says what it is and where its
 * facts come from, for the people who read and extend the table.
 */

export interface DeviceRow {
  /** USB VID:PID, or the model as the camera reports it; at least one. */
  vendorId?: number;
  productId?: number;
  model?: string;
  /** What the row is. */
  device: string;
  /** Where its facts come from (a vendor document, a firmware version). */
  source: string;
}

/** The row for a device: by VID:PID first, then by model (trimmed, case-insensitive); null when none. */
export function deviceRowFor<T extends DeviceRow>(
  table: readonly T[],
  device: { vendorId?: number; productId?: number; model: string },
): { row: T; by: 'VID:PID' | 'model' } | null {
  const byId = table.find(
    (r) =>
      r.vendorId !== undefined &&
      r.productId !== undefined &&
      r.vendorId === device.vendorId &&
      r.productId === device.productId,
  );
  if (byId) return { row: byId, by: 'VID:PID' };
  const model = device.model.trim().toLowerCase();
  const byModel = table.find((r) => r.model !== undefined && r.model.trim().toLowerCase() === model);
  return byModel ? { row: byModel, by: 'model' } : null;
}
