import type { Db } from '../store/db.js';
import { checkpointValid, signCheckpoint, type DockKey } from './signing.js';

export interface Checkpoint {
  seq: number;
  hash: string;
  at: string;
  keyId: string;
  signature: string;
}

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
    const head = this.db
      .prepare<[], { seq: number; hash: string }>('SELECT seq, hash FROM custody_events ORDER BY seq DESC LIMIT 1')
      .get();
    if (!head) return null;
    if ((this.latest()?.seq ?? 0) >= head.seq) return null;
    const cp: Checkpoint = {
      seq: head.seq,
      hash: head.hash,
      at: new Date().toISOString(),
      keyId: this.key.keyId,
      signature: signCheckpoint(this.key, head.seq, head.hash),
    };
    this.db
      .prepare(
        'INSERT INTO chain_checkpoints (seq, hash, at, key_id, signature) VALUES (@seq, @hash, @at, @keyId, @signature)',
      )
      .run(cp);
    return cp;
  }

  /** Signs when at least `every` events were appended since the last checkpoint. */
  maybeSign(every: number): Checkpoint | null {
    const head = this.db.prepare<[], { seq: number }>('SELECT max(seq) seq FROM custody_events').get()?.seq ?? 0;
    if (head - (this.latest()?.seq ?? 0) < every) return null;
    return this.signHead();
  }
}

export function latestCheckpoint(db: Db, atOrAfter = 0): Checkpoint | undefined {
  return db
    .prepare<[number], Checkpoint>(
      'SELECT seq, hash, at, key_id keyId, signature FROM chain_checkpoints WHERE seq >= ? ORDER BY seq DESC LIMIT 1',
    )
    .get(atOrAfter);
}

export interface CheckpointCheck {
  checked: number;
  ok: number;
  bad: Array<{ seq: number; reason: string }>;
}

/** Each checkpoint must carry a valid signature and name a hash the chain really has at its seq. */
export function checkCheckpoints(db: Db, key: DockKey | null): CheckpointCheck {
  const res: CheckpointCheck = { checked: 0, ok: 0, bad: [] };
  const at = db.prepare<[number], { hash: string }>('SELECT hash FROM custody_events WHERE seq = ?');
  for (const cp of db
    .prepare<[], Checkpoint>('SELECT seq, hash, at, key_id keyId, signature FROM chain_checkpoints ORDER BY seq')
    .iterate()) {
    res.checked++;
    if (!key) res.bad.push({ seq: cp.seq, reason: 'no dock public key to check the signature with' });
    else if (cp.keyId !== key.keyId) res.bad.push({ seq: cp.seq, reason: `signed by another key (${cp.keyId})` });
    else if (!checkpointValid(key.publicKey, cp.seq, cp.hash, cp.signature))
      res.bad.push({ seq: cp.seq, reason: 'signature does not verify' });
    else if (at.get(cp.seq)?.hash !== cp.hash)
      res.bad.push({ seq: cp.seq, reason: 'the chain has another hash at this seq' });
    else res.ok++;
  }
  return res;
}
