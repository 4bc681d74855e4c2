import type { Logger } from 'pino';
import type { Checkpoints } from '../custody/checkpoints.js';
import type { Checkpoint } from '../store/checkpoints.js';

/** Signs the custody chain's head, and says so in the log each time it does. */
export class CheckpointSigner {
  constructor(
    private readonly checkpoints: Checkpoints,
    /** Custody events between two signatures while the daemon runs (custody.checkpointEvery). */
    private readonly every: number,
    private readonly log: Logger,
  ) {}

  /** At a heartbeat: signs once `every` events have been appended since the last signature. */
  maybeSign(): void {
    this.logged(this.checkpoints.maybeSign(this.every));
  }

  /** At stop: signs the head, however few events came after the last signature. */
  signHead(): void {
    this.logged(this.checkpoints.signHead());
  }

  private logged(cp: Checkpoint | null): void {
    if (cp)
      this.log.info(
        { event: 'custody.checkpoint', seq: cp.seq, hash: cp.hash, keyId: cp.keyId, signature: cp.signature },
        `custody chain head ${cp.seq} signed`,
      );
  }
}
