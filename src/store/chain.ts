/**
 * The custody hash chain: hash = sha256(prevHash + "\n" + canonicalJson(event without hash)),
 * starting from 64 zeros. Pure functions, shared by the writer, `dockd verify` and export checks.
 */
import { createHash } from 'node:crypto';

export const GENESIS_HASH = '0'.repeat(64);

export interface CustodyEvent {
  seq: number;
  at: string;
  type: string;
  camera: string | null;
  recording: string | null;
  sha256: string | null;
  actor: string;
  details: Record<string, unknown>;
  prevHash: string;
  hash: string;
}

export type UnhashedEvent = Omit<CustodyEvent, 'hash'>;

/** Keys sorted at every depth, no whitespace; the form the chain hashes. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    const s = JSON.stringify(value);
    // undefined and functions have no JSON form; hashing "undefined" would be unverifiable.
    return s === undefined ? 'null' : s;
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj)
    .filter((k) => obj[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
}

export function eventHash(event: UnhashedEvent): string {
  const body: UnhashedEvent = {
    seq: event.seq,
    at: event.at,
    type: event.type,
    camera: event.camera,
    recording: event.recording,
    sha256: event.sha256,
    actor: event.actor,
    details: event.details,
    prevHash: event.prevHash,
  };
  return createHash('sha256').update(event.prevHash).update('\n').update(canonicalJson(body)).digest('hex');
}

export interface ChainCheck {
  ok: boolean;
  events: number;
  firstBadSeq: number | null;
  reason: string | null;
  head: { seq: number; hash: string } | null;
}

/**
 * Walks events in seq order; stops at the first broken link, gap or wrong hash. A slice of the
 * chain (an export) starts from its first event's seq and prevHash instead of seq 1 and zeros.
 */
export function checkChain(
  events: Iterable<CustodyEvent>,
  start: { seq: number; prevHash: string } = { seq: 1, prevHash: GENESIS_HASH },
): ChainCheck {
  let prev = start.prevHash;
  let expectedSeq = start.seq;
  let count = 0;
  let head: ChainCheck['head'] = null;
  for (const ev of events) {
    count++;
    const bad = (reason: string): ChainCheck => ({ ok: false, events: count, firstBadSeq: ev.seq, reason, head });
    if (ev.seq !== expectedSeq) return bad(`expected seq ${expectedSeq}, found ${ev.seq}`);
    if (ev.prevHash !== prev) return bad('prev_hash does not match the previous event');
    if (eventHash(ev) !== ev.hash) return bad('hash does not match the event');
    prev = ev.hash;
    expectedSeq++;
    head = { seq: ev.seq, hash: ev.hash };
  }
  return { ok: true, events: count, firstBadSeq: null, reason: null, head };
}
