/**
 * The dock PC's own storage as ingest sees it: free space below `ingest.minFreeBytes`, or
 * staging and the archive refusing writes. Either pauses offloading (invariant 8): no copy
 * starts, no attempt is spent, and each change is logged once.
 */
import type { Logger } from 'pino';
import type { Archive } from '../archive/archive.js';
import type { RecordingRow } from '../store/recordings.js';
import { classify, DiskLowError, errorText } from './errors.js';

export class DiskGuard {
  private low = false;
  /** Why staging or the archive cannot be written; null while they can. */
  private unwritableBecause: string | null = null;

  constructor(
    private readonly archive: Archive,
    private readonly minFreeBytes: number,
    private readonly log: Logger,
  ) {}

  /** Offloading waits for free space (`ingest.minFreeBytes`). */
  get diskLow(): boolean {
    return this.low;
  }

  /** Why offloading is paused for the dock PC's own storage; null when it is not. */
  get unwritable(): string | null {
    return this.unwritableBecause;
  }

  /** Whether the rest of this recording fits above the reserve; says when that changes. */
  async spaceFor(rec: Pick<RecordingRow, 'bytes' | 'bytes_done'>): Promise<boolean> {
    const free = await this.archive.freeBytes();
    const required = this.minFreeBytes + (rec.bytes - rec.bytes_done);
    this.setDiskLow(free < required, free, required);
    return !this.low;
  }

  /** Throws DiskLowError when `remaining` bytes no longer fit above the reserve (mid-copy). */
  async checkSpace(remaining: number): Promise<void> {
    const free = await this.archive.freeBytes();
    if (free < this.minFreeBytes + remaining) throw new DiskLowError(free, this.minFreeBytes + remaining);
  }

  /** A copy or our bookkeeping hit a full disk. */
  async noteDiskLow(err: unknown): Promise<void> {
    if (err instanceof DiskLowError) this.setDiskLow(true, err.freeBytes, err.requiredBytes);
    else this.setDiskLow(true, await this.archive.freeBytes().catch(() => 0), this.minFreeBytes);
  }

  private setDiskLow(low: boolean, freeBytes: number, requiredBytes: number): void {
    if (low === this.low) return;
    this.low = low;
    if (low) {
      this.log.warn(
        { event: 'ingest.disk_low', freeBytes, requiredBytes },
        `offloading paused: ${freeBytes} bytes free, ${requiredBytes} required`,
      );
    } else {
      this.log.info({ event: 'ingest.disk_ok', freeBytes, requiredBytes }, 'offloading resumed: free space is back');
    }
  }

  /**
   * While staging or the archive refuses writes, no copy starts: each would fail at once and
   * the camera's recordings are not at fault. The store is tried again before each claim.
   */
  async writable(): Promise<boolean> {
    if (this.unwritableBecause === null) return true;
    try {
      await this.archive.probeWritable();
    } catch (err) {
      if (classify(err) !== 'storeUnwritable') throw err;
      return false;
    }
    this.log.info(
      { event: 'ingest.store_writable' },
      'offloading resumed: staging and the archive can be written again',
    );
    this.unwritableBecause = null;
    return true;
  }

  noteUnwritable(err: unknown): void {
    if (this.unwritableBecause !== null) return;
    this.unwritableBecause = errorText(err);
    this.log.error(
      { event: 'ingest.store_unwritable', err },
      `offloading paused: the dock cannot write its staging or archive folder (${this.unwritableBecause}); recordings stay on the cameras and keep their retries`,
    );
  }
}
