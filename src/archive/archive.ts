/**
 * The archive: how a recording's bytes land on the dock's own disk. Ingest decides what to copy
 * and when, reads the camera and hashes what it sends; an Archive stages those bytes in a file of
 * its own, makes them durable, proves what it stored, and commits the file into place.
 *
 * Two implementations, picked by the daemon from the config: PlainArchive (plain.ts) stores the
 * camera's bytes as they are; EncryptedArchive (encrypted.ts) stores only age ciphertext to the
 * custodians' recipients. Ingest does not know which one it writes to.
 */
import type { Hash } from 'node:crypto';
import type { BufferPool } from './buffer-pool.js';

/** What names a recording's file in the archive (names.ts). */
export interface ArchivedRecordingRef {
  id: string;
  camera: string;
  sourcePath: string;
  discoveredAt: string;
}

export interface StageRequest {
  /** The recording's id: its staging file is named after it. */
  id: string;
  /** Bytes the camera listed. */
  expectedBytes: number;
  /**
   * Bytes of the staging file known durable from an earlier attempt; 0 starts afresh. Only an
   * archive that is `resumable` goes on after them.
   */
  resumeFrom: number;
  /** The copy's running SHA-256 of what the camera sent: a kept prefix's bytes are fed to it. */
  hash: Hash;
  /**
   * Whether the camera still holds `bytes` at `offset`. Asked, with the last bytes of a kept
   * prefix, before a copy goes on after it: a file replaced between two attempts must not be
   * stored as the first one's head spliced onto the second one's tail.
   */
  sourceHolds(bytes: Buffer, offset: number): Promise<boolean>;
  /** Called after an fsync: the first `bytes` of the staging file survive a crash. */
  onDurable?(bytes: number): void;
}

/** What the archive holds for a copy, once verified. */
export interface StoredCopy {
  /** SHA-256 and size of the stored file: the camera's unless the archive encrypts. */
  sha256: string;
  bytes: number;
  /** The age recipients the stored file is encrypted to; absent when it holds the camera's bytes as they are. */
  encryptedTo?: string[];
}

/**
 * One copy under way into its staging file. The caller writes the camera's chunks in order,
 * finishes, has the stored file verified, and closes it whatever happened.
 */
export interface Staging {
  /** Bytes of an earlier attempt this copy goes on after: the camera is read from here. */
  readonly resumedFrom: number;
  /** A kept prefix was found not to be the camera's bytes any more, and the copy starts over. */
  readonly resumeRefused: boolean;
  /**
   * Takes the next chunk. The chunk is the archive's from then on: it goes back to `buffers`
   * once in the file, or moves to another thread, so the caller reads nothing of it afterwards.
   */
  write(chunk: Buffer): Promise<void>;
  /** Everything written is in the file and durable. */
  finish(): Promise<void>;
  /**
   * After a failure before `finish`: with `keep`, what reached the file is made durable and
   * reported to `onDurable`, for the next attempt to go on after it.
   */
  abandon(keep: boolean): Promise<void>;
  /** Re-reads the stored file and proves it holds what was written: `sha256` over `bytes` bytes. */
  verifyStored(sha256: string, bytes: number): Promise<StoredCopy>;
  /** Lets go of the file and whatever the copy held (keys included); safe to call more than once. */
  close(): Promise<void>;
}

export type DirectIoProbe = { ok: true } | { ok: false; reason: string };

export interface Archive {
  /** Where copies under way are staged, on the archive's file system. */
  readonly stagingDir: string;
  /** Whether a copy may go on after the durable bytes of an interrupted one. */
  readonly resumable: boolean;
  /**
   * Chunk buffers to read the camera into: the archive gives each back once its bytes are in
   * the staging file (or sealed).
   */
  readonly buffers: BufferPool;
  /** Opens the staging file of a copy, going on after a kept prefix where it can. */
  stage(req: StageRequest): Promise<Staging>;
  /** Moves a verified staging file into place and makes the rename durable; returns where it is. */
  commit(rec: ArchivedRecordingRef): Promise<string>;
  /** Where a recording is, or will be, archived. */
  pathFor(rec: ArchivedRecordingRef): string;
  stagingPathFor(id: string): string;
  /** Ids of the copies that have a staging file. */
  stagingIds(): Promise<string[]>;
  discardStaging(id: string): Promise<void>;
  /** Removes an archived file; false when there was none. */
  remove(archivePath: string): Promise<boolean>;
  /** Free bytes on the archive's file system. */
  freeBytes(): Promise<number>;
  /** Throws the error a copy would meet if staging or the archive cannot be written now. */
  probeWritable(): Promise<void>;
  /**
   * Writes staging files with O_DIRECT from now on, and re-reads stored copies from the disk,
   * if the file system takes it; says why not when it does not.
   */
  useDirectIo(): DirectIoProbe;
  /** Stops the archive's worker threads, once nothing is copied any more: last, by whoever made it. */
  close(): Promise<void>;
}
