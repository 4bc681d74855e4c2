/**
 * `dockd verify`: recompute the custody chain from the rows themselves (so an edited row is found
 * even when somebody dropped the triggers) and re-hash every archived file.
 */
import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { createDecryptStream } from '../crypto/age.js';
import type { Db } from '../store/db.js';
import { hashFile } from '../ingest/copy.js';
import { checkChain, type ChainCheck } from './chain.js';
import { CustodyLog } from './log.js';
import { checkCheckpoints, type CheckpointCheck } from './checkpoints.js';
import type { DockKey } from './signing.js';

export interface FilesCheck {
  checked: number;
  ok: number;
  missing: string[];
  mismatched: string[];
  /** With an identity: encrypted files that did not decrypt to the recorded plaintext SHA-256. */
  decryptFailed?: string[];
}

export interface HeadCheck {
  seq: number;
  hash: string;
  ok: boolean;
  reason: string | null;
}

export interface VerifyReport {
  chain: ChainCheck;
  files: FilesCheck;
  checkpoints: CheckpointCheck;
  head: HeadCheck | null;
  ok: boolean;
}

export interface VerifyOptions {
  /** Public key to check checkpoints with (the dock's own by default). */
  key?: DockKey | null;
  /** A chain head taken from elsewhere (IT's log store): `SEQ:HASH`. */
  head?: { seq: number; hash: string };
  /** Sizes only, no re-hash. */
  quick?: boolean;
  onFile?(done: number, total: number): void;
  /** Custodian identities: also decrypt encrypted files and check the plaintext SHA-256. */
  identities?: string[];
  /** Called for each file decrypted, so the caller can record it in custody. */
  onDecrypted?(recordingId: string, camera: string, sha256: string, ok: boolean): void;
}

export function verifyChain(db: Db): ChainCheck {
  return checkChain(new CustodyLog(db).all());
}

export async function verifyFiles(db: Db, opts: VerifyOptions = {}): Promise<FilesCheck> {
  const rows = db
    .prepare<[], { id: string; camera: string; archive_path: string; sha256: string; bytes: number; stored_sha256: string | null; stored_bytes: number | null }>(
      "SELECT id, camera, archive_path, sha256, bytes, stored_sha256, stored_bytes FROM recordings WHERE status = 'verified' AND archive_path IS NOT NULL ORDER BY discovered_at, id",
    )
    .all();
  const total = (db.prepare("SELECT count(*) n FROM recordings WHERE status = 'verified' AND archive_path IS NOT NULL").get() as { n: number }).n;
  const res: FilesCheck = { checked: 0, ok: 0, missing: [], mismatched: [] };
  for (const r of rows) {
    res.checked++;
    // Encrypted archives are checked by their ciphertext hash: no secret key needed.
    const storedSha = r.stored_sha256 ?? r.sha256;
    const storedBytes = r.stored_bytes ?? r.bytes;
    const encrypted = r.stored_sha256 !== null && r.stored_sha256 !== r.sha256;
    const st = await stat(r.archive_path).catch(() => null);
    if (!st || !st.isFile()) {
      res.missing.push(r.id);
    } else if (st.size !== storedBytes) {
      res.mismatched.push(r.id);
    } else if (!opts.quick) {
      const h = createHash('sha256');
      await hashFile(r.archive_path, h, undefined, storedBytes);
      if (h.digest('hex') !== storedSha) res.mismatched.push(r.id);
      else if (encrypted && opts.identities) {
        const plain = await decryptedSha256(r.archive_path, opts.identities).catch(() => null);
        const ok = plain === r.sha256;
        opts.onDecrypted?.(r.id, r.camera, r.sha256, ok);
        if (ok) res.ok++;
        else (res.decryptFailed ??= []).push(r.id);
      } else res.ok++;
    } else {
      res.ok++;
    }
    opts.onFile?.(res.checked, total);
  }
  return res;
}

export function checkHead(db: Db, head: { seq: number; hash: string }): HeadCheck {
  const row = db.prepare<[number], { hash: string }>('SELECT hash FROM custody_events WHERE seq = ?').get(head.seq);
  const reason = !row ? `the chain has no event ${head.seq}` : row.hash !== head.hash ? `the chain has hash ${row.hash} at ${head.seq}` : null;
  return { ...head, ok: reason === null, reason };
}

/** Decrypts in memory only, hashing the plaintext: nothing decrypted reaches the disk. */
export async function decryptedSha256(file: string, identities: string[]): Promise<string> {
  const h = createHash('sha256');
  await pipeline(createReadStream(file), createDecryptStream(identities), async (plain: AsyncIterable<Buffer>) => {
    for await (const c of plain) h.update(c);
  });
  return h.digest('hex');
}

export async function verifyAll(db: Db, opts: VerifyOptions = {}): Promise<VerifyReport> {
  const chain = verifyChain(db);
  const checkpoints = checkCheckpoints(db, opts.key ?? null);
  const head = opts.head ? checkHead(db, opts.head) : null;
  const files = await verifyFiles(db, opts);
  const ok = chain.ok && checkpoints.bad.length === 0 && (head?.ok ?? true) && files.missing.length === 0 && files.mismatched.length === 0 && !files.decryptFailed?.length;
  return { chain, files, checkpoints, head, ok };
}
