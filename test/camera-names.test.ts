import { describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { bytesFromName, nameFromBytes, nameFromUtf16 } from '../drivers/camera-names.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

/** A small seeded generator, so a failure names the seed that reproduces it. */
function random(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x1_0000_0000;
  };
}

/** Names biased towards the hard cases: UTF-8 prefixes, lone continuation bytes, U+F7xx. */
function randomName(next: () => number): Buffer {
  const pieces = [
    hex('e9'),
    hex('ff'),
    hex('c0af'),
    hex('eda080'),
    hex('ef9fa9'),
    hex('ef9e80'),
    hex('c3a9'),
    hex('f09f8ea5'),
    hex('e282'),
    hex('f4908080'),
    Buffer.from('a'),
    Buffer.from('.MP4'),
  ];
  const out: Buffer[] = [];
  const n = 1 + Math.floor(next() * 8);
  for (let i = 0; i < n; i++)
    out.push(next() < 0.5 ? pieces[Math.floor(next() * pieces.length)]! : Buffer.of(1 + Math.floor(next() * 255)));
  return Buffer.concat(out);
}

describe('camera names as bytes', () => {
  it('keeps a UTF-8 name exactly as it is', () => {
    for (const name of [
      'DCIM/100/REC0001.MP4',
      'caf\u00e9.mp4',
      'cafe\u0301.mp4',
      '\u{1F3A5} night.mp4',
      'line\nbreak',
      '\ufffd.mp4',
      '\uf700\uf77f.mp4',
    ]) {
      expect(nameFromBytes(Buffer.from(name, 'utf8'))).toBe(name);
      expect(bytesFromName(name)).toEqual(Buffer.from(name, 'utf8'));
    }
  });

  it('writes each byte that is not UTF-8 as U+F700 plus the byte', () => {
    expect(nameFromBytes(hex('636166 e9 2e6d7034'))).toBe('caf\uf7e9.mp4');
    expect(nameFromBytes(hex('ff'))).toBe('\uf7ff');
    expect(nameFromBytes(hex('78 c0 af'))).toBe('x\uf7c0\uf7af');
    expect(nameFromBytes(hex('ed a0 80'))).toBe('\uf7ed\uf7a0\uf780');
    expect(nameFromBytes(hex('e2 82 41'))).toBe('\uf7e2\uf782A');
    expect(nameFromBytes(hex('f4 90 80 80'))).toBe('\uf7f4\uf790\uf780\uf780');
  });

  it('keeps a UTF-8 name that imitates an escaped one apart from the name it imitates', () => {
    const latin1 = nameFromBytes(hex('636166 e9 2e6d7034'));
    const crafted = nameFromBytes(Buffer.from('caf\uf7e9.mp4', 'utf8'));
    expect(crafted).toBe('caf\uf7ef\uf79f\uf7a9.mp4');
    expect(crafted).not.toBe(latin1);
    expect(bytesFromName(crafted)).toEqual(Buffer.from('caf\uf7e9.mp4', 'utf8'));
    expect(bytesFromName(latin1)).toEqual(hex('636166 e9 2e6d7034'));
  });

  it('refuses strings no name encodes to, so each file has exactly one id', () => {
    expect(bytesFromName('caf\uf7e9.mp4')).toEqual(hex('636166 e9 2e6d7034'));
    expect(bytesFromName('\uf7c3\uf7a9')).toBeNull(); // the escape of é, which is UTF-8 and kept as itself
    expect(bytesFromName('\ud800.mp4')).toBeNull();
    expect(bytesFromName('x\udc00')).toBeNull();
  });

  it('gives the bytes back, never the same string for two names, and strings SQLite and JSON keep', () => {
    const seed = Date.now() % 100_000;
    const next = random(seed);
    const db = new Database(':memory:');
    db.exec('CREATE TABLE names (name TEXT UNIQUE)');
    const insert = db.prepare('INSERT OR IGNORE INTO names VALUES (?)');
    const byName = new Map<string, string>();
    for (let i = 0; i < 2000; i++) {
      const bytes = randomName(next);
      const name = nameFromBytes(bytes);
      expect(bytesFromName(name), `seed ${seed}, bytes ${bytes.toString('hex')}`).toEqual(bytes);
      // A lone surrogate would not survive a trip through UTF-8.
      expect(Buffer.from(name, 'utf8').toString('utf8'), `seed ${seed}`).toBe(name);
      const seen = byName.get(name);
      expect(
        seen === undefined || seen === bytes.toString('hex'),
        `seed ${seed}: ${seen} and ${bytes.toString('hex')} share ${JSON.stringify(name)}`,
      ).toBe(true);
      byName.set(name, bytes.toString('hex'));
      insert.run(name);
      expect(JSON.parse(JSON.stringify(name))).toBe(name);
    }
    const stored = db
      .prepare<[], { name: string }>('SELECT name FROM names')
      .all()
      .map((r) => r.name);
    expect(new Set(stored)).toEqual(new Set(byName.keys()));
    db.close();
  });

  it('keeps a UTF-16 name (PTP/MTP) as its text, and lone surrogates as escapes, one string per name', () => {
    const units = (s: string) => [...Array(s.length).keys()].map((i) => s.charCodeAt(i));
    expect(nameFromUtf16(units('REC01.MP4'))).toBe('REC01.MP4');
    expect(nameFromUtf16(units('café 📹.mp4'))).toBe('café 📹.mp4');
    expect(nameFromUtf16([0x41, 0xd800, 0x2e])).toBe('A\uf7ed\uf7a0\uf780.');
    expect(nameFromUtf16([0xdc00, 0xd800])).toBe('\uf7ed\uf7b0\uf780\uf7ed\uf7a0\uf780');
    // A name that holds escape characters itself cannot pass for one with a lone surrogate.
    expect(nameFromUtf16(units('A\uf7ed\uf7a0\uf780.'))).not.toBe(nameFromUtf16([0x41, 0xd800, 0x2e]));

    const seed = Date.now() % 100_000;
    const next = random(seed);
    const pick = [0x41, 0x2e, 0xe9, 0xd800, 0xdbff, 0xdc00, 0xdfff, 0xf7ed, 0xf780, 0xfffd, 0x20ac];
    const seen = new Map<string, string>();
    for (let i = 0; i < 3000; i++) {
      const u = Array.from({ length: 1 + Math.floor(next() * 6) }, () => pick[Math.floor(next() * pick.length)]!);
      const name = nameFromUtf16(u);
      expect(Buffer.from(name, 'utf8').toString('utf8'), `seed ${seed}`).toBe(name);
      expect(bytesFromName(name), `seed ${seed}`).not.toBeNull();
      const key = u.join(',');
      const other = seen.get(name);
      expect(other === undefined || other === key, `seed ${seed}: ${other} and ${key} share a name`).toBe(true);
      seen.set(name, key);
    }
  });
});
