import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openStore, type Db } from '../src/store/db.js';
import { CustodyLog } from '../src/store/custody-log.js';
import { verifyChain, verifyFiles } from '../src/custody/verify.js';

let dir: string;
let db: Db;
let custody: CustodyLog;

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'dockd-verify-'));
  db = openStore(path.join(dir, 'data'));
  custody = new CustodyLog(db);
  db.prepare(
    `INSERT INTO cameras (serial, first_seen, last_seen) VALUES ('C-1', '2026-12-01T00:00:00Z', '2026-12-01T00:00:00Z')`,
  ).run();
});
afterEach(() => {
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

/** An archived, verified recording whose file holds `data`. */
function archived(id: string, data: Buffer): { id: string; file: string; sha256: string } {
  const file = path.join(dir, `${id}.mp4`);
  writeFileSync(file, data);
  const sha256 = createHash('sha256').update(data).digest('hex');
  db.prepare(
    `INSERT INTO recordings (id, camera, source_path, source_id, bytes, status, sha256, stored_sha256, stored_bytes, archive_path, discovered_at, verified_at)
     VALUES (?, 'C-1', ?, ?, ?, 'verified', ?, ?, ?, ?, ?, ?)`,
  ).run(
    id,
    `DCIM/${id}.MP4`,
    `DCIM/${id}.MP4`,
    data.length,
    sha256,
    sha256,
    data.length,
    file,
    `2026-12-01T00:00:0${id.slice(1)}Z`,
    '2026-12-01T01:00:00Z',
  );
  custody.record({
    type: 'offload.verified',
    camera: 'C-1',
    recording: id,
    sha256,
    details: { sourcePath: `DCIM/${id}.MP4`, archivePath: file, bytes: data.length },
  });
  return { id, file, sha256 };
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

const findings = (id: string) => custody.forRecording(id).filter((e) => e.type.startsWith('archive.'));

describe('verify puts what it finds about archived files on the custody record', () => {
  it('records a changed and a missing file once each, however often it runs, and a repair', async () => {
    const data = Buffer.alloc(10_000, 7);
    const a = archived('r1', data);
    const b = archived('r2', Buffer.alloc(5_000, 9));
    archived('r3', Buffer.alloc(3_000, 1));
    const changed = Buffer.from(data);
    changed[1234]! ^= 1;
    writeFileSync(a.file, changed);
    rmSync(b.file);

    for (let run = 0; run < 3; run++) {
      expect(await verifyFiles(db, { custody })).toMatchObject({
        checked: 3,
        ok: 1,
        missing: ['r2'],
        mismatched: ['r1'],
      });
    }
    const changedSha = createHash('sha256').update(changed).digest('hex');
    expect(findings('r1').map((e) => [e.type, e.sha256, e.details])).toEqual([
      ['archive.mismatch', a.sha256, { file: a.file, actual: changedSha, noticedBy: 'verify' }],
    ]);
    expect(findings('r2').map((e) => [e.type, e.details.actual])).toEqual([
      ['archive.mismatch', 'the file is missing'],
    ]);
    expect(findings('r3')).toEqual([]);

    // Restored from a backup: on the record once; then cut short: a new finding.
    writeFileSync(a.file, data);
    expect(await verifyFiles(db, { custody })).toMatchObject({ ok: 2, mismatched: [] });
    expect(await verifyFiles(db, { custody })).toMatchObject({ ok: 2, mismatched: [] });
    truncateSync(a.file, 4_000);
    expect(await verifyFiles(db, { custody, quick: true })).toMatchObject({ mismatched: ['r1'] });
    expect(findings('r1').map((e) => [e.type, e.details.actual])).toEqual([
      ['archive.mismatch', changedSha],
      ['archive.intact', undefined],
      ['archive.mismatch', 'the file has 4000 bytes, not 10000'],
    ]);
    expect(verifyChain(db)).toMatchObject({ ok: true });
  });

  it('does not call a recording missing that retention deleted while it was checked', async () => {
    archived('r1', Buffer.alloc(1_000, 1));
    const b = archived('r2', Buffer.alloc(1_000, 2));
    // Retention marks the row first and removes the file after; here between two files' checks.
    const res = await verifyFiles(db, {
      custody,
      onFile: (done) => {
        if (done !== 1) return;
        db.prepare("UPDATE recordings SET status = 'deleted', deleted_at = ? WHERE id = 'r2'").run(
          new Date().toISOString(),
        );
        rmSync(b.file);
      },
    });
    expect(res).toMatchObject({ checked: 1, ok: 1, missing: [], mismatched: [] });
    expect(findings('r2')).toEqual([]);
  });

  it('finds a changed file without a custody log, and writes nothing', async () => {
    const a = archived('r1', Buffer.alloc(1_000, 1));
    writeFileSync(a.file, Buffer.alloc(1_000, 2));
    expect(await verifyFiles(db)).toMatchObject({ mismatched: ['r1'] });
    expect(findings('r1')).toEqual([]);
  });
});

describe('verify holds files and rows to the hash custody recorded', () => {
  it('finds a file swapped together with its row: the file and the row both disagree with custody', async () => {
    const a = archived('r1', Buffer.alloc(2_000, 1));
    archived('r2', Buffer.alloc(2_000, 2));
    const forged = Buffer.alloc(2_000, 3);
    writeFileSync(a.file, forged);
    db.prepare('UPDATE recordings SET sha256 = ?, stored_sha256 = ? WHERE id = ?').run(sha(forged), sha(forged), 'r1');

    const res = await verifyFiles(db, { custody });
    expect(res).toMatchObject({ checked: 2, ok: 1, missing: [], mismatched: ['r1'], rowMismatched: ['r1'] });
    expect(res.disagreements).toEqual([
      { recording: 'r1', disagrees: 'row', detail: `recordings.sha256 is ${sha(forged)}, custody says ${a.sha256}` },
      {
        recording: 'r1',
        disagrees: 'row',
        detail: `recordings.stored_sha256 is ${sha(forged)}, custody says ${a.sha256}`,
      },
      {
        recording: 'r1',
        disagrees: 'file',
        detail: `the archived file's SHA-256 is ${sha(forged)}, custody says ${a.sha256}`,
      },
    ]);
    // The finding on the record names the hash custody holds, not the forged row's.
    expect(findings('r1').map((e) => [e.type, e.sha256, e.details.actual])).toEqual([
      ['archive.mismatch', a.sha256, sha(forged)],
    ]);
  });

  it('finds an edited row whose file is intact, also with --quick, and records no archive finding', async () => {
    archived('r1', Buffer.alloc(2_000, 1));
    db.prepare('UPDATE recordings SET sha256 = ? WHERE id = ?').run('0'.repeat(64), 'r1');
    for (const quick of [false, true]) {
      const res = await verifyFiles(db, { custody, quick });
      expect(res).toMatchObject({ checked: 1, ok: 0, missing: [], mismatched: [], rowMismatched: ['r1'] });
      expect(res.disagreements.map((d) => d.disagrees)).toEqual(['row']);
    }
    expect(findings('r1')).toEqual([]);
  });

  it('calls a verified row without an offload.verified event a row that disagrees with custody', async () => {
    const data = Buffer.alloc(1_000, 4);
    const file = path.join(dir, 'r9.mp4');
    writeFileSync(file, data);
    db.prepare(
      `INSERT INTO recordings (id, camera, source_path, source_id, bytes, status, sha256, stored_sha256, stored_bytes, archive_path, discovered_at, verified_at)
       VALUES ('r9', 'C-1', 'DCIM/R9.MP4', 'DCIM/R9.MP4', ?, 'verified', ?, ?, ?, ?, '2026-12-01T00:00:09Z', '2026-12-01T01:00:00Z')`,
    ).run(data.length, sha(data), sha(data), data.length, file);
    const res = await verifyFiles(db, { custody });
    expect(res).toMatchObject({ checked: 1, ok: 0, mismatched: [], rowMismatched: ['r9'] });
    expect(res.disagreements[0]!.detail).toMatch(/no offload\.verified event/);
  });

  it('checks an encrypted archive file against the stored hash in custody, without a key', async () => {
    const plain = Buffer.alloc(1_000, 5);
    const sealed = Buffer.alloc(1_200, 6);
    const file = path.join(dir, 'r1.mp4.age');
    writeFileSync(file, sealed);
    db.prepare(
      `INSERT INTO recordings (id, camera, source_path, source_id, bytes, status, sha256, stored_sha256, stored_bytes, archive_path, discovered_at, verified_at)
       VALUES ('r1', 'C-1', 'DCIM/R1.MP4', 'DCIM/R1.MP4', ?, 'verified', ?, ?, ?, ?, '2026-12-01T00:00:01Z', '2026-12-01T01:00:00Z')`,
    ).run(plain.length, sha(plain), sha(sealed), sealed.length, file);
    custody.record({
      type: 'offload.verified',
      camera: 'C-1',
      recording: 'r1',
      sha256: sha(plain),
      details: { archivePath: file, bytes: plain.length, storedSha256: sha(sealed), storedBytes: sealed.length },
    });
    expect(await verifyFiles(db, { custody })).toMatchObject({ ok: 1, mismatched: [], rowMismatched: [] });

    // Another age file swapped in with its hash in the row: custody still holds the first one's.
    const other = Buffer.alloc(1_200, 7);
    writeFileSync(file, other);
    db.prepare('UPDATE recordings SET stored_sha256 = ? WHERE id = ?').run(sha(other), 'r1');
    const res = await verifyFiles(db, { custody });
    expect(res).toMatchObject({ ok: 0, mismatched: ['r1'], rowMismatched: ['r1'] });
    expect(res.disagreements.find((d) => d.disagrees === 'file')!.detail).toBe(
      `the archived file's SHA-256 is ${sha(other)}, custody says ${sha(sealed)}`,
    );
  });
});
