import { DriverError } from '../../drivers/types.js';

/** Free space fell below `ingest.minFreeBytes`; not the camera's fault, so no attempt is spent. */
export class DiskLowError extends Error {
  constructor(
    readonly freeBytes: number,
    readonly requiredBytes: number,
  ) {
    super(`archive free space ${freeBytes} bytes is below the required ${requiredBytes} bytes`);
    this.name = 'DiskLowError';
  }
}

export type FailureClass = 'transient' | 'permanent' | 'deviceGone' | 'diskLow';

/** The one place errors from drivers and the filesystem are sorted into what ingest does next. */
export function classify(err: unknown): FailureClass {
  if (err instanceof DiskLowError) return 'diskLow';
  if (err instanceof DriverError) return err.kind;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOSPC' || code === 'EDQUOT' || code === 'SQLITE_FULL') return 'diskLow';
  return 'transient';
}

export function errorText(err: unknown): string {
  if (err instanceof DriverError) return `${err.code}: ${err.message}`;
  if (err instanceof Error) return err.message;
  return String(err);
}
