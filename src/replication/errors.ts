/**
 * Errors of replication that callers branch on. Kept apart from store.ts, which loads the AWS SDK,
 * so that modules that only need to recognise them do not load it.
 */

/** The archived file no longer has the SHA-256 it was verified with; nothing was uploaded. */
export class ArchiveMismatchError extends Error {
  override readonly name = 'ArchiveMismatchError';
  constructor(
    readonly file: string,
    readonly expected: string,
    readonly actual: string,
  ) {
    super(`${file} no longer matches the SHA-256 it was verified with (${actual.slice(0, 12)}… instead of ${expected.slice(0, 12)}…); not uploaded`);
  }
}
