import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { Readable, Writable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  AgeError,
  createDecryptStream,
  createEncryptStream,
  encryptedSize,
  generateIdentity,
  identityToRecipient,
  isAgeIdentityText,
  parseIdentityFile,
  parseRecipient,
} from '../src/crypto/age.js';
import { bech32Decode, bech32Encode } from '../src/crypto/bech32.js';

const KiB = 1024;
const CHUNK = 64 * KiB;
const SEALED = CHUNK + 16;

// Seeded, so a failure with some particular split of the input reproduces.
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function* pieces(data: Buffer, rand?: () => number): Generator<Buffer> {
  if (!rand) {
    yield data;
    return;
  }
  for (let at = 0; at < data.length;) {
    const r = rand();
    // Mostly mid-sized pieces, with single bytes and exact chunk sizes mixed in.
    const size = r < 0.1 ? 1 : r < 0.2 ? CHUNK : r < 0.3 ? SEALED : 1 + Math.floor(rand() * 150_000);
    yield data.subarray(at, at + size);
    at += size;
  }
}

interface Outcome {
  output: Buffer;
  error: Error | null;
}

async function run(stream: Transform, input: Buffer, rand?: () => number): Promise<Outcome> {
  const out: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      out.push(chunk);
      // An occasionally slow reader, so backpressure has to hold.
      if (rand && rand() < 0.2) setImmediate(cb);
      else cb();
    },
  });
  let error: Error | null = null;
  try {
    await pipeline(Readable.from(pieces(input, rand)), stream, sink);
  } catch (err) {
    error = err as Error;
  }
  return { output: Buffer.concat(out), error };
}

async function encrypt(recipients: string[], plaintext: Buffer, rand?: () => number): Promise<Buffer> {
  const { output, error } = await run(createEncryptStream(recipients), plaintext, rand);
  if (error) throw error;
  return output;
}

async function decrypt(identities: string[], file: Buffer, rand?: () => number): Promise<Buffer> {
  const { output, error } = await run(createDecryptStream(identities), file, rand);
  if (error) throw error;
  return output;
}

const alice = generateIdentity();
const bob = generateIdentity();
const carol = generateIdentity();

function headerLength(file: Buffer): number {
  return file.indexOf('\n---') + 1 + file.subarray(file.indexOf('\n---') + 1).indexOf('\n') + 1;
}

describe('bech32', () => {
  it('accepts the BIP 173 valid vectors and re-encodes them', () => {
    const valid = [
      'A12UEL5L',
      'a12uel5l',
      'an83characterlonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1tt5tgs',
      'abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw',
      `11${'q'.repeat(82)}c8247j`,
      'split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w',
      '?1ezyfcl',
    ];
    for (const s of valid) {
      const { hrp, data } = bech32Decode(s);
      expect(bech32Encode(hrp, data)).toBe(s.toLowerCase());
    }
    expect(bech32Decode('abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw').data.toString('hex')).toBe(
      '00443214c74254b635cf84653a56d7c675be77df',
    );
    expect(bech32Decode('A12UEL5L').hrp).toBe('A');
  });

  it('rejects invalid strings, including bech32m ones', () => {
    const invalid: [string, RegExp][] = [
      ['pzry9x0s0muk', /separator/],
      ['1pzry9x0s0muk', /separator/],
      ['10a06t8', /separator/],
      ['x1b4n0q5v', /data character/],
      ['li1dgmt3', /too short/],
      ['A1G7SGD8', /checksum/],
      ['A12uEL5L', /mixed case/],
      ['split1checkupstagehandshakeupstreamerranterredcaperred2y9e2w', /checksum/],
      ['de1lg7wt\u00ff', /invalid character/],
      // BIP 350 valid bech32m: age keys are plain bech32, so these must not pass.
      ['a1lqfn3a', /checksum/],
      ['abcdef1l7aum6echk45nj3s0wdvt2fg8x9yrzpqzd3ryx', /checksum/],
    ];
    for (const [s, why] of invalid) expect(() => bech32Decode(s), s).toThrow(why);
  });

  it('round-trips bytes of every length up to 40 and has no 90-character limit', () => {
    for (let n = 0; n <= 40; n++) {
      const data = randomBytes(n);
      expect(bech32Decode(bech32Encode('age', data)).data.equals(data)).toBe(true);
    }
    const long = randomBytes(1216);
    expect(bech32Decode(bech32Encode('age1pq', long)).data.equals(long)).toBe(true);
  });
});

describe('age keys', () => {
  it('derives the recipient of the spec example identity', () => {
    expect(identityToRecipient('AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX')).toBe(
      'age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj',
    );
  });

  it('generates fresh matching pairs in the standard encodings', () => {
    const a = generateIdentity();
    expect(a.identity).toMatch(/^AGE-SECRET-KEY-1[02-9AC-HJ-NP-Z]{58}$/);
    expect(a.recipient).toMatch(/^age1[02-9ac-hj-np-z]{58}$/);
    expect(identityToRecipient(a.identity)).toBe(a.recipient);
    expect(a.identity).not.toBe(alice.identity);
    expect(parseRecipient(a.recipient)).toHaveLength(32);
  });

  it('rejects anything but a valid lowercase X25519 age1 recipient, naming the problem', () => {
    const valid = alice.recipient;
    const lastChar = valid.at(-1) === 'q' ? 'p' : 'q';
    const cases: [string, RegExp][] = [
      ['', /separator/],
      [`${valid.slice(0, -1)}${lastChar}`, /checksum/],
      [valid.toUpperCase(), /lowercase/],
      [` ${valid}`, /whitespace/],
      ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHjq', /SSH/],
      [bech32Encode('age1pq', randomBytes(1216)), /pq recipients .* not supported/],
      [bech32Encode('age1yubikey', randomBytes(33)), /yubikey recipients .* not supported/],
      [bech32Encode('npub', randomBytes(32)), /not an age1/],
      [bech32Encode('age', randomBytes(31)), /31 bytes, not 32/],
      [bech32Encode('age', Buffer.alloc(32)), /low-order/],
      [bech32Encode('age', Buffer.from([1, ...Buffer.alloc(31)])), /low-order/],
    ];
    for (const [s, why] of cases) {
      expect(() => parseRecipient(s), s).toThrow(AgeError);
      expect(() => parseRecipient(s), s).toThrow(why);
    }
  });

  it('refuses a secret key given as a recipient without echoing it', () => {
    let message = '';
    try {
      parseRecipient(alice.identity);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/secret key/);
    expect(message).not.toContain(alice.identity.slice(16, 40));
  });

  it('parses identity files with comments, blank lines and CRLF', () => {
    const text = [
      '# created: 2024-01-01T00:00:00Z',
      `# public key: ${alice.recipient}`,
      alice.identity,
      '',
      `  ${bob.identity}  `,
      '',
    ].join('\r\n');
    expect(parseIdentityFile(text)).toEqual([alice.identity, bob.identity]);
  });

  it('rejects bad identity files by line number without quoting the key', () => {
    const damaged = `${alice.identity.slice(0, -1)}${alice.identity.endsWith('Q') ? 'P' : 'Q'}`;
    const bad: [string, RegExp][] = [
      [`# key\n${alice.identity}\n${damaged}\n`, /line 3: .*checksum/],
      [`${alice.identity.toLowerCase()}\n`, /line 1: .*uppercase/],
      [`${alice.recipient}\n`, /line 1: .*AGE-SECRET-KEY-1/],
      [`${bech32Encode('AGE-SECRET-KEY-PQ-', randomBytes(32)).toUpperCase()}\n`, /post-quantum/],
      ['# only comments\n\n', /no AGE-SECRET-KEY-1/],
    ];
    for (const [text, why] of bad) {
      expect(() => parseIdentityFile(text)).toThrow(why);
      try {
        parseIdentityFile(text);
      } catch (err) {
        expect((err as Error).message).not.toContain(alice.identity.slice(16, 40));
        expect((err as Error).message.toLowerCase()).not.toContain(alice.identity.slice(16, 40).toLowerCase());
      }
    }
  });

  it('spots secret keys in text, and only real ones', () => {
    expect(isAgeIdentityText(`# created: now\n${alice.identity}\n`)).toBe(true);
    expect(isAgeIdentityText(`{"key":"${alice.identity.toLowerCase()}"}`)).toBe(true);
    expect(isAgeIdentityText(`x=${bech32Encode('AGE-SECRET-KEY-PQ-', randomBytes(32)).toUpperCase()};`)).toBe(true);
    expect(isAgeIdentityText(`recipient: ${alice.recipient}\n`)).toBe(false);
    expect(isAgeIdentityText('Identities look like AGE-SECRET-KEY-1QQQQQQ and live offline.')).toBe(false);
    const damaged = `${alice.identity.slice(0, 30)}${alice.identity[30] === 'Q' ? 'P' : 'Q'}${alice.identity.slice(31)}`;
    expect(isAgeIdentityText(damaged)).toBe(false);
    expect(isAgeIdentityText('')).toBe(false);
  });

  it('refuses to build streams without valid keys', () => {
    expect(() => createEncryptStream([])).toThrow(/at least one age recipient/);
    expect(() => createEncryptStream([alice.recipient, 'nonsense'])).toThrow(/invalid age recipient "nonsense"/);
    expect(() => createDecryptStream([])).toThrow(/at least one age identity/);
    expect(() => createDecryptStream(['AGE-SECRET-KEY-1QQQQQQQQQQ'])).toThrow(/invalid age identity/);
  });
});

describe('age encrypt/decrypt streams', () => {
  it.each([0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK])('round-trips %i bytes', async (n) => {
    const plaintext = randomBytes(n);
    const file = await encrypt([alice.recipient], plaintext);
    expect(file.length).toBe(encryptedSize(n, 1));
    expect((await decrypt([alice.identity], file)).equals(plaintext)).toBe(true);
  });

  it('round-trips several MB written and read in random pieces with a slow reader', async () => {
    for (const seed of [1, 2, 3]) {
      const rand = prng(seed);
      const plaintext = randomBytes(5 * 1024 * KiB + 123 * seed);
      const file = await encrypt([alice.recipient], plaintext, rand);
      expect(file.length).toBe(encryptedSize(plaintext.length, 1));
      expect((await decrypt([alice.identity], file, rand)).equals(plaintext), `seed ${seed}`).toBe(true);
    }
  });

  it('writes the header format of the spec, with a fresh file key every time', async () => {
    const plaintext = Buffer.from('evidence');
    const a = await encrypt([alice.recipient, bob.recipient], plaintext);
    const b = await encrypt([alice.recipient, bob.recipient], plaintext);
    const b64 = '[A-Za-z0-9+/]{43}';
    const header = new RegExp(`^age-encryption\\.org/v1\\n(-> X25519 ${b64}\\n${b64}\\n){2}--- ${b64}\\n$`);
    expect(a.subarray(0, headerLength(a)).toString('latin1')).toMatch(header);
    expect(a.length).toBe(encryptedSize(plaintext.length, 2));
    expect(a.subarray(0, headerLength(a)).equals(b.subarray(0, headerLength(b)))).toBe(false);
    expect(a.subarray(-24).equals(b.subarray(-24))).toBe(false);
  });

  it('lets each of several recipients decrypt, and nobody else', async () => {
    const plaintext = randomBytes(100_000);
    const file = await encrypt([alice.recipient, bob.recipient], plaintext);
    expect((await decrypt([alice.identity], file)).equals(plaintext)).toBe(true);
    expect((await decrypt([bob.identity], file)).equals(plaintext)).toBe(true);
    expect((await decrypt([carol.identity, bob.identity], file)).equals(plaintext)).toBe(true);
    const wrong = await run(createDecryptStream([carol.identity]), file);
    expect(wrong.error).toBeInstanceOf(AgeError);
    expect(wrong.error?.message).toMatch(/no identity matches/);
    expect(wrong.output).toHaveLength(0);
  });

  it('rejects a change to any single byte of the header', async () => {
    const file = await encrypt([alice.recipient, bob.recipient], randomBytes(1000));
    const end = headerLength(file);
    for (let i = 0; i < end; i++) {
      const bad = Buffer.from(file);
      bad[i] = bad[i]! ^ 0x01;
      const { output, error } = await run(createDecryptStream([bob.identity]), bad);
      expect(error, `byte ${i} of the header`).toBeInstanceOf(AgeError);
      expect(output).toHaveLength(0);
    }
  });

  it('names header MAC failures', async () => {
    const file = await encrypt([alice.recipient], randomBytes(10));
    const macAt = file.indexOf('\n--- ') + 5;
    const bad = Buffer.from(file);
    bad[macAt] = bad[macAt] === 0x41 ? 0x42 : 0x41;
    await expect(decrypt([alice.identity], bad)).rejects.toThrow(/header MAC mismatch/);
  });

  it('rejects a changed payload byte and releases nothing from that chunk on', async () => {
    const plaintext = randomBytes(5 * CHUNK + 500);
    const file = await encrypt([alice.recipient], plaintext);
    const payload = headerLength(file) + 16;
    const spots: [number, number][] = [
      [headerLength(file) + 3, 0], // the payload nonce
      [payload + 10, 0],
      [payload + 2 * SEALED + 40_000, 2],
      [payload + 3 * SEALED - 1, 2], // a tag
      [file.length - 1, 5],
    ];
    for (const [at, chunk] of spots) {
      const bad = Buffer.from(file);
      bad[at] = bad[at]! ^ 0x80;
      const { output, error } = await run(createDecryptStream([alice.identity]), bad);
      expect(error?.message).toMatch(new RegExp(`chunk ${chunk} failed authentication`));
      expect(output.equals(plaintext.subarray(0, chunk * CHUNK)), `byte ${at}`).toBe(true);
    }
  });

  it('rejects reordered chunks', async () => {
    const file = await encrypt([alice.recipient], randomBytes(3 * CHUNK));
    const payload = headerLength(file) + 16;
    const bad = Buffer.concat([
      file.subarray(0, payload),
      file.subarray(payload + SEALED, payload + 2 * SEALED),
      file.subarray(payload, payload + SEALED),
      file.subarray(payload + 2 * SEALED),
    ]);
    await expect(decrypt([alice.identity], bad)).rejects.toThrow(/chunk 0 failed authentication/);
  });

  it('rejects truncation anywhere', async () => {
    const plaintext = randomBytes(3 * CHUNK + 10);
    const file = await encrypt([alice.recipient], plaintext);
    const h = headerLength(file);
    const cuts: [number, RegExp][] = [
      [0, /empty input/],
      [30, /truncated inside the header/],
      [h - 1, /truncated inside the header/],
      [h, /before the payload nonce/],
      [h + 15, /before the payload nonce/],
      [h + 16, /truncated/],
      [h + 16 + 15, /chunk 0 is incomplete/],
      [h + 16 + 1000, /chunk 0 failed authentication/],
      [h + 16 + SEALED, /ends after chunk 0, which is not the final chunk/],
      [h + 16 + 3 * SEALED, /ends after chunk 2, which is not the final chunk/],
      [file.length - 1, /chunk 3 failed authentication/],
    ];
    for (const [length, why] of cuts) {
      const { error } = await run(createDecryptStream([alice.identity]), file.subarray(0, length));
      expect(error, `cut at ${length}`).toBeInstanceOf(AgeError);
      expect(error?.message, `cut at ${length}`).toMatch(why);
    }
  });

  it('rejects data appended after the end', async () => {
    const full = await encrypt([alice.recipient], randomBytes(CHUNK));
    await expect(decrypt([alice.identity], Buffer.concat([full, Buffer.from([0])]))).rejects.toThrow(
      /trailing data after the final chunk/,
    );
    const short = await encrypt([alice.recipient], randomBytes(1000));
    await expect(decrypt([alice.identity], Buffer.concat([short, Buffer.from('x')]))).rejects.toThrow(AgeError);
    const empty = await encrypt([alice.recipient], Buffer.alloc(0));
    await expect(decrypt([alice.identity], Buffer.concat([empty, empty.subarray(-16)]))).rejects.toThrow(AgeError);
  });

  it('rejects malformed headers with a reason', async () => {
    const b64 = (b: Buffer) => b.toString('base64').replace(/=+$/, '');
    const mac = `--- ${'A'.repeat(43)}\n`;
    const v1 = 'age-encryption.org/v1\n';
    const tail = Buffer.alloc(100);
    const cases: [string, RegExp][] = [
      [`${v1}-> X25519 ${b64(Buffer.alloc(32))}\n${b64(randomBytes(32))}\n${mac}`, /all-zero shared secret/],
      [`${v1}-> X25519 ${b64(randomBytes(32))} extra\n${b64(randomBytes(32))}\n${mac}`, /malformed X25519 stanza/],
      [`${v1}-> X25519 ${b64(randomBytes(31))}\n${b64(randomBytes(32))}\n${mac}`, /share is not 32 bytes/],
      [`${v1}-> X25519 ${b64(randomBytes(32))}\n${b64(randomBytes(31))}\n${mac}`, /body is not 32 bytes/],
      [`${v1}-> X25519 ${b64(randomBytes(32)).slice(0, -1)}B\n${b64(randomBytes(32))}\n${mac}`, /non-canonical base64/],
      [`${v1}-> X25519 ${b64(randomBytes(32))}\n${b64(randomBytes(32))}=\n${mac}`, /invalid base64/],
      [`${v1}-> X25519  ${b64(randomBytes(32))}\n${b64(randomBytes(32))}\n${mac}`, /empty argument/],
      [`${v1}-> other\n${'A'.repeat(65)}\n${mac}`, /longer than 64 columns/],
      [`${v1}${mac}`, /no recipient stanza/],
      [`${v1}-> other\n\n--- short\n`, /base64|MAC/],
      [`${v1}-> other\n\n---${'A'.repeat(43)}\n`, /malformed age header line/],
      ['age-encryption.org/v2\n', /unsupported age format version/],
      ['-----BEGIN AGE ENCRYPTED FILE-----\n', /ASCII-armored/],
      ['GIF89a', /not an age file/],
      [`${v1}-> other\r\n\n${mac}`, /invalid byte in header/],
    ];
    for (const [text, why] of cases) {
      const { error } = await run(
        createDecryptStream([alice.identity]),
        Buffer.concat([Buffer.from(text, 'latin1'), tail]),
      );
      expect(error?.message, JSON.stringify(text)).toMatch(why);
    }
  });

  it('holds at most about one chunk of output however large the write', async () => {
    const plaintext = randomBytes(8 * 1024 * KiB);
    const enc = createEncryptStream([alice.recipient]);
    let accepted = false;
    enc.write(plaintext, () => (accepted = true));
    await new Promise((r) => setTimeout(r, 20));
    expect(accepted).toBe(false);
    expect(enc.readableLength).toBeLessThanOrEqual(SEALED + 200);

    const chunks: Buffer[] = [];
    enc.on('data', (c: Buffer) => chunks.push(c));
    await new Promise<void>((resolve, reject) => {
      enc.on('end', resolve).on('error', reject);
      enc.end();
    });
    const file = Buffer.concat(chunks);

    const dec = createDecryptStream([alice.identity]);
    dec.write(file);
    await new Promise((r) => setTimeout(r, 20));
    expect(dec.readableLength).toBeLessThanOrEqual(CHUNK);
    const out: Buffer[] = [];
    dec.on('data', (c: Buffer) => out.push(c));
    await new Promise<void>((resolve, reject) => {
      dec.on('end', resolve).on('error', reject);
      dec.end();
    });
    expect(Buffer.concat(out).equals(plaintext)).toBe(true);
  });
});
