/**
 * The dock's Ed25519 signing key. Signed chain heads (checkpoints) let anyone holding the public
 * key prove that the custody log up to a sequence number is what this dock wrote, even if the
 * SQLite file is later rewritten wholesale by someone who also recomputed every hash.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import path from 'node:path';

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
    if (k.asymmetricKeyType !== 'ed25519') throw new Error(`must be an Ed25519 key, got ${k.asymmetricKeyType ?? 'an unknown type'}`);
    return k;
  }
  if (!/^[A-Za-z0-9+/]{42,43}=?$/.test(t)) throw new Error('must be a PEM public key or the base64 of a raw 32-byte Ed25519 key (as `dockd key` prints it)');
  return publicKeyFromB64(t);
}

/** Loads the dock key, creating it (private part 0600) on first use. */
export function loadOrCreateDockKey(dataDir: string): DockKey {
  const dir = keyDir(dataDir);
  const priv = path.join(dir, 'dock-signing.pem');
  if (!existsSync(priv)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    writeFileSync(priv, privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600, flag: 'wx' });
    chmodSync(priv, 0o600);
    writeFileSync(path.join(dir, 'dock-signing.pub.pem'), publicKey.export({ format: 'pem', type: 'spki' }));
  }
  const privateKey = createPrivateKey(readFileSync(priv));
  return describe(createPublicKey(privateKey), privateKey);
}

/** The public half only, for commands that never sign. */
export function loadDockPublicKey(dataDir: string): DockKey | null {
  const pub = path.join(keyDir(dataDir), 'dock-signing.pub.pem');
  if (!existsSync(pub)) return null;
  return describe(createPublicKey(readFileSync(pub)), null);
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
