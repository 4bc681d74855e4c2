/**
 * Evidence export for court: a folder anyone can check without dockd. Files and their
 * SHA256SUMS (for `sha256sum -c`), the slice of the custody chain that covers the recordings up
 * to a signed checkpoint, a readable report, the dock's public key as PEM, and a manifest signed
 * with the dock's key that lists the hash of every other file, so that one changed byte anywhere
 * is found. The report tells how to check it with sha256sum and OpenSSL alone.
 */
import { createHash, randomUUID, sign } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import path from 'node:path';
import type { Db } from '../store/db.js';
import { getRecording, verifiedOfCameraBetween, type RecordingRow } from '../store/recordings.js';
import { safeComponent, baseName } from '../archive/names.js';
import { CustodyLog, custodyEventsBetween } from '../store/custody-log.js';
import { Checkpoints } from './checkpoints.js';
import type { DockKey } from '../crypto/signing.js';
import type { CustodyEvent } from '../store/chain.js';
import { rowDisagreements, VerifiedRecords } from './verified-record.js';
import { createDecryptStream } from '../crypto/age.js';

export const EXPORT_FORMAT = 'dockd-export/1';
export const CHAIN_FILE = 'custody-chain.jsonl';
export const REPORT_FILE = 'custody-report.txt';
export const DECRYPT_FILE = 'DECRYPT.txt';
/** The dock's public key as PEM (SPKI), for OpenSSL; the manifest has it as raw base64. */
export const KEY_FILE = 'dock-signing.pub.pem';
/** What `base64 -d manifest.json.sig > …` makes when the bundle is checked with standard tools. */
export const DECODED_SIG_FILE = 'manifest.json.sig.bin';
const DECRYPT_TEXT = `The recordings ending in .age are encrypted to the custodians' age keys (age-encryption.org/v1).
Decrypt one with the custodian's identity file, using Debian's age tool or any age implementation:

  age -d -i custodian.key -o REC0001.MP4 files/<id>_REC0001.MP4.age

SHA256SUMS lists the encrypted files; manifest.json gives each recording's plaintext SHA-256
("sha256"), which the decrypted file must match: sha256sum REC0001.MP4
`;

export interface ExportSelection {
  ids?: string[];
  camera?: string;
  from?: Date;
  to?: Date;
}

export interface ManifestRecording {
  id: string;
  camera: string;
  sourcePath: string;
  file: string;
  bytes: number;
  sha256: string;
  officer: string | null;
  recordedAt: string | null;
  verifiedAt: string | null;
  events: number[];
  /** The archive holds it encrypted; `fileSha256` is then of the `.age` file unless decrypted. */
  encrypted: boolean;
  fileSha256: string;
}

export interface Manifest {
  format: string;
  bundleId: string;
  createdAt: string;
  actor: string;
  reason: string;
  dock: { publicKey: string; keyId: string; algorithm: 'Ed25519' };
  checkpoint: { seq: number; hash: string; signature: string; keyId: string };
  chain: { file: string; firstSeq: number; lastSeq: number };
  files: Record<string, string>;
  recordings: ManifestRecording[];
}

export class ExportError extends Error {}

export function selectForExport(db: Db, sel: ExportSelection): RecordingRow[] {
  let rows: RecordingRow[];
  if (sel.ids?.length) {
    rows = sel.ids.map((id) => {
      const r = getRecording(db, id);
      if (!r) throw new ExportError(`no recording ${id}`);
      return r;
    });
  } else if (sel.camera) {
    const from = (sel.from ?? new Date(0)).toISOString();
    // ISO strings compare as text: an expanded year (+275760-…) would sort before 2026.
    const to = sel.to ? sel.to.toISOString() : '9999-12-31T23:59:59.999Z';
    rows = verifiedOfCameraBetween(db, sel.camera, from, to).map((r) => getRecording(db, r.id)!);
  } else {
    throw new ExportError('choose recordings: --recording ID… or --camera SERIAL [--from T] [--to T]');
  }
  const notReady = rows.filter((r) => r.status !== 'verified' || !r.archive_path);
  if (notReady.length)
    throw new ExportError(
      `not exportable (not verified or deleted): ${notReady.map((r) => `${r.id} (${r.status})`).join(', ')}`,
    );
  if (!rows.length) throw new ExportError('no verified recordings match');
  // A bundle vouches for the hashes custody holds; a row that says otherwise is not exported.
  const records = new VerifiedRecords(db);
  const forged = rows.filter((r) => rowDisagreements(r, records.of(r.id)).length);
  if (forged.length)
    throw new ExportError(
      `not exportable: the recordings row of ${forged.map((r) => r.id).join(', ')} disagrees with custody (run dockd verify)`,
    );
  return rows;
}

/** Copies while hashing; refuses to export a file whose hash is no longer the verified one. */
async function copyVerified(src: string, dest: string, expected: string): Promise<void> {
  const h = createHash('sha256');
  const tap = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      h.update(chunk);
      cb(null, chunk);
    },
  });
  await pipeline(createReadStream(src), tap, createWriteStream(dest, { flags: 'wx' }));
  const got = h.digest('hex');
  if (got !== expected)
    throw new ExportError(`archived file ${src} no longer matches its verified SHA-256 (run dockd verify)`);
}

export interface ExportOptions {
  outDir: string;
  reason: string;
  actor: string;
  key: DockKey;
  /** Custodian identities: encrypted recordings are exported decrypted (each a custody event). */
  identities?: string[];
}

async function decryptVerified(src: string, dest: string, expected: string, identities: string[]): Promise<void> {
  const h = createHash('sha256');
  const tap = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      h.update(chunk);
      cb(null, chunk);
    },
  });
  await pipeline(
    createReadStream(src),
    createDecryptStream(identities),
    tap,
    createWriteStream(dest, { flags: 'wx', mode: 0o600 }),
  );
  if (h.digest('hex') !== expected) throw new ExportError(`${src} does not decrypt to its recorded SHA-256`);
}

export async function exportBundle(db: Db, sel: ExportSelection, opts: ExportOptions): Promise<Manifest> {
  const recs = selectForExport(db, sel);
  if (existsSync(opts.outDir) && readdirSync(opts.outDir).length > 0)
    throw new ExportError(`${opts.outDir} is not empty`);
  mkdirSync(path.join(opts.outDir, 'files'), { recursive: true });
  const bundleId = randomUUID();
  const sums: string[] = [];
  const names = new Map<string, string>();
  const plan = recs.map((r) => {
    const encrypted = r.stored_sha256 !== null && r.stored_sha256 !== r.sha256;
    const decrypt = encrypted && !!opts.identities;
    const name = `files/${r.id}_${safeComponent(baseName(r.source_path))}${encrypted && !decrypt ? '.age' : ''}`;
    return { r, encrypted, decrypt, name, fileSha256: encrypted && !decrypt ? r.stored_sha256! : r.sha256! };
  });
  for (const p of plan) {
    if (p.decrypt)
      await decryptVerified(p.r.archive_path!, path.join(opts.outDir, p.name), p.r.sha256!, opts.identities!);
    else await copyVerified(p.r.archive_path!, path.join(opts.outDir, p.name), p.fileSha256);
    sums.push(`${p.fileSha256}  ${p.name}`);
    names.set(p.r.id, p.name);
  }
  if (plan.some((p) => p.encrypted && !p.decrypt)) {
    writeFileSync(path.join(opts.outDir, DECRYPT_FILE), DECRYPT_TEXT);
    sums.push(`${await fileSha(path.join(opts.outDir, DECRYPT_FILE))}  ${DECRYPT_FILE}`);
  }

  // The export is itself part of each recording's history.
  const custody = new CustodyLog(db, opts.actor);
  db.transaction(() => {
    for (const p of plan) {
      if (p.decrypt)
        custody.append({
          type: 'recording.decrypted',
          camera: p.r.camera,
          recording: p.r.id,
          sha256: p.r.sha256,
          details: { purpose: 'export', bundleId, ok: true },
        });
      custody.append({
        type: 'export.created',
        camera: p.r.camera,
        recording: p.r.id,
        sha256: p.r.sha256,
        details: { bundleId, reason: opts.reason, out: path.resolve(opts.outDir), decrypted: p.decrypt },
      });
    }
  }).immediate();
  const cp = new Checkpoints(db, opts.key).signHead() ?? new Checkpoints(db, opts.key).latest()!;

  const byRec = new Map<string, CustodyEvent[]>();
  for (const r of recs)
    byRec.set(
      r.id,
      custody.forRecording(r.id).filter((e) => e.seq <= cp.seq),
    );
  const firstSeq = Math.min(...[...byRec.values()].map((evs) => evs[0]?.seq ?? cp.seq));
  const chainPath = path.join(opts.outDir, CHAIN_FILE);
  const out = createWriteStream(chainPath);
  for (const event of custodyEventsBetween(db, firstSeq, cp.seq)) {
    if (!out.write(JSON.stringify(event) + '\n')) await new Promise<void>((r) => out.once('drain', () => r()));
  }
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));

  const recordings: ManifestRecording[] = recs.map((r) => ({
    id: r.id,
    camera: r.camera,
    sourcePath: r.source_path,
    file: names.get(r.id)!,
    bytes: r.bytes,
    sha256: r.sha256!,
    officer: r.officer ?? null,
    recordedAt: r.recorded_at,
    verifiedAt: r.verified_at,
    events: byRec.get(r.id)!.map((e) => e.seq),
    encrypted: plan.find((p) => p.r.id === r.id)!.encrypted,
    fileSha256: plan.find((p) => p.r.id === r.id)!.fileSha256,
  }));
  const createdAt = new Date().toISOString();
  writeFileSync(path.join(opts.outDir, KEY_FILE), opts.key.publicKey.export({ format: 'pem', type: 'spki' }));
  sums.push(`${await fileSha(path.join(opts.outDir, KEY_FILE))}  ${KEY_FILE}`);
  writeFileSync(
    path.join(opts.outDir, REPORT_FILE),
    renderReport({
      bundleId,
      createdAt,
      actor: opts.actor,
      reason: opts.reason,
      key: opts.key,
      cp,
      recordings,
      events: byRec,
    }),
  );
  sums.push(`${await fileSha(path.join(opts.outDir, REPORT_FILE))}  ${REPORT_FILE}`);
  sums.push(`${await fileSha(chainPath)}  ${CHAIN_FILE}`);
  writeFileSync(path.join(opts.outDir, 'SHA256SUMS'), sums.join('\n') + '\n');

  const manifest: Manifest = {
    format: EXPORT_FORMAT,
    bundleId,
    createdAt,
    actor: opts.actor,
    reason: opts.reason,
    dock: { publicKey: opts.key.publicKeyB64, keyId: opts.key.keyId, algorithm: 'Ed25519' },
    checkpoint: { seq: cp.seq, hash: cp.hash, signature: cp.signature, keyId: cp.keyId },
    chain: { file: CHAIN_FILE, firstSeq, lastSeq: cp.seq },
    files: { SHA256SUMS: await fileSha(path.join(opts.outDir, 'SHA256SUMS')) },
    recordings,
  };
  const body = Buffer.from(JSON.stringify(manifest, null, 2) + '\n');
  writeFileSync(path.join(opts.outDir, 'manifest.json'), body);
  writeFileSync(
    path.join(opts.outDir, 'manifest.json.sig'),
    sign(null, body, opts.key.privateKey!).toString('base64') + '\n',
  );
  return manifest;
}

export async function fileSha(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/**
 * The bundle checked with coreutils and OpenSSL 3 alone. SHA256SUMS is not signed itself: the
 * signed manifest names its hash, so step 3 ties the two and step 4 ties the key to the dock.
 */
export function checkingInstructions(publicKeyB64: string): string {
  return `How to check this bundle without dockd, in this folder (coreutils and OpenSSL 3):
  1. every file is what the dock verified:
       sha256sum -c SHA256SUMS
  2. the dock's key signed manifest.json:
       base64 -d manifest.json.sig > ${DECODED_SIG_FILE}
       openssl pkeyutl -verify -pubin -inkey ${KEY_FILE} -rawin -in manifest.json -sigfile ${DECODED_SIG_FILE}
  3. the signed manifest names this SHA256SUMS (prints its line):
       grep -F "$(sha256sum SHA256SUMS | cut -c1-64)" manifest.json
  4. the key is the dock's: this prints ${publicKeyB64},
     which must equal what \`dockd key\` prints on the dock (or dockKey in its daemon.started log lines):
       openssl pkey -pubin -in ${KEY_FILE} -outform DER | tail -c 32 | base64
  dockd verify-export . --key KEY  does all of this, and also checks the custody chain up to
  its signed checkpoint.
`;
}

function renderReport(r: {
  bundleId: string;
  createdAt: string;
  actor: string;
  reason: string;
  key: DockKey;
  cp: { seq: number; hash: string };
  recordings: ManifestRecording[];
  events: Map<string, CustodyEvent[]>;
}): string {
  const lines = [
    'CHAIN OF CUSTODY REPORT',
    '=======================',
    `bundle        ${r.bundleId}`,
    `created       ${r.createdAt} by ${r.actor}`,
    `reason        ${r.reason}`,
    `dock key      ${r.key.publicKeyB64} (Ed25519, id ${r.key.keyId})`,
    `signed head   seq ${r.cp.seq}, hash ${r.cp.hash}`,
    '',
    ...checkingInstructions(r.key.publicKeyB64).split('\n'),
  ];
  for (const rec of r.recordings) {
    lines.push(
      `RECORDING ${rec.id}`,
      `  camera        ${rec.camera}`,
      `  original path ${JSON.stringify(rec.sourcePath)}`,
      `  file          ${rec.file}`,
      `  bytes         ${rec.bytes}`,
      `  sha256        ${rec.sha256}`,
      `  officer       ${rec.officer ?? '(not assigned)'}`,
      `  recorded at   ${rec.recordedAt ?? 'unknown'} (dock time)`,
      '  history:',
    );
    for (const e of r.events.get(rec.id) ?? []) {
      lines.push(
        `    #${e.seq}  ${e.at}  ${e.type.padEnd(22)} ${e.actor}${e.sha256 ? `  sha256 ${e.sha256.slice(0, 16)}…` : ''}`,
      );
    }
    lines.push('');
  }
  return lines.join('\n');
}
