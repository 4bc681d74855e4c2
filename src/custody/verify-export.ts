/**
 * Offline check of an export bundle: needs only the folder (and, ideally, the dock's public key
 * obtained independently with `dockd key`). Every byte of the bundle is covered by a check.
 */
import { createPublicKey, verify } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { checkChain, type CustodyEvent } from '../store/chain.js';
import { checkpointValid, publicKeyFromB64, rawPublicKey } from '../crypto/signing.js';
import { CHAIN_FILE, DECODED_SIG_FILE, EXPORT_FORMAT, KEY_FILE, fileSha, type Manifest } from './export.js';

export interface ExportCheck {
  ok: boolean;
  problems: string[];
  recordings: number;
  keyId: string | null;
}

export async function verifyExport(dir: string, pinnedKeyB64?: string): Promise<ExportCheck> {
  const problems: string[] = [];
  const fail = (p: string) => problems.push(p);
  const res = (keyId: string | null, recordings = 0): ExportCheck => ({
    ok: problems.length === 0,
    problems,
    recordings,
    keyId,
  });
  const manifestPath = path.join(dir, 'manifest.json');
  if (!existsSync(manifestPath)) {
    fail('manifest.json is missing');
    return res(null);
  }
  const body = readFileSync(manifestPath);
  let m: Manifest;
  try {
    m = JSON.parse(body.toString('utf8')) as Manifest;
  } catch {
    fail('manifest.json is not valid JSON');
    return res(null);
  }
  if (m.format !== EXPORT_FORMAT) fail(`unknown bundle format ${String(m.format)}`);
  let key;
  try {
    key = publicKeyFromB64(m.dock.publicKey);
  } catch {
    fail('manifest names no valid dock public key');
    return res(null);
  }
  if (pinnedKeyB64 && pinnedKeyB64 !== m.dock.publicKey)
    fail('the bundle was signed by another key than the one given with --key');
  const sig = existsSync(path.join(dir, 'manifest.json.sig'))
    ? readFileSync(path.join(dir, 'manifest.json.sig'), 'utf8').trim()
    : '';
  if (!sig || !verify(null, body, key, Buffer.from(sig, 'base64'))) fail('manifest.json signature does not verify');

  // SHA256SUMS: its own hash is in the signed manifest; every listed file must match it.
  const sumsPath = path.join(dir, 'SHA256SUMS');
  const listed = new Map<string, string>();
  if (!existsSync(sumsPath)) fail('SHA256SUMS is missing');
  else {
    if ((await fileSha(sumsPath)) !== m.files?.SHA256SUMS) fail('SHA256SUMS differs from the one the manifest signs');
    for (const line of readFileSync(sumsPath, 'utf8').split('\n').filter(Boolean)) {
      const mm = /^([0-9a-f]{64}) {2}(.+)$/.exec(line);
      if (!mm) {
        fail(`SHA256SUMS has a malformed line: ${line.slice(0, 80)}`);
        continue;
      }
      listed.set(mm[2]!, mm[1]!);
    }
    for (const [rel, sum] of listed) {
      const abs = path.join(dir, rel);
      if (rel.includes('..') || !existsSync(abs)) fail(`${rel} is missing`);
      else if ((await fileSha(abs)) !== sum) fail(`${rel} does not match its SHA-256`);
    }
  }
  // The PEM is for OpenSSL; it must be the key the manifest names, or the two checks part ways.
  if (
    listed.has(KEY_FILE) &&
    existsSync(path.join(dir, KEY_FILE)) &&
    !pemHoldsKey(readFileSync(path.join(dir, KEY_FILE)), m.dock.publicKey)
  ) {
    fail(`${KEY_FILE} is not the key manifest.json names`);
  }
  const expected = new Set([...listed.keys(), 'SHA256SUMS', 'manifest.json', 'manifest.json.sig']);
  // Left by the standard-tools check (see custody-report.txt): harmless while it is the signature.
  const decoded = path.join(dir, DECODED_SIG_FILE);
  if (existsSync(decoded) && readFileSync(decoded).equals(Buffer.from(sig, 'base64'))) expected.add(DECODED_SIG_FILE);
  for (const f of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!f.isFile()) continue;
    const rel = path.relative(dir, path.join(f.parentPath, f.name)).split(path.sep).join('/');
    if (!expected.has(rel)) fail(`unexpected file ${rel}`);
  }

  // The chain slice must recompute and end exactly at the signed checkpoint.
  const events: CustodyEvent[] = [];
  const chainPath = path.join(dir, CHAIN_FILE);
  if (existsSync(chainPath)) {
    for (const line of readFileSync(chainPath, 'utf8').split('\n').filter(Boolean)) {
      try {
        events.push(JSON.parse(line) as CustodyEvent);
      } catch {
        fail('custody chain has a line that is not JSON');
      }
    }
  } else fail(`${CHAIN_FILE} is missing`);
  if (events.length) {
    const first = events[0]!;
    const check = checkChain(events, { seq: first.seq, prevHash: first.prevHash });
    if (!check.ok) fail(`custody chain broken at seq ${check.firstBadSeq}: ${check.reason}`);
    const last = events[events.length - 1]!;
    if (last.seq !== m.checkpoint.seq || last.hash !== m.checkpoint.hash)
      fail('the chain does not end at the signed checkpoint');
  }
  if (!checkpointValid(key, m.checkpoint.seq, m.checkpoint.hash, m.checkpoint.signature))
    fail('checkpoint signature does not verify');

  const bySeq = new Map(events.map((e) => [e.seq, e]));
  for (const r of m.recordings ?? []) {
    if (listed.get(r.file) !== (r.fileSha256 ?? r.sha256)) fail(`recording ${r.id}: SHA256SUMS and manifest disagree`);
    const evs = r.events.map((s) => bySeq.get(s));
    if (evs.some((e) => !e || e.recording !== r.id)) fail(`recording ${r.id}: its custody events are not in the chain`);
    const verified = evs.find((e) => e?.type === 'offload.verified');
    if (!verified || verified.sha256 !== r.sha256)
      fail(`recording ${r.id}: no offload.verified event with its SHA-256`);
  }
  return res(m.dock.keyId, m.recordings?.length ?? 0);
}

function pemHoldsKey(pem: Buffer, publicKeyB64: string): boolean {
  try {
    return rawPublicKey(createPublicKey(pem)).toString('base64') === publicKeyB64;
  } catch {
    return false;
  }
}
