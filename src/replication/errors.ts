/**
 * Errors of replication that callers branch on. Kept apart from store.ts, which loads the AWS SDK,
 * so that modules that only need to recognise them do not load it.
 */

/**
 * The archived file is no longer what was verified (another SHA-256, or fewer bytes); nothing
 * was uploaded.
 */
export class ArchiveMismatchError extends Error {
  override readonly name = 'ArchiveMismatchError';
  /**
   * @param expected the SHA-256 it was verified with
   * @param actual   what was found instead: a SHA-256, or where the file ends
   */
  constructor(
    readonly file: string,
    readonly expected: string,
    readonly actual: string,
  ) {
    const found = /^[0-9a-f]{64}$/.test(actual) ? `SHA-256 ${actual.slice(0, 12)}…` : actual;
    super(
      `${file} is no longer what was verified (${found} instead of SHA-256 ${expected.slice(0, 12)}…); not uploaded`,
    );
  }
}
