/** Signed checkpoints of the custody chain's head, as rows; the signing itself is the caller's. */
import type { Db } from './db.js';

export interface Checkpoint {
  seq: number;
  hash: string;
  at: string;
  keyId: string;
  signature: string;
}

/** The chain's last event; undefined for an empty chain. */
export function chainHead(db: Db): { seq: number; hash: string } | undefined {
  return db
    .prepare<[], { seq: number; hash: string }>('SELECT seq, hash FROM custody_events ORDER BY seq DESC LIMIT 1')
    .get();
}

export function insertCheckpoint(db: Db, cp: Checkpoint): void {
  db.prepare(
    'INSERT INTO chain_checkpoints (seq, hash, at, key_id, signature) VALUES (@seq, @hash, @at, @keyId, @signature)',
  ).run(cp);
}

export function latestCheckpoint(db: Db, atOrAfter = 0): Checkpoint | undefined {
  return db
    .prepare<[number], Checkpoint>(
      'SELECT seq, hash, at, key_id keyId, signature FROM chain_checkpoints WHERE seq >= ? ORDER BY seq DESC LIMIT 1',
    )
    .get(atOrAfter);
}

export function* allCheckpoints(db: Db): IterableIterator<Checkpoint> {
  yield* db
    .prepare<[], Checkpoint>('SELECT seq, hash, at, key_id keyId, signature FROM chain_checkpoints ORDER BY seq')
    .iterate();
}

/** The chain's hash at `seq`, to hold a checkpoint against. */
export function chainHashAt(db: Db, seq: number): string | undefined {
  return db.prepare<[number], { hash: string }>('SELECT hash FROM custody_events WHERE seq = ?').get(seq)?.hash;
}

/** How many checkpoints there are and the last seq they sign: all of them, or those of one key. */
export function checkpointsSigned(db: Db, keyId: string | null): { checkpoints: number; lastSeq: number } | undefined {
  return keyId === null
    ? db
        .prepare<[], { checkpoints: number; lastSeq: number }>(
          'SELECT count(*) checkpoints, coalesce(max(seq), 0) lastSeq FROM chain_checkpoints',
        )
        .get()
    : db
        .prepare<[string], { checkpoints: number; lastSeq: number }>(
          'SELECT count(*) checkpoints, coalesce(max(seq), 0) lastSeq FROM chain_checkpoints WHERE key_id = ?',
        )
        .get(keyId);
}
