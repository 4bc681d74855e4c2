/**
 * Files written here must open with other age implementations and theirs with ours: the
 * `age-encryption` npm package (by age's author) and the `age` command-line tool.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, createCipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable, Writable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as npm from 'age-encryption';
import {
  createDecryptStream,
  createEncryptStream,
  generateIdentity,
  identityToRecipient,
  parseIdentityFile,
} from '../src/crypto/age.js';

const CHUNK = 64 * 1024;
const SIZES = [0, 1, CHUNK, CHUNK + 1, 3 * 1024 * 1024 + 7];

async function run(stream: Transform, input: Buffer): Promise<Buffer> {
  const out: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      out.push(chunk);
      cb();
    },
  });
  await pipeline(Readable.from([input]), stream, sink);
  return Buffer.concat(out);
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('interop with the age-encryption npm package', () => {
  it('agrees on keys', async () => {
    const ours = generateIdentity();
    expect(await npm.identityToRecipient(ours.identity)).toBe(ours.recipient);
    const theirs = await npm.generateX25519Identity();
    expect(identityToRecipient(theirs)).toBe(await npm.identityToRecipient(theirs));
  });

  it.each(SIZES)('decrypts with the package what we encrypt (%i bytes)', async (n) => {
    const other = await npm.generateX25519Identity();
    const me = generateIdentity();
    const plaintext = randomBytes(n);
    const file = await run(createEncryptStream([me.recipient, await npm.identityToRecipient(other)]), plaintext);
    const d = new npm.Decrypter();
    d.addIdentity(other);
    expect(sha(await d.decrypt(file))).toBe(sha(plaintext));
  });

  it.each(SIZES)('decrypts what the package encrypts (%i bytes)', async (n) => {
    const me = generateIdentity();
    const plaintext = randomBytes(n);
    const e = new npm.Encrypter();
    e.addRecipient(me.recipient);
    const file = Buffer.from(await e.encrypt(plaintext));
    expect(sha(await run(createDecryptStream([me.identity]), file))).toBe(sha(plaintext));
  });

  it('skips stanzas of unknown kinds, including bodies that fill whole lines', async () => {
    const me = generateIdentity();
    const plaintext = randomBytes(1000);
    const e = new npm.Encrypter();
    e.addRecipient({ wrapFileKey: () => [new npm.Stanza(['example.com/other', 'x'], randomBytes(48))] });
    e.addRecipient({ wrapFileKey: () => [new npm.Stanza(['example.com/empty'], new Uint8Array(0))] });
    e.addRecipient(me.recipient);
    const file = Buffer.from(await e.encrypt(plaintext));
    expect(file.toString('latin1')).toMatch(/-> example\.com\/other x\n[A-Za-z0-9+/]{64}\n\n/);
    expect((await run(createDecryptStream([me.identity]), file)).equals(plaintext)).toBe(true);
  });

  it('rejects a payload whose final chunk is empty after a full one', async () => {
    // A recipient of our own lets the test learn the file key and write the payload itself.
    const me = generateIdentity();
    let fileKey = Buffer.alloc(0);
    const e = new npm.Encrypter();
    e.addRecipient(me.recipient);
    e.addRecipient({
      wrapFileKey: (k: Uint8Array) => {
        fileKey = Buffer.from(k);
        return [new npm.Stanza(['example.com/spy'], new Uint8Array(1))];
      },
    });
    const file = Buffer.from(await e.encrypt(new Uint8Array(0)));
    const header = file.subarray(0, file.length - 16 - 16);
    const nonce = randomBytes(16);
    const key = Buffer.from(hkdfSync('sha256', fileKey, nonce, 'payload', 32));
    const seal = (counter: number, last: boolean, pt: Buffer) => {
      const iv = Buffer.alloc(12);
      iv[10] = counter;
      iv[11] = last ? 1 : 0;
      const c = createCipheriv('chacha20-poly1305', key, iv, { authTagLength: 16 });
      return Buffer.concat([c.update(pt), c.final(), c.getAuthTag()]);
    };
    const full = randomBytes(CHUNK);
    const good = Buffer.concat([header, nonce, seal(0, false, full), seal(1, true, Buffer.from('end'))]);
    expect(
      (await run(createDecryptStream([me.identity]), good)).equals(Buffer.concat([full, Buffer.from('end')])),
    ).toBe(true);
    const bad = Buffer.concat([header, nonce, seal(0, false, full), seal(1, true, Buffer.alloc(0))]);
    await expect(run(createDecryptStream([me.identity]), bad)).rejects.toThrow(/empty final chunk/);
  });

  it('fails clearly on files only a passphrase opens', async () => {
    const e = new npm.Encrypter();
    e.setScryptWorkFactor(2);
    e.setPassphrase('correct horse battery staple');
    const file = Buffer.from(await e.encrypt('x'));
    await expect(run(createDecryptStream([generateIdentity().identity]), file)).rejects.toThrow(/no identity matches/);
  });
});

describe('interop with the age command-line tool', () => {
  let dir = '';
  let missing: string | null = null;

  beforeAll(() => {
    const probe = spawnSync('age', ['--version'], { encoding: 'utf8' });
    if (probe.error || probe.status !== 0) {
      missing = 'the age command-line tool is needed for these tests and is not on PATH: apt-get install age';
    }
    dir = mkdtempSync(path.join(os.tmpdir(), 'dockd-age-'));
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  // Each test fails on its own when the tool is missing; a throwing beforeAll would only mark
  // them skipped.
  function requireAgeTool(): void {
    if (missing) throw new Error(missing);
  }

  function keyFile(identity: string): string {
    const file = path.join(dir, `key-${randomBytes(4).toString('hex')}.txt`);
    writeFileSync(file, `# created by a test\n${identity}\n`, { mode: 0o600 });
    return file;
  }

  it('agrees on keys with age-keygen', () => {
    requireAgeTool();
    const keygen = execFileSync('age-keygen', [], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const [identity] = parseIdentityFile(keygen);
    expect(keygen).toContain(`# public key: ${identityToRecipient(identity!)}`);
    const ours = generateIdentity();
    expect(execFileSync('age-keygen', ['-y', keyFile(ours.identity)], { encoding: 'utf8' }).trim()).toBe(
      ours.recipient,
    );
  });

  it.each(SIZES)('age -d opens what we encrypt (%i bytes)', async (n) => {
    requireAgeTool();
    const a = generateIdentity();
    const b = generateIdentity();
    const plaintext = randomBytes(n);
    const encrypted = path.join(dir, `ours-${n}.age`);
    writeFileSync(encrypted, await run(createEncryptStream([a.recipient, b.recipient]), plaintext));
    for (const id of [a, b]) {
      // Read from stdout: age creates an -o file only on its first write, so not for 0 bytes.
      const out = execFileSync('age', ['-d', '-i', keyFile(id.identity), encrypted], { maxBuffer: 64 * 1024 * 1024 });
      expect(sha(out)).toBe(sha(plaintext));
    }
  });

  it.each(SIZES)('we open what age -r encrypts (%i bytes)', async (n) => {
    requireAgeTool();
    const a = generateIdentity();
    const b = generateIdentity();
    const plaintext = randomBytes(n);
    const input = path.join(dir, `theirs-${n}.bin`);
    const encrypted = path.join(dir, `theirs-${n}.age`);
    writeFileSync(input, plaintext);
    execFileSync('age', ['-r', a.recipient, '-r', b.recipient, '-o', encrypted, input]);
    const file = readFileSync(encrypted);
    expect(sha(await run(createDecryptStream([b.identity]), file))).toBe(sha(plaintext));
  });

  it('age -d refuses what we encrypted once a payload byte changes', async () => {
    requireAgeTool();
    const me = generateIdentity();
    const file = await run(createEncryptStream([me.recipient]), randomBytes(1000));
    file[file.length - 20] = file[file.length - 20]! ^ 1;
    const encrypted = path.join(dir, 'tampered.age');
    writeFileSync(encrypted, file);
    const r = spawnSync('age', ['-d', '-i', keyFile(me.identity), encrypted], { encoding: 'utf8' });
    expect(r.status).not.toBe(0);
  });
});
