/**
 * Failures of the dock's own disk while it stores a copy: the staging file or the archive let the
 * copy down, not the camera. A camera's failures are DriverErrors (drivers/types.ts); ingest's
 * classifier (src/ingest/errors.ts) tells the two apart by type.
 *
 * What the file system itself refuses (ENOSPC, EACCES, EROFS, EIO, …) is not wrapped: it reaches
 * the classifier as the bare error Node gave, which no driver lets out, and is logged as it is.
 */
export type ArchiveErrorCode =
  /** A write to a staging file took no bytes and gave no error. */
  | 'write-stalled'
  /** The stored copy, read back from the disk, is not what was written to it. */
  | 'verify-mismatch';

export class ArchiveError extends Error {
  constructor(
    readonly code: ArchiveErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ArchiveError';
  }
}
