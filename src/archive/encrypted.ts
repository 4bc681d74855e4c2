/**
 * The archive of a write-only dock: the camera's plaintext is encrypted to the custodians' age
 * recipients as it is staged, so only ciphertext ever reaches the disk. Archived files end in
 * `.age`, so nobody mistakes one for playable footage.
 *
 * The main thread reads and hashes the plaintext; a worker of the seal pool encrypts and writes
 * the staging file, so the two run on separate cores. The stored file is then re-read once, from
 * the disk, by a worker of the hash pool: that pass gives the ciphertext SHA-256 custody records
 * (what `dockd verify` later checks, with no secret key) and proves, by every chunk's Poly1305
 * tag under the file's payload key, that the stored bytes are the ones sealed. The key lives in
 * memory until then and is wiped; no second SHA-256 of the ciphertext is needed while writing.
 *
 * An age stream cannot be continued from the middle without its file key, which the dock must
 * not keep, so an interrupted encrypted copy starts over.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { startAgeFile } from '../crypto/age.js';
import { AgeSealPool, type SealJob } from '../crypto/age-seal-pool.js';
import type { StageRequest, Staging, StoredCopy } from './archive.js';
import { ArchiveError } from './errors.js';
import type { HashPool } from './hash-pool.js';
import { LocalArchive, type LocalArchiveOptions } from './local.js';
import { syncStaging } from './staging.js';

export interface EncryptedArchiveOptions extends LocalArchiveOptions {
  /** The custodians' age recipients: every recording is encrypted to all of them. */
  recipients: string[];
}

export class EncryptedArchive extends LocalArchive {
  readonly resumable = false;
  readonly recipients: string[];
  private readonly seals: AgeSealPool;

  constructor(o: EncryptedArchiveOptions) {
    super(o, '.age');
    this.recipients = o.recipients;
    this.seals = new AgeSealPool(1, this.buffers);
  }

  async stage(req: StageRequest): Promise<Staging> {
    const file = this.stagingPathFor(req.id);
    const { prefix, key } = startAgeFile(this.recipients);
    let fh: FileHandle | undefined;
    try {
      fh = await open(file, 'w', 0o640);
      const job = this.seals.open(fh.fd, prefix, key);
      return new SealedStaging({
        fh,
        file,
        key,
        prefix,
        job,
        recipients: this.recipients,
        hashPool: this.hashPool,
        direct: this.direct !== undefined,
      });
    } catch (err) {
      key.fill(0);
      await fh?.close().catch(() => undefined);
      throw err;
    }
  }

  override async close(): Promise<void> {
    await super.close();
    await this.seals.close();
  }
}

interface SealedStagingOptions {
  fh: FileHandle;
  file: string;
  /** The file's payload key, wiped by close(). */
  key: Buffer;
  /** Header and payload nonce as written. */
  prefix: Buffer;
  job: SealJob;
  recipients: string[];
  hashPool: HashPool;
  /** Re-read the stored file with O_DIRECT. */
  direct: boolean;
}

class SealedStaging implements Staging {
  readonly resumedFrom = 0;
  readonly resumeRefused = false;
  private job: SealJob | null;
  /** Size of the age file as written, once finished. */
  private sealedBytes = 0;

  constructor(private readonly o: SealedStagingOptions) {
    this.job = o.job;
  }

  write(chunk: Buffer): Promise<void> {
    return this.job!.write(chunk);
  }

  async finish(): Promise<void> {
    const sealed = await this.job!.end();
    this.job = null;
    this.sealedBytes = sealed.bytes;
    await syncStaging(this.o.fh);
    await this.o.fh.close();
  }

  /** Nothing of an interrupted age stream can be gone on with: the next attempt starts over. */
  async abandon(): Promise<void> {}

  async verifyStored(): Promise<StoredCopy> {
    // The seal worker writes through the page cache; the re-read still comes from the disk.
    const reread = await this.o.hashPool.hashFile(this.o.file, {
      direct: this.o.direct,
      age: { key: this.o.key, prefix: this.o.prefix, total: this.sealedBytes },
    });
    if (reread.sealed !== null) {
      throw new ArchiveError(
        'verify-mismatch',
        `the stored ciphertext is not what was sealed: ${reread.sealed ?? 'the re-read did not check it'}`,
      );
    }
    return { sha256: reread.sha256, bytes: reread.bytes, encryptedTo: this.o.recipients };
  }

  async close(): Promise<void> {
    this.o.key.fill(0);
    // The worker writes through this descriptor: it has to let go before the file is closed.
    await this.job?.abort();
    this.job = null;
    await this.o.fh.close().catch(() => undefined);
  }
}
