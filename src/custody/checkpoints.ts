import type { Db } from '../store/db.js';
import { checkpointValid, signCheckpoint, type DockKey } from '../crypto/signing.js';
import {
  allCheckpoints,
  chainHashAt,
  chainHead,
  insertCheckpoint,
  latestCheckpoint,
  type Checkpoint,
} from '../store/checkpoints.js';

export class Checkpoints {
  constructor(
    private readonly db: Db,
    private readonly key: DockKey,
  ) {}

  latest(): Checkpoint | undefined {
    return latestCheckpoint(this.db);
  }

  /** Signs the current chain head unless it is already signed; returns the new checkpoint. */
  signHead(): Checkpoint | null {
    const head = chainHead(this.db);
    if (!head) return null;
    if ((this.latest()?.seq ?? 0) >= head.seq) return null;
    const cp: Checkpoint = {
      seq: head.seq,
      hash: head.hash,
      at: new Date().toISOString(),
      keyId: this.key.keyId,
      signature: signCheckpoint(this.key, head.seq, head.hash),
    };
    insertCheckpoint(this.db, cp);
    return cp;
  }

  /** Signs when at least `every` events were appended since the last checkpoint. */
  maybeSign(every: number): Checkpoint | null {
    const head = chainHead(this.db)?.seq ?? 0;
    if (head - (this.latest()?.seq ?? 0) < every) return null;
    return this.signHead();
  }
}

export interface CheckpointCheck {
  checked: number;
  ok: number;
  bad: Array<{ seq: number; reason: string }>;
}

/** Each checkpoint must carry a valid signature and name a hash the chain really has at its seq. */
export function checkCheckpoints(db: Db, key: DockKey | null): CheckpointCheck {
  const res: CheckpointCheck = { checked: 0, ok: 0, bad: [] };
  for (const cp of allCheckpoints(db)) {
    res.checked++;
    if (!key) res.bad.push({ seq: cp.seq, reason: 'no dock public key to check the signature with' });
    else if (cp.keyId !== key.keyId) res.bad.push({ seq: cp.seq, reason: `signed by another key (${cp.keyId})` });
    else if (!checkpointValid(key.publicKey, cp.seq, cp.hash, cp.signature))
      res.bad.push({ seq: cp.seq, reason: 'signature does not verify' });
    else if (chainHashAt(db, cp.seq) !== cp.hash)
      res.bad.push({ seq: cp.seq, reason: 'the chain has another hash at this seq' });
    else res.ok++;
  }
  return res;
}
