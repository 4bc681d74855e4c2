/**
 * age (age-encryption.org/v1) with X25519 recipients, for keeping recordings encrypted at rest to
 * custodians' public keys. Files interoperate with the `age` tool and other implementations;
 * the crypto is Node's own (OpenSSL), so a stream runs at native speed.
 */
import { randomBytes, type KeyObject } from 'node:crypto';
import type { Transform } from 'node:stream';
import { AgeError, x25519, x25519SecretKey, type X25519Identity } from './age-header.js';
import { decryptStream, encryptStream, encryptedSize as payloadSize, startPayload } from './age-stream.js';
import { Bech32Error, bech32Decode, bech32Encode } from './bech32.js';

export { AgeError };

const RECIPIENT_HRP = 'age';
const IDENTITY_HRP = 'AGE-SECRET-KEY-';
const SECRET_KEY_PATTERN = /AGE-SECRET-KEY-(?:PQ-)?1[A-Z0-9]+/gi;

let probeKey: KeyObject | null = null;

function decode(s: string, what: string): { hrp: string; data: Buffer } {
  try {
    return bech32Decode(s);
  } catch (err) {
    if (err instanceof Bech32Error) throw new AgeError(`${what}: ${err.message}`);
    throw err;
  }
}

export function generateIdentity(): { identity: string; recipient: string } {
  const secret = randomBytes(32);
  return {
    identity: bech32Encode(IDENTITY_HRP, secret).toUpperCase(),
    recipient: bech32Encode(RECIPIENT_HRP, x25519SecretKey(secret).recipient),
  };
}

/** The 32-byte X25519 public key of an `age1…` recipient. */
export function parseRecipient(s: string): Buffer {
  if (/^age-secret-key-/i.test(s.trim())) {
    // Never echo it: this string is a secret that ended up where a public key belongs.
    throw new AgeError(
      'invalid age recipient: this is a secret key (AGE-SECRET-KEY-1…); give its public key (age1…, from age-keygen -y)',
    );
  }
  const what = `invalid age recipient ${JSON.stringify(s.length > 16 ? `${s.slice(0, 16)}…` : s)}`;
  if (s !== s.trim()) throw new AgeError(`${what}: leading or trailing whitespace`);
  if (s.startsWith('ssh-')) throw new AgeError(`${what}: SSH keys are not supported, only X25519 age1… recipients`);
  const { hrp, data } = decode(s, what);
  if (hrp === 'AGE') throw new AgeError(`${what}: must be lowercase`);
  if (hrp !== RECIPIENT_HRP) {
    throw new AgeError(
      hrp.startsWith('age1')
        ? `${what}: ${hrp.slice(4)} recipients (post-quantum, tag or plugin) are not supported, only X25519 age1…`
        : `${what}: not an age1… recipient`,
    );
  }
  if (data.length !== 32) throw new AgeError(`${what}: key is ${data.length} bytes, not 32`);
  // Any clamped scalar maps a low-order point to zero, so one exchange with a fixed key finds them
  // now rather than at the first encryption.
  probeKey ??= x25519SecretKey(Buffer.alloc(32, 0x5a)).secret;
  try {
    x25519(probeKey, data);
  } catch {
    throw new AgeError(`${what}: key is a low-order point, which would make the shared secret public`);
  }
  return data;
}

function parseIdentity(s: string): X25519Identity {
  // Messages here never quote the input: it is, or nearly is, a secret key.
  if (!/^AGE-SECRET-KEY-1/i.test(s)) {
    if (/^AGE-SECRET-KEY-PQ-1/i.test(s))
      throw new AgeError('invalid age identity: post-quantum identities are not supported');
    if (/^AGE-PLUGIN-/i.test(s)) throw new AgeError('invalid age identity: plugin identities are not supported');
    throw new AgeError('invalid age identity: does not start with AGE-SECRET-KEY-1');
  }
  const { hrp, data } = decode(s, 'invalid age identity');
  if (hrp !== IDENTITY_HRP) throw new AgeError('invalid age identity: must be uppercase');
  if (data.length !== 32) throw new AgeError(`invalid age identity: key is ${data.length} bytes, not 32`);
  return x25519SecretKey(data);
}

export function identityToRecipient(identity: string): string {
  return bech32Encode(RECIPIENT_HRP, parseIdentity(identity).recipient);
}

/** Identities from an age identity file (as age-keygen writes it): one per line, `#` comments. */
export function parseIdentityFile(text: string): string[] {
  const identities: string[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    try {
      parseIdentity(line);
    } catch (err) {
      throw new AgeError(`identity file line ${i + 1}: ${(err as Error).message}`);
    }
    identities.push(line);
  });
  if (identities.length === 0) throw new AgeError('identity file holds no AGE-SECRET-KEY-1… line');
  return identities;
}

/**
 * Whether the text holds an age secret key anywhere, in any case and of any kind. A checksum
 * must verify, so prose that merely names the key format does not count.
 */
export function isAgeIdentityText(text: string): boolean {
  for (const [candidate] of text.matchAll(SECRET_KEY_PATTERN)) {
    try {
      const { hrp } = bech32Decode(candidate);
      if (/^age-secret-key-(pq-)?$/i.test(hrp)) return true;
    } catch {
      // Not a key; keep looking.
    }
  }
  return false;
}

/**
 * Plaintext in, age file out. The file key is fresh per stream; the header goes out before any
 * input arrives, and output is held to about one sealed chunk however large the writes.
 */
export function createEncryptStream(recipients: string[]): Transform {
  if (recipients.length === 0) throw new AgeError('at least one age recipient is required');
  return encryptStream(recipients.map(parseRecipient));
}

/**
 * The start of a new age file for these recipients (header and payload nonce) and the key its
 * payload chunks are sealed with, for sealing elsewhere than in createEncryptStream.
 */
export function startAgeFile(recipients: string[]): { prefix: Buffer; key: Buffer } {
  if (recipients.length === 0) throw new AgeError('at least one age recipient is required');
  return startPayload(recipients.map(parseRecipient));
}

/**
 * age file in, plaintext out. Each 64 KiB chunk is released only once it authenticates, but a
 * file cut short or extended is found only at its end: the output is whole and genuine only if
 * the stream finishes without an error.
 */
export function createDecryptStream(identities: string[]): Transform {
  if (identities.length === 0) throw new AgeError('at least one age identity is required');
  return decryptStream(identities.map(parseIdentity));
}

/** Size of the file createEncryptStream makes from `plaintextBytes` for that many recipients. */
export function encryptedSize(plaintextBytes: number, recipientCount: number): number {
  return payloadSize(plaintextBytes, recipientCount);
}
