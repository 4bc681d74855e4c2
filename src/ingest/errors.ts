import { DriverError } from '../../drivers/types.js';
import { ArchiveError, type ArchiveErrorCode } from '../archive/errors.js';

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

export type FailureClass = 'transient' | 'permanent' | 'deviceGone' | 'diskLow' | 'storeUnwritable';

/**
 * What the dock PC's own filesystem answers when it cannot take a write it has room for: a
 * read-only remount after an error, a failing disk, a data dir owned by someone else. Drivers
 * wrap every error of theirs in a DriverError, so a bare one of these comes from our side.
 */
const UNWRITABLE = new Set(['EACCES', 'EPERM', 'EROFS', 'EIO', 'SQLITE_READONLY', 'SQLITE_IOERR', 'SQLITE_CANTOPEN']);

/** Our own disk's failures that are not the file system's refusals: each is worth another attempt. */
const ARCHIVE_FAILURES: Record<ArchiveErrorCode, FailureClass> = {
  // The next attempt opens the staging file again and goes on after what is durable in it.
  'write-stalled': 'transient',
  // The copy is thrown away and made again from the camera, which still holds the recording.
  'verify-mismatch': 'transient',
};

/**
 * The one place errors from drivers, the archive and the filesystem are sorted into what ingest
 * does next. A DriverError is the camera's, an ArchiveError our disk's.
 */
export function classify(err: unknown): FailureClass {
  if (err instanceof DiskLowError) return 'diskLow';
  if (err instanceof ArchiveError) return ARCHIVE_FAILURES[err.code];
  if (err instanceof DriverError) return err.kind;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOSPC' || code === 'EDQUOT' || code === 'SQLITE_FULL') return 'diskLow';
  if (code !== undefined && (UNWRITABLE.has(code) || code.startsWith('SQLITE_IOERR'))) return 'storeUnwritable';
  return 'transient';
}

export function errorText(err: unknown): string {
  if (err instanceof DriverError || err instanceof ArchiveError) return `${err.code}: ${err.message}`;
  if (err instanceof Error) return err.message;
  return String(err);
}
