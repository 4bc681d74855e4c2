/**
 * Which key a dock's custody head must be signed with. A key pinned in `fleet.keys` wins;
 * otherwise the first key seen for a dock is remembered in DATA/fleet-keys.json and every later
 * document is checked against it (trust on first use), as is the last signed head, which must
 * never go backwards. Without a data dir nothing is remembered: trust lasts one run.
 */
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { KeyObject } from 'node:crypto';
import { checkpointValid, keyIdOf, parseDockPublicKey, publicKeyFromB64, rawPublicKey } from '../crypto/signing.js';
import type { DockState } from './document.js';

export const KEYRING_FILE = 'fleet-keys.json';

interface Remembered {
  publicKey: string;
  firstSeenAt: string;
  head: { seq: number; hash: string; at: string } | null;
}

export type KeyTrust = 'pinned' | 'remembered' | 'first-use';

export type WarningKind =
  'key_changed' | 'key_not_pinned' | 'signature_bad' | 'head_backwards' | 'head_rewritten' | 'unreadable' | 'misplaced';

export interface FleetWarning {
  dockId: string;
  kind: WarningKind;
  message: string;
}

export interface Judgement {
  trust: KeyTrust;
  keyId: string | null;
  signatureOk: boolean;
  warnings: FleetWarning[];
}

export class KeyRing {
  private readonly docks: Record<string, Remembered>;
  private changed = false;

  private constructor(
    /** null when there is no data dir to remember in. */
    readonly file: string | null,
    docks: Record<string, Remembered>,
    private readonly pinned: Map<string, KeyObject>,
  ) {
    this.docks = docks;
  }

  static open(dataDir: string, pinnedKeys: Record<string, string>): KeyRing {
    const pinned = new Map(Object.entries(pinnedKeys).map(([id, text]) => [id, parseDockPublicKey(text)]));
    if (!existsSync(dataDir)) return new KeyRing(null, {}, pinned);
    const file = path.join(dataDir, KEYRING_FILE);
    let docks: Record<string, Remembered> = {};
    if (existsSync(file)) {
      try {
        const j = JSON.parse(readFileSync(file, 'utf8')) as { docks?: Record<string, Remembered> };
        docks = j.docks && typeof j.docks === 'object' ? j.docks : {};
      } catch (err) {
        // Starting afresh would trust whatever key a dock shows now: exactly what must not happen.
        throw new Error(`${file} cannot be read (${(err as Error).message}); fix or remove it`);
      }
    }
    return new KeyRing(file, docks, pinned);
  }

  /** Checks a dock's document against the key it must be signed with, and remembers what it may. */
  judge(dockId: string, doc: DockState, now = new Date()): Judgement {
    const warnings: FleetWarning[] = [];
    const warn = (kind: WarningKind, message: string) => warnings.push({ dockId, kind, message });
    let shown: KeyObject | null = null;
    try {
      shown = publicKeyFromB64(doc.publicKey);
    } catch {
      // judged below as a key that signs nothing
    }
    const shownB64 = shown ? rawPublicKey(shown).toString('base64') : null;
    let trust: KeyTrust;
    let key: KeyObject | null;
    const pinned = this.pinned.get(dockId);
    const remembered = this.docks[dockId];
    if (pinned) {
      trust = 'pinned';
      key = pinned;
      const pinnedB64 = rawPublicKey(pinned).toString('base64');
      if (!remembered || remembered.publicKey !== pinnedB64) {
        // Heads are remembered against the pinned key: one seen under another key says nothing.
        this.docks[dockId] = { publicKey: pinnedB64, firstSeenAt: now.toISOString(), head: null };
        this.changed = true;
      }
      if (shownB64 !== pinnedB64)
        warn(
          'key_not_pinned',
          `dock ${dockId} publishes key ${shownB64 ?? '(none)'}, not the one pinned in fleet.keys (${pinnedB64}): its custody head is not trusted`,
        );
    } else if (remembered) {
      trust = 'remembered';
      key = publicKeyFromB64(remembered.publicKey);
      if (shownB64 !== remembered.publicKey) {
        warn(
          'key_changed',
          `dock ${dockId} CHANGED ITS KEY: first seen with ${remembered.publicKey} on ${remembered.firstSeenAt}, now ${shownB64 ?? '(none)'}; its custody head is not trusted until the new key is pinned in fleet.keys or forgotten (dockd fleet --forget ${dockId})`,
        );
      }
    } else {
      trust = 'first-use';
      key = shown;
      if (shownB64) {
        this.docks[dockId] = { publicKey: shownB64, firstSeenAt: now.toISOString(), head: null };
        this.changed = true;
      }
    }
    const head = doc.custodyHead;
    const signatureOk = !!(key && head && checkpointValid(key, head.seq, head.hash, head.signature));
    if (head && !signatureOk && !warnings.length)
      warn(
        'signature_bad',
        `dock ${dockId}: the signature of custody head ${head.seq} does not verify: the document was changed after the dock signed it`,
      );
    const entry = this.docks[dockId];
    if (head && signatureOk && entry) {
      const last = entry.head;
      if (last && head.seq < last.seq) {
        warn(
          'head_backwards',
          `dock ${dockId}: custody head went BACKWARDS from seq ${last.seq} (seen ${last.at}) to ${head.seq}: its custody log was rolled back or replaced`,
        );
      } else if (last && head.seq === last.seq && head.hash !== last.hash) {
        warn(
          'head_rewritten',
          `dock ${dockId}: custody head ${head.seq} now has another hash than seen ${last.at}: its custody log was rewritten`,
        );
      } else if (!last || head.seq > last.seq) {
        entry.head = { seq: head.seq, hash: head.hash, at: now.toISOString() };
        this.changed = true;
      }
    }
    return { trust, keyId: key ? keyIdOf(rawPublicKey(key)) : null, signatureOk, warnings };
  }

  /** Drops what was remembered of a dock, so that its next key is trusted on first use again. */
  forget(dockId: string): boolean {
    if (!this.docks[dockId]) return false;
    delete this.docks[dockId];
    this.changed = true;
    return true;
  }

  /** Written whole or not at all: a torn file would make every dock look new. */
  save(): void {
    if (!this.file || !this.changed) return;
    const tmp = `${this.file}.${process.pid}.tmp`;
    try {
      writeFileSync(tmp, JSON.stringify({ docks: this.docks }, null, 2) + '\n', { mode: 0o644 });
      renameSync(tmp, this.file);
    } catch (err) {
      rmSync(tmp, { force: true });
      throw err;
    }
    this.changed = false;
  }
}
