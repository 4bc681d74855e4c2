import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openStore, type Db } from '../src/store/db.js';
import { CustodyLog } from '../src/custody/log.js';
import { verifyChain, verifyFiles } from '../src/custody/verify.js';

let dir: string;
let db: Db;
let custody: CustodyLog;

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'dockd-verify-'));
  db = openStore(path.join(dir, 'data'));
  custody = new CustodyLog(db);
  db.prepare(`INSERT INTO cameras (serial, first_seen, last_seen) VALUES ('C-1', '2026-12-01T00:00:00Z', '2026-12-01T00:00:00Z')`).run();
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
  ).run(id, `DCIM/${id}.MP4`, `DCIM/${id}.MP4`, data.length, sha256, sha256, data.length, file, `2026-12-01T00:00:0${id.slice(1)}Z`, '2026-12-01T01:00:00Z');
  return { id, file, sha256 };
}

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
      expect(await verifyFiles(db, { custody })).toMatchObject({ checked: 3, ok: 1, missing: ['r2'], mismatched: ['r1'] });
    }
    const changedSha = createHash('sha256').update(changed).digest('hex');
    expect(findings('r1').map((e) => [e.type, e.sha256, e.details])).toEqual([['archive.mismatch', a.sha256, { file: a.file, actual: changedSha, noticedBy: 'verify' }]]);
    expect(findings('r2').map((e) => [e.type, e.details.actual])).toEqual([['archive.mismatch', 'the file is missing']]);
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
        db.prepare("UPDATE recordings SET status = 'deleted', deleted_at = ? WHERE id = 'r2'").run(new Date().toISOString());
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
