import { afterAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { AEAD_ADDON, chunkAead, loadChunkAead, type ChunkAead } from '../src/crypto/aead.js';
import { createDecryptStream, generateIdentity, startAgeFile } from '../src/crypto/age.js';
import { storedAgeCheck } from '../src/crypto/age-stream.js';
import { HashPool } from '../src/archive/hash-pool.js';

const require = createRequire(import.meta.url);
const node = loadChunkAead(require, null);
const KiB = 1024;
const SIZES = [0, 1, 15, 16, 17, 1000, 64 * KiB - 1, 64 * KiB];

describe('ChaCha20-Poly1305 on a STREAM chunk', () => {
  it('is the native binding that npm install builds', () => {
    expect(AEAD_ADDON, 'build/Release/dockd_aead.node: `npm install` builds it with node-gyp').not.toBeNull();
    expect(chunkAead.kind).toBe('native');
  });

  it('falls back to node:crypto when the binding will not load', () => {
    expect(loadChunkAead(require, '/nonexistent/dockd_aead.node').kind).toBe('node');
  });

  it('seals the same bytes natively as node:crypto does, and each opens what the other sealed', () => {
    for (const size of SIZES) {
      const key = randomBytes(32);
      const nonce = randomBytes(12);
      const plaintext = randomBytes(size);
      const [a, b] = [Buffer.alloc(size + 16), Buffer.alloc(size + 16)];
      expect(chunkAead.seal(key, nonce, plaintext, a)).toBe(size + 16);
      expect(node.seal(key, nonce, plaintext, b)).toBe(size + 16);
      expect(a.equals(b), `${size} bytes`).toBe(true);
      for (const [opener, sealed] of [
        [node, a],
        [chunkAead, b],
      ] as Array<[ChunkAead, Buffer]>) {
        const out = Buffer.alloc(size);
        expect(opener.open(key, nonce, sealed, out), `${opener.kind} opens ${size} bytes`).toBe(true);
        expect(out.equals(plaintext)).toBe(true);
        expect(opener.check(key, nonce, sealed)).toBe(true);
      }
    }
  });

  it('seals in place, into the memory the plaintext was in', () => {
    const key = randomBytes(32);
    const nonce = randomBytes(12);
    const plaintext = randomBytes(5000);
    const want = Buffer.alloc(5016);
    node.seal(key, nonce, plaintext, want);
    const memory = Buffer.alloc(5016);
    plaintext.copy(memory);
    chunkAead.seal(key, nonce, memory.subarray(0, 5000), memory);
    expect(memory.equals(want)).toBe(true);
  });

  it('refuses a changed ciphertext, tag, nonce or key, and leaves no plaintext of it', () => {
    const key = randomBytes(32);
    const nonce = randomBytes(12);
    const plaintext = Buffer.alloc(3000, 0x41);
    const sealed = Buffer.alloc(3016);
    chunkAead.seal(key, nonce, plaintext, sealed);
    const flip = (b: Buffer, i: number) => {
      const c = Buffer.from(b);
      c[i]! ^= 0x01;
      return c;
    };
    const cases: Array<[string, Buffer, Buffer, Buffer]> = [
      ['a ciphertext byte', key, nonce, flip(sealed, 1234)],
      ['a tag byte', key, nonce, flip(sealed, 3010)],
      ['the nonce', key, flip(nonce, 11), sealed],
      ['the key', flip(key, 0), nonce, sealed],
    ];
    for (const aead of [chunkAead, node]) {
      for (const [what, k, n, s] of cases) {
        const out = Buffer.alloc(3000, 0xff);
        expect(aead.open(k, n, s, out), `${aead.kind}: ${what}`).toBe(false);
        expect(aead.check(k, n, s), `${aead.kind}: ${what}`).toBe(false);
        if (aead.kind === 'native')
          expect(out.equals(Buffer.alloc(3000)), 'the unauthenticated plaintext is wiped').toBe(true);
      }
    }
  });

  it('throws on arguments that would read or write out of bounds instead of touching memory', () => {
    const key = randomBytes(32);
    const nonce = randomBytes(12);
    expect(() => chunkAead.seal(key, nonce, Buffer.alloc(100), Buffer.alloc(115))).toThrow(/16-byte tag/);
    expect(() => chunkAead.seal(key.subarray(1), nonce, Buffer.alloc(1), Buffer.alloc(17))).toThrow(/32-byte key/);
    expect(() => chunkAead.open(key, nonce, Buffer.alloc(10), Buffer.alloc(0))).toThrow(/16-byte tag/);
    expect(() => chunkAead.open(key, nonce, Buffer.alloc(116), Buffer.alloc(99))).toThrow(/less its 16-byte tag/);
    expect(() => chunkAead.check(key, nonce, Buffer.alloc(15))).toThrow(/16-byte tag/);
    const memory = Buffer.alloc(300);
    expect(() => chunkAead.seal(key, nonce, memory.subarray(10, 110), memory.subarray(0, 116))).toThrow(/overlap/);
    expect(() => chunkAead.seal(key, nonce, 'text' as unknown as Buffer, Buffer.alloc(20))).toThrow(/Uint8Array/);
  });
});

describe('checking a stored age file against what was sealed into it', () => {
  const alice = generateIdentity();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dockd-aead-'));
  const pool = new HashPool(1);
  afterAll(async () => {
    await pool.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /**
   * An age file of `size` random bytes for a known key, sealed chunk by chunk here with
   * node:crypto and the nonces age's spec gives (counter, then the last-chunk flag).
   */
  async function sealed(size: number) {
    const { prefix, key } = startAgeFile([alice.recipient]);
    const plaintext = randomBytes(size);
    const out: Buffer[] = [prefix];
    const count = Math.max(1, Math.ceil(size / (64 * KiB)));
    for (let i = 0; i < count; i++) {
      const piece = plaintext.subarray(i * 64 * KiB, (i + 1) * 64 * KiB);
      const nonce = Buffer.alloc(12);
      nonce.writeUIntBE(i, 5, 6);
      nonce[11] = i === count - 1 ? 1 : 0;
      const chunk = Buffer.alloc(piece.length + 16);
      node.seal(key, nonce, piece, chunk);
      out.push(chunk);
    }
    return { prefix, key, file: Buffer.concat(out), plaintext };
  }

  function problem(s: { prefix: Buffer; key: Buffer }, bytes: Buffer, total: number, pieces = [bytes.length || 1]) {
    const check = storedAgeCheck(chunkAead, s.key, s.prefix, total);
    for (let at = 0, i = 0; at < bytes.length; i++) {
      const n = pieces[i % pieces.length]!;
      check.feed(bytes.subarray(at, at + n));
      at += n;
    }
    return check.problem();
  }

  it('passes every file sealed, fed in pieces that cut its chunks anywhere', async () => {
    for (const size of [0, 1, 64 * KiB, 64 * KiB + 1, 300 * KiB + 7]) {
      const s = await sealed(size);
      const decrypted = await buffer(Readable.from([s.file]).pipe(createDecryptStream([alice.identity])));
      expect(decrypted.equals(s.plaintext), `the ${size}-byte file made here is a real age file`).toBe(true);
      for (const pieces of [[s.file.length || 1], [1], [1000, 7, 65552], [1024 * KiB]]) {
        expect(problem(s, s.file, s.file.length, pieces), `${size} bytes in pieces of ${pieces}`).toBeNull();
      }
    }
  });

  it('names what is wrong with a stored file that is not the one sealed', async () => {
    const s = await sealed(200 * KiB);
    const total = s.file.length;
    const changed = (i: number) => {
      const c = Buffer.from(s.file);
      c[i]! ^= 0x80;
      return c;
    };
    expect(problem(s, changed(20), total, [999])).toMatch(/header is not the one written/);
    expect(problem(s, changed(s.prefix.length + 70_000), total, [999])).toMatch(
      /payload chunk 1 does not authenticate/,
    );
    expect(problem(s, changed(total - 1), total, [999])).toMatch(/payload chunk 3 does not authenticate/);
    expect(problem(s, s.file.subarray(0, total - 100), total)).toMatch(
      new RegExp(`holds ${total - 100} of the ${total} bytes`),
    );
    expect(problem(s, Buffer.concat([s.file, Buffer.from('x')]), total)).toMatch(/more than the/);
    // Cut at a chunk boundary, the last chunk left was sealed as not the final one.
    const cut = s.prefix.length + 2 * (64 * KiB + 16);
    expect(problem(s, s.file.subarray(0, cut), cut)).toMatch(/payload chunk 1 does not authenticate/);
    // The same bytes checked under another file's key.
    const other = startAgeFile([alice.recipient]);
    expect(problem({ prefix: s.prefix, key: other.key }, s.file, total)).toMatch(
      /payload chunk 0 does not authenticate/,
    );
  });

  it('is done by the hash pool in its re-read, which gives the file SHA-256 as well', async () => {
    const s = await sealed(3 * 1024 * KiB + 5);
    const file = path.join(dir, 'a.age');
    writeFileSync(file, s.file);
    const good = await pool.hashFile(file, { age: { key: s.key, prefix: s.prefix, total: s.file.length } });
    expect(good).toEqual({
      sha256: createHash('sha256').update(s.file).digest('hex'),
      bytes: s.file.length,
      sealed: null,
    });
    const bad = Buffer.from(s.file);
    bad[s.prefix.length + 2 * 1024 * KiB]! ^= 1;
    writeFileSync(file, bad);
    // Sealed chunks are 64 KiB + 16: the 2 MiB-th payload byte lies in chunk 31.
    expect((await pool.hashFile(file, { age: { key: s.key, prefix: s.prefix, total: s.file.length } })).sealed).toMatch(
      /payload chunk 31 does not authenticate/,
    );
    // Without a key it only hashes, as for a plain copy.
    expect(await pool.hashFile(file)).not.toHaveProperty('sealed');
  });
});
