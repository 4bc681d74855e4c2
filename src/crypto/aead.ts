/**
 * ChaCha20-Poly1305 on one STREAM chunk: dockd's native binding (src/crypto/aead.c, built by
 * `npm install` into build/Release/) where it built, node:crypto where it did not. The two
 * give the same bytes; the binding seals about twice as fast, into memory the caller owns,
 * and checks a stored chunk's tag without decrypting it.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export const TAG_SIZE = 16;

export interface ChunkAead {
  /** 'native' for the binding, 'node' for node:crypto. */
  readonly kind: 'native' | 'node';
  /** Seals `plaintext` into `out` (ciphertext, then the 16-byte tag); returns the bytes written. */
  seal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, out: Uint8Array): number;
  /**
   * Decrypts `sealed` (ciphertext, then tag) into `out` and returns whether it is authentic; out
   * holds no usable plaintext when it is not.
   */
  open(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, out: Uint8Array): boolean;
  /** Whether `sealed` (ciphertext, then tag) is authentic under `key` and `nonce`. */
  check(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array): boolean;
}

/**
 * The AEAD from the binding at `addonPath`, or node:crypto's when it is null or will not load.
 * It uses nothing but its arguments, because the workers that seal and re-read run its source
 * text as it is (age-seal-pool.ts, hash-pool.ts).
 */
export function loadChunkAead(load: (id: string) => unknown, addonPath: string | null): ChunkAead {
  if (addonPath) {
    try {
      const native = load(addonPath) as Pick<ChunkAead, 'seal' | 'open' | 'check'>;
      return { kind: 'native', seal: native.seal, open: native.open, check: native.check };
    } catch {
      // Built for another Node or damaged: node:crypto seals the same bytes, more slowly.
    }
  }
  const { createCipheriv, createDecipheriv } = load('node:crypto') as typeof import('node:crypto');
  const open = (key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, out: Uint8Array): boolean => {
    if (sealed.length < 16) throw new RangeError('open: a sealed chunk is at least its 16-byte tag');
    const d = createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
    d.setAuthTag(sealed.subarray(sealed.length - 16));
    const plaintext = d.update(sealed.subarray(0, sealed.length - 16));
    try {
      d.final();
    } catch {
      plaintext.fill(0);
      return false;
    }
    if (out.length < plaintext.length)
      throw new RangeError('open: out must hold the sealed chunk less its 16-byte tag');
    out.set(plaintext, 0);
    return true;
  };
  return {
    kind: 'node',
    seal(key, nonce, plaintext, out) {
      const c = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
      const body = c.update(plaintext);
      c.final();
      if (out.length < body.length + 16) throw new RangeError('seal: out must hold the plaintext and its 16-byte tag');
      out.set(body, 0);
      out.set(c.getAuthTag(), body.length);
      return body.length + 16;
    },
    open,
    // Without Poly1305 of its own, node:crypto checks a tag only by decrypting the chunk.
    check: (key, nonce, sealed) => open(key, nonce, sealed, new Uint8Array(Math.max(0, sealed.length - 16))),
  };
}

/** Where `npm install` builds the binding, from src/ (tests) or dist/src/ (the daemon); null if it did not. */
export const AEAD_ADDON: string | null = (() => {
  for (const rel of ['../../build/Release/dockd_aead.node', '../../../build/Release/dockd_aead.node']) {
    const file = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(file)) return file;
  }
  return null;
})();

export const chunkAead: ChunkAead = loadChunkAead(createRequire(import.meta.url), AEAD_ADDON);
