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

/** An event as stored: details as JSON text, the previous hash under its column's name. */
type Row = Omit<CustodyEvent, 'details' | 'prevHash'> & { details: string; prev_hash: string };

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

/** The events with seq in [from, to], in order. */
export function* custodyEventsBetween(db: Db, from: number, to: number): IterableIterator<CustodyEvent> {
  for (const row of db
    .prepare<[number, number], Row>('SELECT * FROM custody_events WHERE seq BETWEEN ? AND ? ORDER BY seq')
    .iterate(from, to))
    yield rowToEvent(row);
}

export function custodyEventCount(db: Db): number {
  return db.prepare<[], { n: number }>('SELECT count(*) n FROM custody_events').get()!.n;
}

/** The chain's last event, its seq and time; undefined for an empty chain. */
export function custodyHeadAt(db: Db): { seq: number; at: string } | undefined {
  return db
    .prepare<[], { seq: number; at: string }>('SELECT seq, at FROM custody_events ORDER BY seq DESC LIMIT 1')
    .get();
}

/** The time of the newest event (ISO), null for an empty chain. */
export function newestCustodyAt(db: Db): string | null {
  return db.prepare<[], { at: string | null }>('SELECT max(at) AS at FROM custody_events').get()?.at ?? null;
}

/** Every `camera.docked` and `camera.undocked` event naming a camera, as [camera, at, type]. */
export function dockingEvents(db: Db): IterableIterator<[string, string, string]> {
  return db
    .prepare<[], [string, string, string]>(
      "SELECT camera, at, type FROM custody_events WHERE type IN ('camera.docked', 'camera.undocked') AND camera IS NOT NULL",
    )
    .raw()
    .iterate();
}

/** Every `archive.mismatch` and `archive.intact` finding, in order. */
export function archiveFindingEvents(db: Db): IterableIterator<{ recording: string; type: string; details: string }> {
  return db
    .prepare<[], { recording: string; type: string; details: string }>(
      "SELECT recording, type, details FROM custody_events WHERE type IN ('archive.mismatch', 'archive.intact') AND recording IS NOT NULL ORDER BY seq",
    )
    .iterate();
}

/** Every `replication.verified` event, in order. */
export function replicationVerifiedEvents(db: Db): { recording: string; sha256: string; details: string }[] {
  return db
    .prepare<[], { recording: string; sha256: string; details: string }>(
      "SELECT recording, sha256, details FROM custody_events WHERE type = 'replication.verified' ORDER BY seq",
    )
    .all();
}

/** A recording's latest `offload.verified` event; prepared once for many recordings. */
export function latestOffloadVerifiedQuery(
  db: Db,
): (recording: string) => { sha256: string | null; details: string } | undefined {
  const stmt = db.prepare<[string], { sha256: string | null; details: string }>(
    "SELECT sha256, details FROM custody_events WHERE recording = ? AND type = 'offload.verified' ORDER BY seq DESC LIMIT 1",
  );
  return (recording) => stmt.get(recording);
}
