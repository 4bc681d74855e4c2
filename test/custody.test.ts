import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, readFileSync, readdirSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { allVerified, TestDock, type CustodyJson, type RecordingJson, type VerifyJson } from './support/harness.js';

let dock: TestDock;
let recs: RecordingJson[];
let checkpointLine: { seq: number; hash: string };

/** A working copy of the offloaded data dir, so each tamper test starts from a clean one. */
function copyOfData(): { dir: string; cli: (args: string[]) => ReturnType<TestDock['cli']> } {
  const dir = path.join(dock.root, `data-copy-${Math.random().toString(36).slice(2)}`);
  cpSync(dock.dataDir, dir, { recursive: true });
  const db = new Database(path.join(dir, 'dockd.db'));
  // Archive paths are absolute: point the copy's rows at the copy's files.
  db.prepare('UPDATE recordings SET archive_path = replace(archive_path, ?, ?)').run(dock.dataDir, dir);
  db.close();
  return { dir, cli: (args) => dock.cli(['--data-dir', dir, ...args]) };
}

beforeAll(async () => {
  dock = new TestDock({ custody: { checkpointEvery: 5 } });
  const past = new Date(Date.now() - 3600_000).toISOString();
  dock.dock('s1', {
    serial: 'C-1',
    files: [
      { rel: 'DCIM/A.MP4', size: 300_000 },
      { rel: 'DCIM/B.MP4', size: 200_000 },
      { rel: 'DCIM/C.MP4', size: 100_000 },
    ],
  });
  expect((await dock.cli(['assign', 'C-1', 'officer-17', '--from', past])).code).toBe(0);
  const d = dock.start();
  recs = await allVerified(dock, 3);
  // The running daemon signs the head every 5 events, on its next heartbeat: wait for that
  // one, so that the stop's own checkpoint is the second.
  await d.waitForEvent('custody.checkpoint');
  d.kill('SIGTERM');
  await d.exited;
  const cps = d.events('custody.checkpoint');
  expect(cps.length).toBeGreaterThanOrEqual(2);
  checkpointLine = { seq: cps.at(-1)!.seq as number, hash: cps.at(-1)!.hash as string };
});
afterAll(async () => {
  await dock?.cleanup();
});

describe('chain of custody', () => {
  it('verifies the chain, the signed checkpoints and every archived file', async () => {
    const r = await dock.cli(['verify', '--json']);
    expect(r.code).toBe(0);
    const v = JSON.parse(r.stdout) as VerifyJson;
    expect(v).toMatchObject({
      ok: true,
      chain: { ok: true, firstBadSeq: null },
      files: { checked: 3, ok: 3, missing: [], mismatched: [] },
    });
    expect(v.checkpoints.checked).toBeGreaterThanOrEqual(2);
    expect(v.checkpoints.bad).toEqual([]);
    const key = JSON.parse((await dock.cli(['key', '--json'])).stdout) as { publicKey: string; keyId: string };
    expect(Buffer.from(key.publicKey, 'base64')).toHaveLength(32);
  });

  it('checks the chain against a head taken from the logs', async () => {
    const ok = await dock.cli(['verify', '--quick', '--head', `${checkpointLine.seq}:${checkpointLine.hash}`]);
    expect(ok.code).toBe(0);
    const bad = await dock.cli(['verify', '--quick', '--head', `${checkpointLine.seq}:${'0'.repeat(64)}`]);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/MISMATCH/);
  });

  it('attributes recordings to the officer holding the camera and puts it in custody', async () => {
    expect(recs.every((r) => (r as RecordingJson & { officer: string }).officer === 'officer-17')).toBe(true);
    const ev = await dock.json<CustodyJson[]>(['custody', '--recording', recs[0]!.id]);
    expect(ev.find((e) => e.type === 'offload.verified')!.details.officer).toBe('officer-17');
  });

  it('refuses UPDATE and DELETE on the custody table', () => {
    const db = new Database(path.join(dock.dataDir, 'dockd.db'));
    const tables = db
      .prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE '%custody%'")
      .all();
    expect(tables.map((t) => t.name)).toEqual(['custody_events']);
    expect(() => db.prepare("UPDATE custody_events SET actor = 'mallory'").run()).toThrow(/append-only/);
    expect(() => db.prepare('DELETE FROM custody_events WHERE seq = 1').run()).toThrow(/append-only/);
    db.close();
  });

  it.each([
    [
      'an edited row after the triggers were dropped',
      (dir: string) => {
        const db = new Database(path.join(dir, 'dockd.db'));
        db.exec('DROP TRIGGER custody_events_no_update');
        db.prepare('UPDATE custody_events SET details = \'{"slot":"elsewhere"}\' WHERE seq = 3').run();
        db.close();
      },
      (v: VerifyJson) => expect(v.chain).toMatchObject({ ok: false, firstBadSeq: 3 }),
    ],
    [
      'a changed archived file',
      (dir: string) => {
        const f = recs[0]!.archivePath!.replace(dock.dataDir, dir);
        const b = readFileSync(f);
        b[1000]! ^= 1;
        writeFileSync(f, b);
      },
      (v: VerifyJson) => expect(v.files.mismatched).toEqual([recs[0]!.id]),
    ],
    [
      'a missing archived file',
      (dir: string) => rmSync(recs[1]!.archivePath!.replace(dock.dataDir, dir)),
      (v: VerifyJson) => expect(v.files.missing).toEqual([recs[1]!.id]),
    ],
    [
      'a forged checkpoint',
      (dir: string) => {
        const db = new Database(path.join(dir, 'dockd.db'));
        const head = db
          .prepare<[], { seq: number; hash: string }>('SELECT seq, hash FROM custody_events ORDER BY seq DESC LIMIT 1')
          .get()!;
        const cp = db
          .prepare<[], { key_id: string; signature: string }>('SELECT key_id, signature FROM chain_checkpoints LIMIT 1')
          .get()!;
        db.prepare('DELETE FROM chain_checkpoints WHERE seq = ?').run(head.seq);
        db.prepare('INSERT INTO chain_checkpoints (seq, hash, at, key_id, signature) VALUES (?, ?, ?, ?, ?)').run(
          head.seq,
          head.hash,
          new Date().toISOString(),
          cp.key_id,
          cp.signature,
        );
        db.close();
      },
      (v: VerifyJson) => expect(v.checkpoints.bad[0]!.reason).toMatch(/signature/),
    ],
  ])('catches %s with exit 1', async (_what, tamper, expectFn) => {
    const copy = copyOfData();
    expect((await copy.cli(['verify', '--json'])).code).toBe(0);
    tamper(copy.dir);
    const r = await copy.cli(['verify', '--json']);
    expect(r.code).toBe(1);
    const v = JSON.parse(r.stdout) as VerifyJson;
    expect(v.ok).toBe(false);
    expectFn(v);
  });

  it("catches an archived file swapped together with its row's SHA-256, naming the recording", async () => {
    const copy = copyOfData();
    const target = recs[1]!;
    const f = target.archivePath!.replace(dock.dataDir, copy.dir);
    const forged = readFileSync(f);
    forged[500]! ^= 1;
    writeFileSync(f, forged);
    const forgedSha = createHash('sha256').update(forged).digest('hex');
    const db = new Database(path.join(copy.dir, 'dockd.db'));
    db.prepare('UPDATE recordings SET sha256 = ?, stored_sha256 = ? WHERE id = ?').run(forgedSha, forgedSha, target.id);
    db.close();
    expect((await copy.cli(['recordings', '--json'])).stdout).toContain(forgedSha);

    const r = await copy.cli(['verify', '--json']);
    expect(r.code).toBe(1);
    const v = JSON.parse(r.stdout) as VerifyJson & { files: { rowMismatched: string[] } };
    expect(v.files).toMatchObject({ mismatched: [target.id], rowMismatched: [target.id], missing: [] });
    const human = await copy.cli(['verify']);
    expect(human.code).toBe(1);
    expect(human.stdout).toContain(
      `MISMATCH      ${target.id}  the archived file disagrees with custody: the archived file's SHA-256 is ${forgedSha}, custody says ${target.sha256}`,
    );
    expect(human.stdout).toContain(
      `ROW MISMATCH  ${target.id}  its recordings row disagrees with custody: recordings.sha256 is ${forgedSha}, custody says ${target.sha256}`,
    );
    // Nor does it leave in a bundle: export holds the row to custody as verify does.
    const exp = await copy.cli([
      'export',
      '--recording',
      target.id,
      '--out',
      path.join(copy.dir, 'bundle'),
      '--reason',
      'test',
    ]);
    expect(exp.code).toBe(1);
    expect(exp.stderr).toContain(`the recordings row of ${target.id} disagrees with custody`);
  });

  it('puts a changed archived file on its custody record once, and says who noticed', async () => {
    const copy = copyOfData();
    const f = recs[2]!.archivePath!.replace(dock.dataDir, copy.dir);
    const b = readFileSync(f);
    b[10]! ^= 1;
    writeFileSync(f, b);
    for (let i = 0; i < 2; i++) expect((await copy.cli(['verify'])).code).toBe(1);
    const ev = JSON.parse((await copy.cli(['custody', '--recording', recs[2]!.id, '--json'])).stdout) as CustodyJson[];
    const found = ev.filter((e) => e.type === 'archive.mismatch');
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({ sha256: recs[2]!.sha256, details: { file: f, noticedBy: 'verify' } });
    expect(found[0]!.details.actual).toMatch(/^[0-9a-f]{64}$/);
    expect(found[0]!.actor).toMatch(/^cli:/);
    expect((JSON.parse((await copy.cli(['verify', '--json'])).stdout) as VerifyJson).chain.ok).toBe(true);
  });
});

describe('export for court', () => {
  let out: string;
  beforeAll(async () => {
    out = path.join(dock.root, 'bundle');
    const r = await dock.cli([
      'export',
      '--recording',
      recs[0]!.id,
      '--recording',
      recs[2]!.id,
      '--out',
      out,
      '--reason',
      'case 2026-4711',
    ]);
    expect(r.code, r.stderr).toBe(0);
  });

  it('writes a bundle that sha256sum -c and verify-export accept, and records the export in custody', async () => {
    expect(execFileSync('sha256sum', ['-c', 'SHA256SUMS'], { cwd: out }).toString()).toMatch(/: OK/);
    const key = JSON.parse((await dock.cli(['key', '--json'])).stdout).publicKey as string;
    const v = await dock.cli(['verify-export', out, '--key', key, '--json']);
    expect(v.code, v.stdout + v.stderr).toBe(0);
    expect(JSON.parse(v.stdout)).toMatchObject({ ok: true, recordings: 2 });
    const files = readdirSync(path.join(out, 'files'));
    expect(files).toHaveLength(2);
    expect(
      readFileSync(
        path.join(
          out,
          'files',
          files.find((f) => f.startsWith(recs[0]!.id))!,
        ),
      ).equals(dock.sources.get(`C-1\n${recs[0]!.sourcePath}`)!.data),
    ).toBe(true);
    expect(readFileSync(path.join(out, 'custody-report.txt'), 'utf8')).toMatch(/case 2026-4711/);
    const ev = await dock.json<CustodyJson[]>(['custody', '--recording', recs[0]!.id]);
    const exp = ev.find((e) => e.type === 'export.created')!;
    expect(exp.actor).toMatch(/^cli:/);
    expect(exp.details.reason).toBe('case 2026-4711');
    const other = await dock.cli(['verify-export', out, '--key', Buffer.alloc(32, 7).toString('base64')]);
    expect(other.code).toBe(1);
  });

  it.each([
    'files',
    'manifest.json',
    'custody-report.txt',
    'custody-chain.jsonl',
    'SHA256SUMS',
    'manifest.json.sig',
    'dock-signing.pub.pem',
  ])('fails verify-export after one byte of %s changes', async (target) => {
    const copy = path.join(dock.root, `bundle-${target.replace(/\W/g, '')}`);
    cpSync(out, copy, { recursive: true });
    const file =
      target === 'files'
        ? path.join(copy, 'files', readdirSync(path.join(copy, 'files'))[0]!)
        : path.join(copy, target);
    const b = readFileSync(file);
    const i = Math.floor(b.length / 2);
    b[i] = b[i] === 0x30 ? 0x31 : 0x30;
    writeFileSync(file, b);
    const v = await dock.cli(['verify-export', copy]);
    expect(v.code).toBe(1);
    expect(v.stdout).toMatch(/PROBLEM/);
  });

  describe('checked with standard tools only, as the report and docs say', () => {
    const checks = [
      'sha256sum -c SHA256SUMS',
      'base64 -d manifest.json.sig > manifest.json.sig.bin',
      'openssl pkeyutl -verify -pubin -inkey dock-signing.pub.pem -rawin -in manifest.json -sigfile manifest.json.sig.bin',
      'grep -F "$(sha256sum SHA256SUMS | cut -c1-64)" manifest.json',
    ];
    const keyOfPem = 'openssl pkey -pubin -in dock-signing.pub.pem -outform DER | tail -c 32 | base64';
    const sh = (cmd: string, cwd: string) => spawnSync('sh', ['-c', cmd], { cwd, encoding: 'utf8' });
    /** Exit status of each check, run in order in a copy of the bundle changed by `tamper`. */
    function run(name: string, tamper: (dir: string) => void = () => {}): number[] {
      const copy = path.join(dock.root, `bundle-tools-${name}`);
      cpSync(out, copy, { recursive: true });
      tamper(copy);
      return checks.map((c) => sh(c, copy).status!);
    }
    const flipByte = (file: string) => {
      const b = readFileSync(file);
      b[Math.floor(b.length / 2)]! ^= 1;
      writeFileSync(file, b);
    };
    const recordingFile = (dir: string) => path.join(dir, 'files', readdirSync(path.join(dir, 'files'))[0]!);

    it('shows the commands in custody-report.txt and docs/evidence-bundles.md', () => {
      const report = readFileSync(path.join(out, 'custody-report.txt'), 'utf8');
      const docs = readFileSync(path.join(import.meta.dirname, '..', 'docs', 'evidence-bundles.md'), 'utf8');
      for (const c of [...checks, keyOfPem]) {
        expect(report).toContain(c);
        expect(docs).toContain(c);
      }
    });

    it('passes on a fresh bundle, whose PEM is the key dockd key prints, and verify-export still passes afterwards', async () => {
      const copy = path.join(dock.root, 'bundle-tools-fresh');
      cpSync(out, copy, { recursive: true });
      const results = checks.map((c) => sh(c, copy));
      expect(
        results.map((r) => r.status),
        results.map((r) => r.stderr).join(''),
      ).toEqual([0, 0, 0, 0]);
      expect(results[0]!.stdout).toMatch(/dock-signing\.pub\.pem: OK/);
      expect(results[2]!.stdout).toMatch(/Signature Verified Successfully/);
      const key = JSON.parse((await dock.cli(['key', '--json'])).stdout).publicKey as string;
      expect(sh(keyOfPem, copy).stdout.trim()).toBe(key);
      const v = await dock.cli(['verify-export', copy, '--key', key]);
      expect(v.code, v.stdout).toBe(0);
    });

    it('fails sha256sum -c after one byte of a recording changes', () => {
      expect(run('file', (d) => flipByte(recordingFile(d)))[0]).not.toBe(0);
    });

    it('fails the openssl check after one byte of manifest.json or its signature changes', () => {
      expect(run('manifest', (d) => flipByte(path.join(d, 'manifest.json')))[2]).not.toBe(0);
      expect(
        run('sig', (d) => {
          const sig = Buffer.from(readFileSync(path.join(d, 'manifest.json.sig'), 'utf8'), 'base64');
          sig[10]! ^= 1;
          writeFileSync(path.join(d, 'manifest.json.sig'), sig.toString('base64') + '\n');
        })[2],
      ).not.toBe(0);
    });

    it('fails the manifest tie when a recording is replaced together with its SHA256SUMS line', () => {
      const status = run('resummed', (d) => {
        const f = recordingFile(d);
        flipByte(f);
        const rel = path.relative(d, f);
        const sums = readFileSync(path.join(d, 'SHA256SUMS'), 'utf8').replace(
          /^[0-9a-f]{64}(?= {2}(.+)$)/gm,
          (h, name: string) => (name === rel ? createHash('sha256').update(readFileSync(f)).digest('hex') : h),
        );
        writeFileSync(path.join(d, 'SHA256SUMS'), sums);
      });
      expect(status).toEqual([0, 0, 0, 1]);
    });
  });

  it('fails verify-export when a file is added', async () => {
    const copy = path.join(dock.root, 'bundle-extra');
    cpSync(out, copy, { recursive: true });
    appendFileSync(path.join(copy, 'files', 'planted.mp4'), 'x');
    expect((await dock.cli(['verify-export', copy])).code).toBe(1);
  });
});

describe('retention and holds', () => {
  it('deletes exactly the expired unheld recordings, proves each deletion, and keeps the history', async () => {
    const held = recs[1]!;
    expect((await dock.cli(['hold', held.id, '--reason', 'complaint 88'])).code).toBe(0);
    dock.writeConfig({ retention: { days: 0.00001 } });
    await new Promise((r) => setTimeout(r, 1200));
    const dry = await dock.json<Array<{ id: string; reason: string }>>(['retention', '--dry-run']);
    expect(dry.map((d) => d.id).sort()).toEqual([recs[0]!.id, recs[2]!.id].sort());
    expect(dry[0]!.reason).toMatch(/retention is 0.00001 days, no hold/);
    expect(existsSync(recs[0]!.archivePath!)).toBe(true);

    const done = await dock.json<Array<{ id: string }>>(['retention']);
    expect(done.map((d) => d.id).sort()).toEqual([recs[0]!.id, recs[2]!.id].sort());
    expect(existsSync(recs[0]!.archivePath!)).toBe(false);
    expect(existsSync(recs[2]!.archivePath!)).toBe(false);
    expect(existsSync(held.archivePath!)).toBe(true);

    const after = await dock.recordings();
    expect(after.find((r) => r.id === held.id)!.status).toBe('verified');
    expect(after.find((r) => r.id === recs[0]!.id)!.status).toBe('deleted');
    const ev = await dock.json<CustodyJson[]>(['custody', '--recording', recs[0]!.id]);
    expect(ev[0]!.type).toBe('recording.discovered');
    const del = ev.at(-1)!;
    expect(del).toMatchObject({ type: 'retention.deleted', sha256: recs[0]!.sha256 });
    expect(del.details.rule).toEqual({ days: 0.00001, requireReplicated: false });
    expect((await dock.cli(['verify'])).code).toBe(0);

    expect((await dock.cli(['release', held.id, '--reason', 'complaint closed'])).code).toBe(0);
    expect((await dock.json<Array<{ id: string }>>(['retention'])).map((d) => d.id)).toEqual([held.id]);
  });
});
