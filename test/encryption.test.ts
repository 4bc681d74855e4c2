/**
 * Write-only docks: the archive holds only age ciphertext for the custodians' keys; standard
 * tools decrypt it; the dock itself can verify but never decrypt.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { cpSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Decrypter } from 'age-encryption';
import { allVerified, cli, TestDock, type CustodyJson, type RecordingJson } from './support/harness.js';

let dock: TestDock;
let keyFile: string;
let recipient: string;
let recs: Array<RecordingJson & { encrypted: boolean; storedSha256: string }>;
// A pattern no ciphertext will contain: if it shows up on disk, plaintext leaked.
const MARKER = Buffer.from('PLAINTEXT-FOOTAGE-MARKER-0123456789');
const footage = (n: number) =>
  Buffer.concat(Array.from({ length: Math.ceil(n / MARKER.length) }, () => MARKER)).subarray(0, n);

function allFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.join(e.parentPath, e.name));
}

beforeAll(async () => {
  dock = new TestDock();
  keyFile = path.join(dock.root, 'custodian.key');
  const kg = await cli(['--data-dir', dock.dataDir, 'keygen', '--out', keyFile]);
  expect(kg.code, kg.stderr).toBe(0);
  recipient = kg.stdout.trim();
  expect(recipient).toMatch(/^age1[0-9a-z]{58}$/);
  dock.writeConfig({ encryption: { recipients: [recipient] }, ingest: { verifySource: true } });
  dock.dock('s1', {
    serial: 'E-1',
    files: [
      { rel: 'DCIM/A.MP4', data: footage(3_000_000) },
      { rel: 'DCIM/B.MP4', data: footage(70_001) },
      { rel: 'C.MP4', data: Buffer.alloc(0) },
    ],
  });
  const d = dock.start();
  recs = (await allVerified(dock, 3)) as typeof recs;
  d.kill('SIGTERM');
  await d.exited;
});
afterAll(async () => {
  await dock?.cleanup();
});

describe('encryption at rest', () => {
  it('stores only ciphertext, records both hashes, and plaintext never touches the disk', () => {
    for (const r of recs) {
      expect(r.encrypted).toBe(true);
      expect(r.archivePath!.endsWith('.age')).toBe(true);
      expect(r.sha256).toBe(dock.sources.get(`E-1\n${r.sourcePath}`)!.sha256);
      expect(r.storedSha256).not.toBe(r.sha256);
      expect(readFileSync(r.archivePath!).subarray(0, 22).toString()).toBe('age-encryption.org/v1\n');
    }
    for (const f of allFiles(dock.dataDir)) expect(readFileSync(f).includes(MARKER), f).toBe(false);
  });

  it('decrypts with Debian age and the age-encryption package to the original bytes', async () => {
    const identity = readFileSync(keyFile, 'utf8')
      .split('\n')
      .find((l) => l.startsWith('AGE-SECRET-KEY-'))!;
    for (const r of recs) {
      const original = dock.sources.get(`E-1\n${r.sourcePath}`)!.data;
      const viaAge = execFileSync('age', ['-d', '-i', keyFile, r.archivePath!], { maxBuffer: 64 * 1024 * 1024 });
      expect(viaAge.equals(original), r.sourcePath).toBe(true);
      const d = new Decrypter();
      d.addIdentity(identity);
      const viaNpm = Buffer.from(await d.decrypt(new Uint8Array(readFileSync(r.archivePath!))));
      expect(viaNpm.equals(original)).toBe(true);
    }
  });

  it('holds no secret key, and refuses to start when one is put in its data dir', async () => {
    for (const f of allFiles(dock.dataDir))
      expect(readFileSync(f).includes(Buffer.from('AGE-SECRET-KEY-')), f).toBe(false);
    const stray = path.join(dock.dataDir, 'custodian.key');
    cpSync(keyFile, stray);
    try {
      const r = await dock.cli(['start']);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/secret key/);
    } finally {
      execFileSync('rm', ['-f', stray]);
    }
    const inside = await dock.cli(['keygen', '--out', path.join(dock.dataDir, 'k')]);
    expect(inside.code).toBe(2);
  });

  it('verifies ciphertext without a key, the plaintext with one (recorded in custody), and catches a changed byte', async () => {
    expect((await dock.cli(['verify'])).code).toBe(0);
    const withKey = await dock.cli(['verify', '--identity', keyFile, '--json']);
    expect(withKey.code, withKey.stdout).toBe(0);
    const ev = await dock.json<CustodyJson[]>(['custody', '--recording', recs[0]!.id]);
    expect(ev.find((e) => e.type === 'recording.decrypted')?.details).toMatchObject({ purpose: 'verify', ok: true });

    const victim = recs.find((r) => r.bytes > 1000)!;
    const b = readFileSync(victim.archivePath!);
    const saved = Buffer.from(b);
    b[b.length - 100]! ^= 1;
    writeFileSync(victim.archivePath!, b);
    try {
      const v = await dock.json<{ ok: boolean; files: { mismatched: string[] } }>(['verify']);
      expect(v.ok).toBe(false);
      expect(v.files.mismatched).toEqual([victim.id]);
      expect(() => execFileSync('age', ['-d', '-i', keyFile, victim.archivePath!], { stdio: 'pipe' })).toThrow();
    } finally {
      writeFileSync(victim.archivePath!, saved);
    }
  });

  it('exports decrypted files with an identity, or .age files with instructions without one; both bundles verify', async () => {
    const plain = path.join(dock.root, 'bundle-plain');
    const r1 = await dock.cli([
      'export',
      '--camera',
      'E-1',
      '--out',
      plain,
      '--reason',
      'court',
      '--identity',
      keyFile,
    ]);
    expect(r1.code, r1.stderr).toBe(0);
    execFileSync('sha256sum', ['-c', 'SHA256SUMS'], { cwd: plain });
    for (const f of readdirSync(path.join(plain, 'files'))) expect(f.endsWith('.age')).toBe(false);
    expect((await dock.cli(['verify-export', plain])).code).toBe(0);

    const sealed = path.join(dock.root, 'bundle-sealed');
    const r2 = await dock.cli(['export', '--camera', 'E-1', '--out', sealed, '--reason', 'transfer']);
    expect(r2.code, r2.stderr).toBe(0);
    execFileSync('sha256sum', ['-c', 'SHA256SUMS'], { cwd: sealed });
    expect(readdirSync(path.join(sealed, 'files')).every((f) => f.endsWith('.age'))).toBe(true);
    expect(readFileSync(path.join(sealed, 'DECRYPT.txt'), 'utf8')).toMatch(/age -d -i/);
    expect((await dock.cli(['verify-export', sealed])).code).toBe(0);
    const ev = await dock.json<CustodyJson[]>(['custody', '--recording', recs[0]!.id]);
    expect(ev.filter((e) => e.type === 'recording.decrypted').map((e) => e.details.purpose)).toEqual([
      'verify',
      'export',
    ]);
  });
});
