/**
 * Bech32 (BIP 173, not the BIP 350 "bech32m" variant) as age uses it for keys: no length limit
 * on the data part, and the checksum always computed over the lowercase string.
 */

const CHARSET = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';
const GENERATOR = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];
// bech32m differs only in this constant, so a bech32m string fails here as a bad checksum.
const BECH32_CONST = 1;
const CHECKSUM_WORDS = 6;

export class Bech32Error extends Error {
  override name = 'Bech32Error';
}

function polymod(values: Iterable<number>): number {
  let chk = 1;
  for (const v of values) {
    const top = chk >>> 25;
    chk = ((chk & 0x1ffffff) << 5) ^ v;
    for (let i = 0; i < 5; i++) {
      if ((top >>> i) & 1) chk ^= GENERATOR[i]!;
    }
  }
  return chk;
}

function hrpExpand(hrp: string): number[] {
  const codes = [...hrp].map((c) => c.charCodeAt(0));
  return [...codes.map((c) => c >>> 5), 0, ...codes.map((c) => c & 31)];
}

function toWords(bytes: Uint8Array): number[] {
  const words: number[] = [];
  let acc = 0;
  let bits = 0;
  for (const b of bytes) {
    acc = ((acc << 8) | b) & 0xfff;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      words.push((acc >>> bits) & 31);
    }
  }
  if (bits > 0) words.push((acc << (5 - bits)) & 31);
  return words;
}

function fromWords(words: number[]): Buffer {
  const out: number[] = [];
  let acc = 0;
  let bits = 0;
  for (const w of words) {
    acc = ((acc << 5) | w) & 0xfff;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((acc >>> bits) & 0xff);
    }
  }
  // Leftover padding must be short and zero, or two strings would decode to the same bytes.
  if (bits >= 5 || (acc & ((1 << bits) - 1)) !== 0) throw new Bech32Error('invalid padding in data part');
  return Buffer.from(out);
}

/** Encodes in lowercase; callers wanting the uppercase form (age identities) upper-case it. */
export function bech32Encode(hrp: string, data: Uint8Array): string {
  const lower = hrp.toLowerCase();
  if (lower.length === 0 || [...lower].some((c) => c.charCodeAt(0) < 33 || c.charCodeAt(0) > 126)) {
    throw new Bech32Error('invalid human-readable part');
  }
  const words = toWords(data);
  const mod = polymod([...hrpExpand(lower), ...words, ...new Array<number>(CHECKSUM_WORDS).fill(0)]) ^ BECH32_CONST;
  const checksum = Array.from({ length: CHECKSUM_WORDS }, (_, i) => (mod >>> (5 * (CHECKSUM_WORDS - 1 - i))) & 31);
  return `${lower}1${[...words, ...checksum].map((w) => CHARSET[w]).join('')}`;
}

/** Returns the human-readable part in the case it was written in, so callers can insist on one. */
export function bech32Decode(s: string): { hrp: string; data: Buffer } {
  for (const c of s) {
    const code = c.charCodeAt(0);
    if (code < 33 || code > 126) throw new Bech32Error('invalid character');
  }
  const lower = s.toLowerCase();
  if (lower !== s && s.toUpperCase() !== s) throw new Bech32Error('mixed case');
  const sep = lower.lastIndexOf('1');
  if (sep < 1) throw new Bech32Error('missing separator or empty human-readable part');
  if (lower.length - sep - 1 < CHECKSUM_WORDS) throw new Bech32Error('too short for a checksum');
  const words: number[] = [];
  for (const c of lower.slice(sep + 1)) {
    const w = CHARSET.indexOf(c);
    if (w === -1) throw new Bech32Error(`invalid data character ${JSON.stringify(c)}`);
    words.push(w);
  }
  if (polymod([...hrpExpand(lower.slice(0, sep)), ...words]) !== BECH32_CONST) {
    throw new Bech32Error('invalid checksum');
  }
  return { hrp: s.slice(0, sep), data: fromWords(words.slice(0, -CHECKSUM_WORDS)) };
}
