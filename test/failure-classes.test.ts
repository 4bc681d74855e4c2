/**
 * What ingest does after a failure depends on whose it is: the camera's (DriverError), our disk's
 * (ArchiveError, or a bare file-system error) or the free-space guard's. The classes and the texts
 * the log and custody record are pinned here.
 */
import { describe, expect, it } from 'vitest';
import { DriverError } from '../drivers/types.js';
import { ArchiveError } from '../src/archive/errors.js';
import { classify, DiskLowError, errorText } from '../src/ingest/errors.js';
import { spoilsStaging } from '../src/ingest/copy.js';

const errno = (code: string) => Object.assign(new Error(`${code}: failed`), { code });

describe('failure classes', () => {
  it.each([
    ['a write the staging file took nothing of', new ArchiveError('write-stalled', 'x'), 'transient'],
    ['a stored copy that is not what was written', new ArchiveError('verify-mismatch', 'x'), 'transient'],
    ['two reads of the camera that disagree', new DriverError('transient', 'source-mismatch', 'x'), 'transient'],
    ['a camera read error', new DriverError('transient', 'io-error', 'x'), 'transient'],
    ['a recording the camera refuses', new DriverError('permanent', 'ptp-0x2009', 'x'), 'permanent'],
    ['a camera that left', new DriverError('deviceGone', 'gone', 'x'), 'deviceGone'],
    ['free space below the minimum', new DiskLowError(1, 2), 'diskLow'],
    ['a full disk', errno('ENOSPC'), 'diskLow'],
    ['a full store', errno('SQLITE_FULL'), 'diskLow'],
    ['a staging folder we may not write', errno('EACCES'), 'storeUnwritable'],
    ['a read-only remount', errno('EROFS'), 'storeUnwritable'],
    ['a failing disk', errno('EIO'), 'storeUnwritable'],
    ['anything else', new Error('x'), 'transient'],
  ])('%s is %s', (_what, err, kind) => {
    expect(classify(err)).toBe(kind);
  });

  it('tells our disk from the camera by type, whatever the code', () => {
    expect(new ArchiveError('write-stalled', 'x')).not.toBeInstanceOf(DriverError);
  });

  it('words an archive failure as a driver failure is worded: its code, then what happened', () => {
    expect(errorText(new ArchiveError('write-stalled', 'the staging file accepted no bytes'))).toBe(
      'write-stalled: the staging file accepted no bytes',
    );
    expect(errorText(new DriverError('transient', 'stall', 'no data'))).toBe('stall: no data');
    expect(errorText(errno('ENOSPC'))).toBe('ENOSPC: failed');
  });

  it('throws a copy away only when the camera contradicted it or the disk did not keep it', () => {
    expect(spoilsStaging(new ArchiveError('verify-mismatch', 'x'))).toBe(true);
    expect(spoilsStaging(new DriverError('transient', 'source-mismatch', 'x'))).toBe(true);
    expect(spoilsStaging(new ArchiveError('write-stalled', 'x'))).toBe(false);
    expect(spoilsStaging(new DriverError('transient', 'io-error', 'x'))).toBe(false);
    expect(spoilsStaging(errno('ENOSPC'))).toBe(false);
  });
});
