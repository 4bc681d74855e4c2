/**
 * `dockd verify`: recompute the custody chain from the rows themselves (so an edited row is found
 * even when somebody dropped the triggers) and re-hash every archived file against the hash its
 * `offload.verified` event holds. The `recordings` row is checked against that event too: a file
 * swapped together with its row's hash is a consistent forgery of the table, not of the chain.
 */
import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { createDecryptStream } from '../crypto/age.js';
import type { Db } from '../store/db.js';
import { stillVerifiedQuery, verifiedInArchive, verifiedInArchiveCount } from '../store/recordings.js';
import { hashFile } from '../archive/hash.js';
import { checkChain, type ChainCheck } from '../store/chain.js';
import { archiveFindingEvents, CustodyLog } from '../store/custody-log.js';
import { chainHashAt } from '../store/checkpoints.js';
import { checkCheckpoints, type CheckpointCheck } from './checkpoints.js';
import type { DockKey } from '../crypto/signing.js';
import { rowDisagreements, VerifiedRecords } from './verified-record.js';

export interface FilesCheck {
  checked: number;
  ok: number;
  missing: string[];
  mismatched: string[];
  /** Recordings whose `recordings` row holds other hashes than their custody `offload.verified` event. */
  rowMismatched: string[];
  /** What disagrees with custody, one line each: the archived file or the recordings row. */
  disagreements: Disagreement[];
  /** With an identity: encrypted files that did not decrypt to the plaintext SHA-256 custody holds. */
  decryptFailed?: string[];
}

export interface Disagreement {
  recording: string;
  disagrees: 'file' | 'row';
  detail: string;
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
  /** Puts damaged and repaired archive files on the record (see ArchiveFindings). */
  custody?: CustodyLog;
}

interface VerifiedRow {
  id: string;
  camera: string;
  archive_path: string;
}

/**
 * Puts what a check of the archive finds in the chain of custody, in replication's terms: a
 * file that is no longer what was verified is `archive.mismatch` (when it was noticed, and what
 * was found), and one that matches again, say restored from a backup, is `archive.intact`. The
 * log alone would not do: whoever answers for the recording in court has to find when its copy
 * changed. A finding that is already the recording's latest is not repeated, so a nightly verify
 * adds nothing while nothing changes.
 */
class ArchiveFindings {
  private readonly latest = new Map<string, { type: string; actual: unknown }>();
  private readonly stillVerified;

  constructor(
    private readonly db: Db,
    private readonly custody: CustodyLog,
  ) {
    for (const r of archiveFindingEvents(db))
      this.latest.set(r.recording, { type: r.type, actual: (JSON.parse(r.details) as { actual?: unknown }).actual });
    this.stillVerified = stillVerifiedQuery(db);
  }

  /**
   * Records that `r`'s file is not what was verified. False when the recording left the archive
   * while it was checked (retention deletes the row's claim before the file): no finding then.
   */
  damaged(r: VerifiedRow, expected: string, actual: string): boolean {
    return this.db
      .transaction(() => {
        if (!this.stillVerified(r.id, r.archive_path)) return false;
        const last = this.latest.get(r.id);
        if (last?.type === 'archive.mismatch' && last.actual === actual) return true;
        this.custody.append({
          type: 'archive.mismatch',
          camera: r.camera,
          recording: r.id,
          sha256: expected,
          details: { file: r.archive_path, actual, noticedBy: 'verify' },
        });
        this.latest.set(r.id, { type: 'archive.mismatch', actual });
        return true;
      })
      .immediate();
  }

  /** Records that `r`'s file, found changed before, is again what was verified. */
  intact(r: VerifiedRow, sha256: string): void {
    if (this.latest.get(r.id)?.type !== 'archive.mismatch') return;
    this.db
      .transaction(() => {
        if (!this.stillVerified(r.id, r.archive_path)) return;
        this.custody.append({
          type: 'archive.intact',
          camera: r.camera,
          recording: r.id,
          sha256,
          details: { file: r.archive_path, noticedBy: 'verify' },
        });
        this.latest.set(r.id, { type: 'archive.intact', actual: undefined });
      })
      .immediate();
  }
}

export function verifyChain(db: Db): ChainCheck {
  return checkChain(new CustodyLog(db).all());
}

export async function verifyFiles(db: Db, opts: VerifyOptions = {}): Promise<FilesCheck> {
  const rows = verifiedInArchive(db);
  const total = verifiedInArchiveCount(db);
  const res: FilesCheck = { checked: 0, ok: 0, missing: [], mismatched: [], rowMismatched: [], disagreements: [] };
  const findings = opts.custody ? new ArchiveFindings(db, opts.custody) : null;
  const records = new VerifiedRecords(db);
  let seen = 0;
  for (const r of rows) {
    res.checked++;
    const custody = records.of(r.id);
    // The file is held to custody's hash; without an event (reported below) the row's is all there is.
    const storedSha = custody?.storedSha256 ?? r.stored_sha256 ?? r.sha256 ?? '';
    const storedBytes = custody?.storedBytes ?? r.stored_bytes ?? r.bytes;
    const problem = await fileProblem(r.archive_path, storedBytes, storedSha, opts.quick ?? false);
    if (problem && findings && !findings.damaged(r, storedSha, problem.actual)) {
      res.checked--;
      opts.onFile?.(++seen, total);
      continue;
    }
    const rowProblems = rowDisagreements(r, custody);
    for (const detail of rowProblems) res.disagreements.push({ recording: r.id, disagrees: 'row', detail });
    if (rowProblems.length) res.rowMismatched.push(r.id);
    if (problem) {
      res[problem.kind].push(r.id);
      res.disagreements.push({
        recording: r.id,
        disagrees: 'file',
        detail: problem.kind === 'missing' ? problem.actual : fileDetail(problem.actual, storedSha),
      });
    } else {
      if (!opts.quick) findings?.intact(r, storedSha);
      const encrypted = custody ? custody.encrypted : r.stored_sha256 !== null && r.stored_sha256 !== r.sha256;
      const plainSha = custody?.sha256 ?? r.sha256 ?? '';
      let decrypted = true;
      if (encrypted && opts.identities && !opts.quick) {
        const plain = await decryptedSha256(r.archive_path, opts.identities).catch(() => null);
        decrypted = plain === plainSha;
        opts.onDecrypted?.(r.id, r.camera, plainSha, decrypted);
        if (!decrypted) {
          (res.decryptFailed ??= []).push(r.id);
          res.disagreements.push({
            recording: r.id,
            disagrees: 'file',
            detail: `it decrypts to ${plain ?? 'nothing (the identity does not open it)'}, custody says ${plainSha}`,
          });
        }
      }
      if (decrypted && !rowProblems.length) res.ok++;
    }
    opts.onFile?.(++seen, total);
  }
  return res;
}

function fileDetail(actual: string, expected: string): string {
  return /^[0-9a-f]{64}$/.test(actual) ? `the archived file's SHA-256 is ${actual}, custody says ${expected}` : actual;
}

/** What is wrong with an archived file, in words for the record; null when nothing is (sizes only with `quick`). */
async function fileProblem(
  file: string,
  bytes: number,
  sha256: string,
  quick: boolean,
): Promise<{ kind: 'missing' | 'mismatched'; actual: string } | null> {
  const st = await stat(file).catch(() => null);
  if (!st || !st.isFile()) return { kind: 'missing', actual: 'the file is missing' };
  if (st.size !== bytes) return { kind: 'mismatched', actual: `the file has ${st.size} bytes, not ${bytes}` };
  if (quick) return null;
  const h = createHash('sha256');
  await hashFile(file, h, undefined, bytes);
  const found = h.digest('hex');
  return found === sha256 ? null : { kind: 'mismatched', actual: found };
}

export function checkHead(db: Db, head: { seq: number; hash: string }): HeadCheck {
  const hash = chainHashAt(db, head.seq);
  const reason =
    hash === undefined
      ? `the chain has no event ${head.seq}`
      : hash !== head.hash
        ? `the chain has hash ${hash} at ${head.seq}`
        : null;
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
  const ok =
    chain.ok &&
    checkpoints.bad.length === 0 &&
    (head?.ok ?? true) &&
    files.missing.length === 0 &&
    files.mismatched.length === 0 &&
    files.rowMismatched.length === 0 &&
    !files.decryptFailed?.length;
  return { chain, files, checkpoints, head, ok };
}
