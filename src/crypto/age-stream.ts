/**
 * The age payload: a 16-byte nonce, then STREAM — 64 KiB chunks each sealed with
 * ChaCha20-Poly1305 under a nonce of an 11-byte big-endian counter and a last-chunk flag byte.
 */
import { randomBytes } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import {
  AgeError,
  FILE_KEY_SIZE,
  HeaderReader,
  buildHeader,
  headerSize,
  hkdf,
  openHeader,
  type X25519Identity,
} from './age-header.js';
import { chunkAead, type ChunkAead } from './aead.js';

export const CHUNK = 64 * 1024;
const TAG = 16;
const SEALED_CHUNK = CHUNK + TAG;
const NONCE_SIZE = 16;
// writeUIntBE stops at 6 bytes; 2^48 chunks of 64 KiB is far past any file.
export const MAX_COUNTER = 2 ** 48 - 1;

/**
 * The nonce of STREAM chunk `counter`: the counter as 11 big-endian bytes, then the last-chunk
 * flag. This and sealStreamChunk use nothing but their arguments and Buffer, because the seal
 * pool's worker runs their source text as it is (src/crypto/age-seal-pool.ts).
 */
export function streamNonce(counter: number, final: boolean): Buffer {
  const nonce = Buffer.alloc(12);
  nonce.writeUIntBE(counter, 5, 6);
  nonce[11] = final ? 1 : 0;
  return nonce;
}

/**
 * Seals STREAM chunk `counter` of `plaintext` into `out` (its ciphertext, then its 16-byte tag)
 * and returns the bytes written. The caller bounds `counter`.
 */
export function sealStreamChunk(
  aead: ChunkAead,
  key: Buffer,
  counter: number,
  final: boolean,
  plaintext: Buffer,
  out: Buffer,
): number {
  return aead.seal(key, streamNonce(counter, final), plaintext, out);
}

/**
 * One step of cutting plaintext into STREAM chunks, with `held` (CHUNK bytes) filled to `filled`:
 * how many bytes of `data` it took, the new fill, and a chunk to seal as not the last, if any. A
 * full chunk is held back until more input shows it is not the last one, since the last is
 * sealed with its own flag; a whole chunk at the front of `data` is sealed where it lies, without
 * a copy. Like sealStreamChunk, the seal pool's worker runs its source text.
 */
export function streamStep(
  held: Buffer,
  filled: number,
  data: Buffer,
): { took: number; filled: number; seal: Buffer | null } {
  if (filled === held.length) return { took: 0, filled: 0, seal: held };
  if (filled === 0 && data.length > held.length)
    return { took: held.length, filled: 0, seal: data.subarray(0, held.length) };
  const n = Math.min(held.length - filled, data.length);
  data.copy(held, filled, 0, n);
  return { took: n, filled: filled + n, seal: null };
}

/**
 * Checks a stored age file, fed in pieces of any size, against what was sealed into it: the
 * header and payload nonce must be `prefix` byte for byte and every STREAM chunk's tag must hold
 * under `key`, the chunk that ends at `total` (the size written) being the final one. A file that
 * passes is the one sealed, and decrypts, without anyone decrypting it: Poly1305 alone. Like
 * streamStep it needs only its arguments, streamNonce and CHUNK, because the re-read workers run
 * its source text (src/archive/hash-pool.ts).
 */
export function storedAgeCheck(
  aead: ChunkAead,
  key: Buffer,
  prefix: Buffer,
  total: number,
): { feed(data: Buffer): void; problem(): string | null } {
  const sealedSize = CHUNK + 16;
  // A chunk cut by the reader's buffers is gathered here; the others are checked where they lie.
  const carry = Buffer.allocUnsafe(sealedSize);
  let carried = 0;
  let at = 0;
  let counter = 0;
  let problem: string | null = null;
  return {
    feed(data) {
      while (data.length > 0 && problem === null) {
        if (at < prefix.length) {
          const n = Math.min(prefix.length - at, data.length);
          if (!data.subarray(0, n).equals(prefix.subarray(at, at + n))) problem = 'its header is not the one written';
          at += n;
          data = data.subarray(n);
          continue;
        }
        const start = at - carried;
        const size = Math.min(sealedSize, total - start);
        if (size < 16) {
          problem = `it holds more than the ${total} bytes written`;
          break;
        }
        let sealed: Buffer | null = null;
        if (carried === 0 && data.length >= size) {
          sealed = data.subarray(0, size);
          data = data.subarray(size);
          at += size;
        } else {
          const n = Math.min(size - carried, data.length);
          data.copy(carry, carried, 0, n);
          carried += n;
          at += n;
          data = data.subarray(n);
          if (carried === size) {
            sealed = carry.subarray(0, size);
            carried = 0;
          }
        }
        if (sealed && !aead.check(key, streamNonce(counter, start + size === total), sealed))
          problem = `its payload chunk ${counter} does not authenticate`;
        if (sealed) counter++;
      }
    },
    problem() {
      return problem ?? (at === total ? null : `it holds ${at} of the ${total} bytes written`);
    },
  };
}

function chunkNonce(counter: number, final: boolean): Buffer {
  if (counter > MAX_COUNTER) throw new AgeError('payload too long');
  return streamNonce(counter, final);
}

function openChunk(key: Buffer, counter: number, final: boolean, sealed: Buffer): Buffer | null {
  const plaintext = Buffer.allocUnsafe(sealed.length - TAG);
  return chunkAead.open(key, chunkNonce(counter, final), sealed, plaintext) ? plaintext : null;
}

export function encryptedSize(plaintextBytes: number, recipientCount: number): number {
  const chunks = Math.max(1, Math.ceil(plaintextBytes / CHUNK));
  return headerSize(recipientCount) + NONCE_SIZE + plaintextBytes + chunks * TAG;
}

/**
 * A Transform that works through each written buffer one step at a time and, when the reader
 * falls behind, parks the rest of the buffer until it reads again. A plain Transform would turn
 * one large write into that much output at once; this holds at most one sealed chunk.
 */
abstract class ChunkedTransform extends Transform {
  private parked: (() => void) | null = null;
  private full = false;
  private pushes = 0;

  /** Consumes a prefix of `data` (possibly none, if it only made progress of its own). */
  protected abstract step(data: Buffer): number;
  protected abstract last(): void;

  protected send(buf: Buffer): void {
    if (buf.length === 0) return;
    this.pushes++;
    if (!this.push(buf)) this.full = true;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.run(chunk, done);
  }

  override _flush(done: TransformCallback): void {
    try {
      this.last();
    } catch (err) {
      done(err as Error);
      return;
    }
    done();
  }

  override _read(size: number): void {
    const parked = this.parked;
    this.parked = null;
    if (parked) {
      const before = this.pushes;
      parked();
      // A push lets the reader call again; without one, nothing would, so the write callback
      // that Transform may have stashed meanwhile has to be released here.
      if (this.pushes !== before) return;
    }
    super._read(size);
  }

  private run(data: Buffer, done: TransformCallback): void {
    this.full = false;
    try {
      while (data.length > 0) {
        data = data.subarray(this.step(data));
        if (this.full && data.length > 0) {
          const rest = data;
          this.parked = () => this.run(rest, done);
          return;
        }
      }
    } catch (err) {
      done(err as Error);
      return;
    }
    done();
  }
}

class EncryptStream extends ChunkedTransform {
  private readonly held = Buffer.allocUnsafe(CHUNK);
  private filled = 0;
  private counter = 0;

  constructor(
    private readonly key: Buffer,
    prefix: Buffer,
  ) {
    super();
    this.push(prefix);
  }

  protected step(data: Buffer): number {
    const s = streamStep(this.held, this.filled, data);
    if (s.seal) this.sealAndSend(s.seal, false);
    this.filled = s.filled;
    return s.took;
  }

  protected last(): void {
    this.sealAndSend(this.held.subarray(0, this.filled), true);
  }

  private sealAndSend(plaintext: Buffer, final: boolean): void {
    if (this.counter > MAX_COUNTER) throw new AgeError('payload too long');
    const out = Buffer.allocUnsafe(plaintext.length + TAG);
    sealStreamChunk(chunkAead, this.key, this.counter++, final, plaintext, out);
    this.send(out);
  }
}

class DecryptStream extends ChunkedTransform {
  private header: HeaderReader | null = new HeaderReader();
  private fileKey: Buffer | null = null;
  private nonce = Buffer.alloc(0);
  private key: Buffer | null = null;
  private readonly held = Buffer.allocUnsafe(SEALED_CHUNK);
  private filled = 0;
  private counter = 0;

  constructor(private readonly identities: X25519Identity[]) {
    super();
  }

  protected step(data: Buffer): number {
    if (this.header) {
      const n = this.header.feed(data);
      if (this.header.result) {
        this.fileKey = openHeader(this.header.result, this.identities);
        this.header = null;
      }
      return n;
    }
    if (!this.key) {
      const n = Math.min(NONCE_SIZE - this.nonce.length, data.length);
      this.nonce = Buffer.concat([this.nonce, data.subarray(0, n)]);
      if (this.nonce.length === NONCE_SIZE) {
        this.key = hkdf(this.fileKey!, this.nonce, 'payload');
        this.fileKey!.fill(0);
      }
      return n;
    }
    // Whether a full sealed chunk is the last one is only known once more input arrives.
    if (this.filled === SEALED_CHUNK) {
      this.openAndSend(this.held, false);
      this.filled = 0;
      return 0;
    }
    if (this.filled === 0 && data.length > SEALED_CHUNK) {
      this.openAndSend(data.subarray(0, SEALED_CHUNK), false);
      return SEALED_CHUNK;
    }
    const n = Math.min(SEALED_CHUNK - this.filled, data.length);
    data.copy(this.held, this.filled, 0, n);
    this.filled += n;
    return n;
  }

  protected last(): void {
    if (this.header) {
      throw new AgeError(this.header.started ? 'age file truncated inside the header' : 'empty input: not an age file');
    }
    if (!this.key) throw new AgeError('age file truncated before the payload nonce ends');
    if (this.filled < TAG) throw new AgeError(`age file truncated: payload chunk ${this.counter} is incomplete`);
    this.openAndSend(this.held.subarray(0, this.filled), true);
  }

  private openAndSend(sealed: Buffer, final: boolean): void {
    const plaintext = openChunk(this.key!, this.counter, final, sealed);
    if (!plaintext) {
      // Only to name the failure: a chunk that opens under the other flag is intact but
      // out of place, which means a cut-off file or bytes appended after the real end.
      if (openChunk(this.key!, this.counter, !final, sealed)) {
        throw new AgeError(
          final
            ? `age file truncated: it ends after chunk ${this.counter}, which is not the final chunk`
            : `trailing data after the final chunk (chunk ${this.counter}) of the age file`,
        );
      }
      throw new AgeError(`age payload chunk ${this.counter} failed authentication: the file is damaged or altered`);
    }
    if (final && plaintext.length === 0 && this.counter > 0) {
      throw new AgeError('invalid age file: empty final chunk after other chunks');
    }
    this.counter++;
    this.send(plaintext);
  }
}

/**
 * What every age file starts with, and the key its payload is sealed with: a fresh file key
 * wrapped to each recipient (the header), then the payload nonce. The file key is wiped once
 * the payload key is derived from it.
 */
export function startPayload(recipients: Buffer[]): { prefix: Buffer; key: Buffer } {
  const fileKey = randomBytes(FILE_KEY_SIZE);
  const header = buildHeader(fileKey, recipients);
  const nonce = randomBytes(NONCE_SIZE);
  const key = hkdf(fileKey, nonce, 'payload');
  fileKey.fill(0);
  return { prefix: Buffer.concat([header, nonce]), key };
}

export function encryptStream(recipients: Buffer[]): Transform {
  const { prefix, key } = startPayload(recipients);
  return new EncryptStream(key, prefix);
}

export function decryptStream(identities: X25519Identity[]): Transform {
  return new DecryptStream(identities);
}
