/**
 * A camera's file names are bytes, not text: a FAT volume written with another code page, or any
 * byte sequence on a simulated dock, is not valid UTF-8. dockd keeps such a name as a string that
 * gives the exact bytes back (docs/recording-names.md is the reference for users and auditors):
 *
 * - every well-formed UTF-8 character stands for itself, so a UTF-8 name is kept unchanged;
 * - every byte that is not part of a well-formed UTF-8 character is written as the private-use
 *   character U+F700 + byte (byte 0xE9 → U+F7E9), one character per byte;
 * - a name that itself holds a character of that range (U+F780–U+F7FF) has that character's
 *   bytes escaped the same way, so a crafted UTF-8 name can never pass for an escaped one.
 *
 * Decoding maps U+F780–U+F7FF back to one byte each and every other character to its UTF-8, so
 * two different names never share a string. The strings hold no lone surrogates, which SQLite
 * and JSON would otherwise replace.
 */

const ESCAPE_BASE = 0xf700;
const ESCAPE_FIRST = ESCAPE_BASE + 0x80;
const ESCAPE_LAST = ESCAPE_BASE + 0xff;
const HAS_ESCAPE_CHAR = /[\uf780-\uf7ff]/;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Length of the well-formed UTF-8 character at `i` (Unicode table 3-7), or 0 when there is none. */
function charLength(b: Uint8Array, i: number): number {
  const b0 = b[i]!;
  if (b0 < 0x80) return 1;
  const cont = (k: number, lo = 0x80, hi = 0xbf) => i + k < b.length && b[i + k]! >= lo && b[i + k]! <= hi;
  if (b0 >= 0xc2 && b0 <= 0xdf) return cont(1) ? 2 : 0;
  if (b0 >= 0xe0 && b0 <= 0xef) {
    // E0 needs A0–BF (no overlongs), ED needs 80–9F (no surrogates).
    const [lo, hi] = b0 === 0xe0 ? [0xa0, 0xbf] : b0 === 0xed ? [0x80, 0x9f] : [0x80, 0xbf];
    return cont(1, lo, hi) && cont(2) ? 3 : 0;
  }
  if (b0 >= 0xf0 && b0 <= 0xf4) {
    // F0 needs 90–BF (no overlongs), F4 needs 80–8F (nothing past U+10FFFF).
    const [lo, hi] = b0 === 0xf0 ? [0x90, 0xbf] : b0 === 0xf4 ? [0x80, 0x8f] : [0x80, 0xbf];
    return cont(1, lo, hi) && cont(2) && cont(3) ? 4 : 0;
  }
  return 0;
}

function escapeBytes(b: Uint8Array, from: number, to: number): string {
  let out = '';
  for (let k = from; k < to; k++) out += String.fromCharCode(ESCAPE_BASE + b[k]!);
  return out;
}

/** The string dockd keeps for a camera name given as raw bytes. */
export function nameFromBytes(bytes: Uint8Array): string {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const plain = buf.toString('utf8');
  // Node's decoder turns every ill-formed byte into U+FFFD: without one, the bytes were UTF-8.
  if (!plain.includes('\ufffd') && !HAS_ESCAPE_CHAR.test(plain)) return plain;
  let out = '';
  let i = 0;
  while (i < buf.length) {
    const len = charLength(buf, i);
    if (len === 0) {
      out += escapeBytes(buf, i, i + 1);
      i += 1;
      continue;
    }
    const ch = buf.toString('utf8', i, i + len);
    const cp = ch.codePointAt(0)!;
    out += cp >= ESCAPE_FIRST && cp <= ESCAPE_LAST ? escapeBytes(buf, i, i + len) : ch;
    i += len;
  }
  return out;
}

/**
 * The string dockd keeps for a name a camera gives as UTF-16 code units (a PTP/MTP Filename).
 * Well-formed UTF-16 is kept as the text it is. A lone surrogate, which no UTF-8 string can hold,
 * is taken as the three bytes of its generalized UTF-8 form (U+D800 is ED A0 80) and so kept by
 * nameFromBytes as three escapes: two names that differ only in their lone surrogates stay two
 * names, where a decoder's U+FFFD would make them one.
 */
export function nameFromUtf16(units: ArrayLike<number>): string {
  const bytes: number[] = [];
  for (let i = 0; i < units.length; i++) {
    let cp = units[i]!;
    const next = units[i + 1];
    if (cp >= 0xd800 && cp <= 0xdbff && next !== undefined && next >= 0xdc00 && next <= 0xdfff) {
      cp = 0x10000 + ((cp - 0xd800) << 10) + (next - 0xdc00);
      i++;
    }
    if (cp < 0x80) bytes.push(cp);
    else if (cp < 0x800) bytes.push(0xc0 | (cp >> 6), 0x80 | (cp & 0x3f));
    else if (cp < 0x10000) bytes.push(0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f));
    else bytes.push(0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 0x3f), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f));
  }
  return nameFromBytes(Uint8Array.from(bytes));
}

/**
 * The raw bytes a kept name stands for, or null for a string `nameFromBytes` never produces
 * (a lone surrogate, or an escape of bytes that are well-formed UTF-8): each name has one string.
 */
export function bytesFromName(name: string): Buffer | null {
  if (typeof name !== 'string' || LONE_SURROGATE.test(name)) return null;
  if (!HAS_ESCAPE_CHAR.test(name)) return Buffer.from(name, 'utf8');
  const parts: Buffer[] = [];
  for (const ch of name) {
    const cp = ch.codePointAt(0)!;
    parts.push(cp >= ESCAPE_FIRST && cp <= ESCAPE_LAST ? Buffer.of(cp - ESCAPE_BASE) : Buffer.from(ch, 'utf8'));
  }
  const bytes = Buffer.concat(parts);
  return nameFromBytes(bytes) === name ? bytes : null;
}
