/**
 * The one writer of custody events. Callers append inside the same SQLite transaction as the
 * state change the event records, so neither can be committed without the other.
 */
import type { Db } from './db.js';
import { GENESIS_HASH, eventHash, type CustodyEvent } from './chain.js';

export interface NewCustodyEvent {
  type: string;
  camera?: string | null;
  recording?: string | null;
  sha256?: string | null;
  actor?: string;
  details?: Record<string, unknown>;
  at?: Date;
}

interface Row {
  seq: number;
  at: string;
  type: string;
  camera: string | null;
  recording: string | null;
  sha256: string | null;
  actor: string;
  details: string;
  prev_hash: string;
  hash: string;
}

export function rowToEvent(r: Row): CustodyEvent {
  return {
    seq: r.seq,
    at: r.at,
    type: r.type,
    camera: r.camera,
    recording: r.recording,
    sha256: r.sha256,
    actor: r.actor,
    details: JSON.parse(r.details) as Record<string, unknown>,
    prevHash: r.prev_hash,
    hash: r.hash,
  };
}

export class CustodyLog {
  private readonly head;
  private readonly insert;

  constructor(
    private readonly db: Db,
    private readonly defaultActor = 'dockd',
  ) {
    this.head = db.prepare<[], { seq: number; hash: string }>(
      'SELECT seq, hash FROM custody_events ORDER BY seq DESC LIMIT 1',
    );
    this.insert = db.prepare(
      `INSERT INTO custody_events (seq, at, type, camera, recording, sha256, actor, details, prev_hash, hash)
       VALUES (@seq, @at, @type, @camera, @recording, @sha256, @actor, @details, @prevHash, @hash)`,
    );
  }

  /** Must run inside a write transaction; throws otherwise so a caller cannot forget. */
  append(e: NewCustodyEvent): CustodyEvent {
    if (!this.db.inTransaction) throw new Error('custody events must be appended inside a transaction');
    const last = this.head.get();
    const unhashed = {
      seq: (last?.seq ?? 0) + 1,
      at: (e.at ?? new Date()).toISOString(),
      type: e.type,
      camera: e.camera ?? null,
      recording: e.recording ?? null,
      sha256: e.sha256 ?? null,
      actor: e.actor ?? this.defaultActor,
      details: e.details ?? {},
      prevHash: last?.hash ?? GENESIS_HASH,
    };
    const event: CustodyEvent = { ...unhashed, hash: eventHash(unhashed) };
    this.insert.run({ ...event, details: JSON.stringify(event.details) });
    return event;
  }

  /** Appends one event in a transaction of its own (for events that change no other state). */
  record(e: NewCustodyEvent): CustodyEvent {
    return this.db.transaction(() => this.append(e)).immediate();
  }

  *all(): IterableIterator<CustodyEvent> {
    const stmt = this.db.prepare<[], Row>('SELECT * FROM custody_events ORDER BY seq');
    for (const r of stmt.iterate()) yield rowToEvent(r);
  }

  forRecording(id: string): CustodyEvent[] {
    return this.db
      .prepare<[string], Row>('SELECT * FROM custody_events WHERE recording = ? ORDER BY seq')
      .all(id)
      .map(rowToEvent);
  }

  forCamera(serial: string): CustodyEvent[] {
    return this.db
      .prepare<[string], Row>('SELECT * FROM custody_events WHERE camera = ? ORDER BY seq')
      .all(serial)
      .map(rowToEvent);
  }
}
