/**
 * The textual header of an age-encryption.org/v1 file: X25519 recipient stanzas that each wrap
 * the file key, and the MAC that binds them to it. Writing builds it whole; reading parses it
 * line by line as bytes arrive, so a decrypting stream can find where the payload starts.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  timingSafeEqual,
  type KeyObject,
} from 'node:crypto';

export class AgeError extends Error {
  override name = 'AgeError';
}

export const FILE_KEY_SIZE = 16;
const VERSION_LINE = 'age-encryption.org/v1';
const X25519_LABEL = 'age-encryption.org/v1/X25519';
const COLUMNS = 64;
const MAC_B64_LENGTH = 43;
// Stanzas of other kinds are legal and must be skipped, and some (post-quantum ones) are large;
// this still stops a stream that is not an age file from being buffered without end.
const MAX_HEADER_BYTES = 1024 * 1024;

// Node imports raw X25519 keys only inside these fixed DER wrappings (RFC 8410).
const PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
const SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');

export interface Stanza {
  args: string[];
  body: Buffer;
}

export interface X25519Identity {
  secret: KeyObject;
  recipient: Buffer;
}

export function hkdf(ikm: Buffer, salt: Buffer, info: string): Buffer {
  return Buffer.from(hkdfSync('sha256', ikm, salt, info, 32));
}

export function encodeBase64(b: Buffer): string {
  return b.toString('base64').replace(/=+$/, '');
}

/** The spec demands canonical unpadded base64; Node's decoder alone would accept much more. */
export function decodeBase64(s: string, what: string): Buffer {
  if (!/^[A-Za-z0-9+/]*$/.test(s) || s.length % 4 === 1) throw new AgeError(`invalid base64 in ${what}`);
  const bytes = Buffer.from(s, 'base64');
  if (encodeBase64(bytes) !== s) throw new AgeError(`non-canonical base64 in ${what}`);
  return bytes;
}

export function x25519SecretKey(raw: Buffer): X25519Identity {
  const secret = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, raw]), format: 'der', type: 'pkcs8' });
  return { secret, recipient: rawPublicKey(createPublicKey(secret)) };
}

function rawPublicKey(key: KeyObject): Buffer {
  return key.export({ type: 'spki', format: 'der' }).subarray(SPKI_PREFIX.length);
}

export function x25519(secret: KeyObject, publicRaw: Buffer): Buffer {
  const publicKey = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, publicRaw]), format: 'der', type: 'spki' });
  let shared: Buffer;
  try {
    shared = diffieHellman({ privateKey: secret, publicKey });
  } catch {
    // OpenSSL refuses exactly the all-zero result; any other failure is unexpected and would
    // surface as the same rejection, which is the safe direction.
    shared = Buffer.alloc(32);
  }
  if (shared.every((b) => b === 0)) {
    throw new AgeError('X25519 produced an all-zero shared secret: the key is a low-order point');
  }
  return shared;
}

function aead(key: Buffer, plaintext: Buffer): Buffer {
  const c = createCipheriv('chacha20-poly1305', key, Buffer.alloc(12), { authTagLength: 16 });
  return Buffer.concat([c.update(plaintext), c.final(), c.getAuthTag()]);
}

function aeadOpen(key: Buffer, sealed: Buffer): Buffer | null {
  const d = createDecipheriv('chacha20-poly1305', key, Buffer.alloc(12), { authTagLength: 16 });
  d.setAuthTag(sealed.subarray(sealed.length - 16));
  const out = d.update(sealed.subarray(0, sealed.length - 16));
  try {
    d.final();
  } catch {
    return null;
  }
  return out;
}

function wrapX25519(fileKey: Buffer, recipient: Buffer): Stanza {
  const ephemeral = generateKeyPairSync('x25519').privateKey;
  const share = rawPublicKey(createPublicKey(ephemeral));
  const shared = x25519(ephemeral, recipient);
  const wrapKey = hkdf(shared, Buffer.concat([share, recipient]), X25519_LABEL);
  return { args: ['X25519', encodeBase64(share)], body: aead(wrapKey, fileKey) };
}

function encodeStanza(s: Stanza): string {
  const b64 = encodeBase64(s.body);
  let out = `-> ${s.args.join(' ')}\n`;
  for (let i = 0; i < b64.length; i += COLUMNS) out += `${b64.slice(i, i + COLUMNS)}\n`;
  // A body ends at its first short line, so a body filling whole lines needs an empty one.
  if (b64.length % COLUMNS === 0) out += '\n';
  return out;
}

function headerMac(fileKey: Buffer, headerUpToDashes: string): Buffer {
  const key = hkdf(fileKey, Buffer.alloc(0), 'header');
  return createHmac('sha256', key).update(headerUpToDashes, 'latin1').digest();
}

export function buildHeader(fileKey: Buffer, recipients: Buffer[]): Buffer {
  const text = `${VERSION_LINE}\n${recipients.map((r) => encodeStanza(wrapX25519(fileKey, r))).join('')}---`;
  return Buffer.from(`${text} ${encodeBase64(headerMac(fileKey, text))}\n`, 'latin1');
}

/** Exact byte length of a header from buildHeader, which depends only on the recipient count. */
export function headerSize(recipientCount: number): number {
  const stanza = '-> X25519 \n\n'.length + 2 * 43;
  return VERSION_LINE.length + 1 + recipientCount * stanza + '--- \n'.length + MAC_B64_LENGTH;
}

function unwrapX25519(stanza: Stanza, id: X25519Identity): Buffer | null {
  if (stanza.args.length !== 2) throw new AgeError('malformed X25519 stanza: expected exactly one argument');
  const share = decodeBase64(stanza.args[1]!, 'X25519 stanza share');
  if (share.length !== 32) throw new AgeError('malformed X25519 stanza: share is not 32 bytes');
  // Checked before decrypting so that body length cannot serve as a partitioning oracle.
  if (stanza.body.length !== FILE_KEY_SIZE + 16) throw new AgeError('malformed X25519 stanza: body is not 32 bytes');
  const shared = x25519(id.secret, share);
  const wrapKey = hkdf(shared, Buffer.concat([share, id.recipient]), X25519_LABEL);
  return aeadOpen(wrapKey, stanza.body);
}

export interface ParsedHeader {
  stanzas: Stanza[];
  upToDashes: string;
  mac: Buffer;
}

/** Finds the file key in the header and proves the header unchanged with it. */
export function openHeader(header: ParsedHeader, identities: X25519Identity[]): Buffer {
  let fileKey: Buffer | null = null;
  for (const id of identities) {
    for (const s of header.stanzas) {
      // Other stanza kinds belong to other identity types; the spec says to skip them.
      if (s.args[0] !== 'X25519') continue;
      fileKey = unwrapX25519(s, id);
      if (fileKey) break;
    }
    if (fileKey) break;
  }
  if (!fileKey) {
    throw new AgeError('no identity matches any recipient stanza in the header (wrong key, or the header is damaged)');
  }
  if (!timingSafeEqual(headerMac(fileKey, header.upToDashes), header.mac)) {
    throw new AgeError('header MAC mismatch: the header was altered');
  }
  return fileKey;
}

function checkPrintable(line: string): void {
  for (let i = 0; i < line.length; i++) {
    const c = line.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) throw new AgeError('invalid byte in header (not an age file, or damaged)');
  }
}

/**
 * Parses a header fed in arbitrary pieces. Each `feed` consumes bytes up to the end of the
 * header at most, so whatever follows it in the same piece is left for the payload.
 */
export class HeaderReader {
  result: ParsedHeader | null = null;
  private state: 'version' | 'first-stanza' | 'next' | 'body' = 'version';
  private partial = '';
  private total = 0;
  private readonly lines: string[] = [];
  private readonly stanzas: Stanza[] = [];
  private body: Buffer[] = [];

  get started(): boolean {
    return this.total > 0;
  }

  feed(data: Buffer): number {
    let used = 0;
    while (used < data.length && !this.result) {
      const nl = data.indexOf(0x0a, used);
      const end = nl === -1 ? data.length : nl;
      this.partial += data.toString('latin1', used, end);
      this.total += end - used + (nl === -1 ? 0 : 1);
      used = nl === -1 ? end : nl + 1;
      if (this.total > MAX_HEADER_BYTES) throw new AgeError('age header too long (not an age file, or damaged)');
      if (nl === -1) {
        this.checkIncompleteLine();
      } else {
        const line = this.partial;
        this.partial = '';
        this.onLine(line);
      }
    }
    return used;
  }

  /** Rejects early what no later byte could make valid, rather than waiting for a newline. */
  private checkIncompleteLine(): void {
    if (
      this.state === 'version' &&
      (this.partial.length > VERSION_LINE.length || !VERSION_LINE.startsWith(this.partial))
    ) {
      this.onLine(this.partial);
    }
    if (this.state === 'next' && this.partial.startsWith('---') && this.partial.length > 4 + MAC_B64_LENGTH) {
      throw new AgeError('malformed header MAC line');
    }
  }

  private onLine(line: string): void {
    if (this.state !== 'version') checkPrintable(line);
    if (this.state === 'version') {
      if (line === VERSION_LINE) {
        this.state = 'first-stanza';
      } else if (line.startsWith('age-encryption.org/')) {
        throw new AgeError(`unsupported age format version ${JSON.stringify(line.slice(0, 40))}`);
      } else if (line.startsWith('-----BEGIN AGE ENCRYPTED FILE')) {
        throw new AgeError('ASCII-armored age files are not supported');
      } else {
        throw new AgeError('not an age file (no age-encryption.org/v1 version line)');
      }
    } else if (this.state === 'body') {
      if (line.length > COLUMNS) throw new AgeError('malformed stanza body: line longer than 64 columns');
      this.body.push(decodeBase64(line, 'stanza body'));
      if (line.length < COLUMNS) {
        this.stanzas[this.stanzas.length - 1]!.body = Buffer.concat(this.body);
        this.body = [];
        this.state = 'next';
      }
    } else if (line.startsWith('-> ')) {
      const args = line.slice(3).split(' ');
      if (args.some((a) => a.length === 0)) throw new AgeError('malformed stanza: empty argument');
      this.stanzas.push({ args, body: Buffer.alloc(0) });
      this.state = 'body';
    } else if (this.state === 'next' && line.startsWith('--- ')) {
      const mac = decodeBase64(line.slice(4), 'header MAC');
      if (mac.length !== 32) throw new AgeError('malformed header MAC line');
      this.result = { stanzas: this.stanzas, upToDashes: `${this.lines.join('\n')}\n---`, mac };
    } else {
      throw new AgeError(
        this.state === 'first-stanza' ? 'age header has no recipient stanza' : 'malformed age header line',
      );
    }
    this.lines.push(line);
  }
}
