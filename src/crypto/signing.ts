/**
 * The dock's Ed25519 signing key. Signed chain heads (checkpoints) let anyone holding the public
 * key prove that the custody log up to a sequence number is what this dock wrote, even if the
 * SQLite file is later rewritten wholesale by someone who also recomputed every hash.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign,
  verify,
  type KeyObject,
} from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { mkdirDurably, writeFileDurably } from '../lib/durable.js';

export interface DockKey {
  privateKey: KeyObject | null;
  publicKey: KeyObject;
  /** Base64 of the raw 32-byte public key: short enough to print, paste and compare. */
  publicKeyB64: string;
  keyId: string;
}

export function keyDir(dataDir: string): string {
  return path.join(dataDir, 'keys');
}

function describe(publicKey: KeyObject, privateKey: KeyObject | null): DockKey {
  const raw = rawPublicKey(publicKey);
  return { privateKey, publicKey, publicKeyB64: raw.toString('base64'), keyId: keyIdOf(raw) };
}

export function rawPublicKey(k: KeyObject): Buffer {
  const jwk = k.export({ format: 'jwk' }) as { x: string };
  return Buffer.from(jwk.x, 'base64url');
}

export function keyIdOf(raw: Buffer): string {
  return createHash('sha256').update(raw).digest('hex').slice(0, 16);
}

export function publicKeyFromB64(b64: string): KeyObject {
  const raw = Buffer.from(b64, 'base64');
  if (raw.length !== 32) throw new Error('an Ed25519 public key is 32 bytes (base64)');
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' });
}

/**
 * A dock's public key as an admin pastes it: the PEM of `keys/dock-signing.pub.pem`, or the
 * base64 of the raw 32 bytes that `dockd key` prints. Anything but Ed25519 is refused.
 */
export function parseDockPublicKey(text: string): KeyObject {
  const t = text.trim();
  if (t.startsWith('-----BEGIN')) {
    let k: KeyObject;
    try {
      k = createPublicKey(t);
    } catch {
      throw new Error('is not a readable PEM public key');
    }
    if (k.asymmetricKeyType !== 'ed25519')
      throw new Error(`must be an Ed25519 key, got ${k.asymmetricKeyType ?? 'an unknown type'}`);
    return k;
  }
  if (!/^[A-Za-z0-9+/]{42,43}=?$/.test(t))
    throw new Error('must be a PEM public key or the base64 of a raw 32-byte Ed25519 key (as `dockd key` prints it)');
  return publicKeyFromB64(t);
}

export const PRIVATE_KEY_FILE = 'dock-signing.pem';
export const PUBLIC_KEY_FILE = 'dock-signing.pub.pem';

/** What a key file holds: a key, nothing, or something no key can be read from. */
export type KeyFileState<K> =
  { state: 'ok'; key: K } | { state: 'missing' } | { state: 'torn'; bytes: number; reason: string };

function readKeyFile<K>(file: string, parse: (pem: Buffer) => K): KeyFileState<K> {
  let pem: Buffer;
  try {
    pem = readFileSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { state: 'missing' };
    throw err;
  }
  if (pem.length === 0) return { state: 'torn', bytes: 0, reason: 'empty' };
  try {
    return { state: 'ok', key: parse(pem) };
  } catch (err) {
    return { state: 'torn', bytes: pem.length, reason: `not a key (${(err as Error).message})` };
  }
}

function ed25519(k: KeyObject): KeyObject {
  if (k.asymmetricKeyType !== 'ed25519') throw new Error(`an ${k.asymmetricKeyType ?? 'unknown'} key, not Ed25519`);
  return k;
}

export function readPrivateKeyFile(dataDir: string): KeyFileState<KeyObject> {
  return readKeyFile(path.join(keyDir(dataDir), PRIVATE_KEY_FILE), (pem) => ed25519(createPrivateKey(pem)));
}

export function readPublicKeyFile(dataDir: string): KeyFileState<KeyObject> {
  return readKeyFile(path.join(keyDir(dataDir), PUBLIC_KEY_FILE), (pem) => ed25519(createPublicKey(pem)));
}

/** "keys/dock-signing.pem is empty (0 bytes)": what a start found, in words. */
export function describeKeyFile(name: string, s: KeyFileState<unknown>): string {
  if (s.state === 'ok') return `keys/${name} holds a key`;
  if (s.state === 'missing') return `keys/${name} is missing`;
  return `keys/${name} is ${s.reason === 'empty' ? 'empty' : 'torn'} (${s.bytes} bytes${s.reason === 'empty' ? '' : `: ${s.reason}`})`;
}

/**
 * Writes a new key pair, each file durably (temporary name, fsync, rename, fsync of keys/), the
 * private half first: a cut between the two leaves a private key whose public half is derived
 * again at the next start, never a public key without its private one.
 */
export function writeNewDockKey(
  dataDir: string,
  pair: { privateKey: KeyObject; publicKey: KeyObject } = generateKeyPairSync('ed25519'),
): DockKey {
  const dir = keyDir(dataDir);
  mkdirDurably(dir, 0o700);
  const { privateKey, publicKey } = pair;
  writeFileDurably(path.join(dir, PRIVATE_KEY_FILE), privateKey.export({ format: 'pem', type: 'pkcs8' }), 0o600);
  writePublicKey(dataDir, publicKey);
  return describe(publicKey, privateKey);
}

export function writePublicKey(dataDir: string, publicKey: KeyObject): void {
  writeFileDurably(
    path.join(keyDir(dataDir), PUBLIC_KEY_FILE),
    publicKey.export({ format: 'pem', type: 'spki' }),
    0o644,
  );
}

/**
 * Loads the dock key, creating it on first use (a data dir without keys/). A key file found
 * torn is an error here: only the daemon's start (dock-key.ts) may judge whether it can be
 * made anew, against the checkpoints it signed.
 */
export function loadOrCreateDockKey(dataDir: string): DockKey {
  const priv = readPrivateKeyFile(dataDir);
  if (priv.state === 'ok') return describe(createPublicKey(priv.key), priv.key);
  const pub = readPublicKeyFile(dataDir);
  if (priv.state === 'missing' && pub.state === 'missing') return writeNewDockKey(dataDir);
  throw new Error(
    `the dock signing key cannot be read: ${describeKeyFile(PRIVATE_KEY_FILE, priv)}, ${describeKeyFile(PUBLIC_KEY_FILE, pub)}; start the daemon (dockd start) to have it judged`,
  );
}

/**
 * The public half only, for commands that never sign; derived from the private key when the
 * public file is torn. Null when neither can be read: checkpoints then cannot be checked.
 */
export function loadDockPublicKey(dataDir: string): DockKey | null {
  const pub = readPublicKeyFile(dataDir);
  if (pub.state === 'ok') return describe(pub.key, null);
  const priv = readPrivateKeyFile(dataDir);
  if (priv.state === 'ok') return describe(createPublicKey(priv.key), null);
  return null;
}

export function describeDockKey(privateKey: KeyObject): DockKey {
  return describe(createPublicKey(privateKey), privateKey);
}

export function describePublicKey(publicKey: KeyObject): DockKey {
  return describe(publicKey, null);
}

export function checkpointMessage(seq: number, hash: string): Buffer {
  return Buffer.from(`dockd-custody-checkpoint\n${seq}\n${hash}\n`);
}

export function signCheckpoint(key: DockKey, seq: number, hash: string): string {
  if (!key.privateKey) throw new Error('no private key to sign with');
  return sign(null, checkpointMessage(seq, hash), key.privateKey).toString('base64');
}

export function checkpointValid(publicKey: KeyObject, seq: number, hash: string, signature: string): boolean {
  try {
    return verify(null, checkpointMessage(seq, hash), publicKey, Buffer.from(signature, 'base64'));
  } catch {
    return false;
  }
}
