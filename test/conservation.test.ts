/**
 * Conservation of footage when a camera's files change under dockd (DESIGN invariant 7): a file
 * replaced, rewritten or grown under a name dockd knows is a new recording, never a reason to
 * delete, and a copy never resumes onto bytes the camera no longer holds. Black-box, on the
 * simulated dock: the real daemon, the CLI's JSON and the files left on the camera and in the archive.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  appendFileSync,
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { allVerified, sha256, TestDock, waitFor, type CustodyJson, type RecordingJson } from './support/harness.js';

let dock: TestDock;
afterEach(async () => {
  await dock?.cleanup();
});

const custodyOf = (id: string) => dock.json<CustodyJson[]>(['custody', '--recording', id]);

type How = 'rename' | 'in-place';

/** Puts `data` on the camera under `rel`, as a camera would: a new file renamed over, or the same file written again. */
function replaceOnCamera(slot: string, rel: string, data: Buffer, how: How): void {
  const file = path.join(dock.simDir, slot, rel);
  if (how === 'rename') {
    const tmp = path.join(path.dirname(file), `.new-${path.basename(file)}`);
    writeFileSync(tmp, data);
    renameSync(tmp, file);
  } else {
    writeFileSync(file, data);
  }
}

/** The SHA-256 of every file in the archive, read from the files themselves. */
function archivedHashes(recs: RecordingJson[]): string[] {
  return recs.filter((r) => r.status === 'verified').map((r) => sha256(readFileSync(r.archivePath!)));
}

function settled(pred: (recs: RecordingJson[]) => boolean, what: string, timeoutMs = 30_000): Promise<RecordingJson[]> {
  return waitFor(
    what,
    async () => {
      const recs = await dock.recordings();
      return pred(recs) ? recs : null;
    },
    timeoutMs,
  );
}

describe('a name the camera reuses after a failed deletion', () => {
  const variants: Array<{ how: How; size: 'same' | 'other' }> = [
    { how: 'rename', size: 'same' },
    { how: 'rename', size: 'other' },
    { how: 'in-place', size: 'same' },
    { how: 'in-place', size: 'other' },
  ];
  for (const v of variants) {
    it(`keeps the new footage (${v.how}, ${v.size} size) and archives both`, async () => {
      dock = new TestDock();
      const first = randomBytes(60_000);
      const second = randomBytes(v.size === 'same' ? 60_000 : 75_000);
      dock.dock('s1', {
        serial: 'C-REUSE',
        files: [{ rel: 'DCIM/REC0001.MP4', data: first }],
        spec: { faults: [{ path: 'DCIM/REC0001.MP4', kind: 'delete-error' }] },
      });
      const d = dock.start();
      await d.waitForEvent('camera.file_delete_failed');
      // The officer takes the camera out, records new footage under the same name, docks again.
      dock.undock('s1');
      await waitFor('undocked', async () => !(await dock.status()).cameras[0]?.docked);
      replaceOnCamera('s1', 'DCIM/REC0001.MP4', second, v.how);
      dock.writeCameraJson('s1', { serial: 'C-REUSE' });

      const recs = await settled(
        (rs) => rs.length === 2 && rs.every((r) => r.status === 'verified') && rs.some((r) => r.deletedFromCamera),
        'both versions verified',
      );
      const [old, fresh] = [
        recs.find((r) => r.sha256 === sha256(first))!,
        recs.find((r) => r.sha256 === sha256(second))!,
      ];
      expect(old, 'the first version stays archived').toBeDefined();
      expect(fresh, 'the new footage is archived').toBeDefined();
      expect(archivedHashes(recs).sort()).toEqual([sha256(first), sha256(second)].sort());
      // Deleted from the camera only in the name of the content that is archived.
      expect(fresh.deletedFromCamera).toBe(true);
      expect(old).toMatchObject({ deletedFromCamera: false, leftCamera: true });
      expect(dock.cameraFileExists('s1', 'DCIM/REC0001.MP4')).toBe(false);
      const oldEvents = await custodyOf(old.id);
      expect(oldEvents.map((e) => e.type)).not.toContain('camera.file_deleted');
      const replaced = oldEvents.find((e) => e.type === 'recording.replaced_on_camera')!;
      expect(replaced.details).toMatchObject({
        noticedBy: 'listing',
        replacedBy: fresh.id,
        deletionCancelled: true,
        before: { bytes: 60_000 },
        after: { bytes: second.length },
      });
      expect((await dock.cli(['verify'])).code).toBe(0);
    });
  }

  it('holds a recording archived before identities were kept to its SHA-256 before deleting it', async () => {
    dock = new TestDock();
    const [a, b, a2] = [randomBytes(50_000), randomBytes(50_000), randomBytes(50_000)];
    dock.dock('s1', {
      serial: 'C-LEGACY',
      files: [
        { rel: 'A.MP4', data: a },
        { rel: 'B.MP4', data: b },
      ],
      spec: { faults: ['A.MP4', 'B.MP4'].map((p) => ({ path: p, kind: 'delete-error' })) },
    });
    const d = dock.start();
    await allVerified(dock, 2, { deleted: false });
    await d.waitForEvent('camera.file_delete_failed');
    d.kill('SIGTERM');
    await d.exited;
    // As a store from before identities holds them, their deletions still to do (however many
    // attempts this daemon made before it stopped); then A is rewritten, same size, while away.
    const db = new Database(path.join(dock.dataDir, 'dockd.db'));
    db.exec('UPDATE recordings SET source_identity = NULL');
    db.exec("UPDATE jobs SET state = 'queued', attempts = 0, not_before = 0 WHERE kind = 'release'");
    db.close();
    replaceOnCamera('s1', 'A.MP4', a2, 'rename');
    dock.writeCameraJson('s1', { serial: 'C-LEGACY' });
    dock.start();

    const recs = await settled(
      (rs) => rs.length === 3 && rs.filter((r) => r.deletedFromCamera).length === 2,
      'B and the new A deleted, the old A let go',
    );
    const byHash = (data: Buffer) => recs.find((r) => r.sha256 === sha256(data))!;
    expect(byHash(b)).toMatchObject({ status: 'verified', deletedFromCamera: true });
    expect(byHash(a2)).toMatchObject({ status: 'verified', deletedFromCamera: true });
    expect(byHash(a)).toMatchObject({ status: 'verified', deletedFromCamera: false, leftCamera: true });
    expect(archivedHashes(recs).sort()).toEqual([a, b, a2].map(sha256).sort());
    const oldA = await custodyOf(byHash(a).id);
    expect(oldA.map((e) => e.type)).not.toContain('camera.file_deleted');
    expect(oldA.find((e) => e.type === 'recording.replaced_on_camera')!.details).toMatchObject({
      noticedBy: 'release',
    });
    expect((await dock.cli(['verify'])).code).toBe(0);
  });

  it('notices the replacement before a retried deletion while the camera stays docked', async () => {
    dock = new TestDock({ ingest: { retry: { attempts: 40, baseDelayMs: 300, maxDelayMs: 300 } } });
    const first = randomBytes(40_000);
    const second = randomBytes(40_000);
    dock.dock('s1', {
      serial: 'C-DOCKED',
      files: [{ rel: 'REC0001.MP4', data: first }],
      spec: { faults: [{ path: 'REC0001.MP4', kind: 'delete-error' }] },
    });
    const d = dock.start();
    await d.waitForEvent('camera.file_delete_failed');
    replaceOnCamera('s1', 'REC0001.MP4', second, 'rename');
    // The camera lets deletions through again; the queued one must look before it deletes.
    dock.writeCameraJson('s1', { serial: 'C-DOCKED' });
    const recs = await settled(
      (rs) => rs.length === 2 && rs.every((r) => r.status === 'verified') && rs.some((r) => r.deletedFromCamera),
      'the new file offloaded in the same visit',
    );
    const old = recs.find((r) => r.sha256 === sha256(first))!;
    expect(old).toMatchObject({ deletedFromCamera: false, leftCamera: true });
    expect(recs.find((r) => r.sha256 === sha256(second))!.deletedFromCamera).toBe(true);
    expect(d.events('recording.replaced_on_camera')[0]).toMatchObject({
      level: 40,
      noticedBy: 'release',
      recording: old.id,
    });
    expect(d.events('camera.relisted')).toHaveLength(1);
  });
});

describe('a file that changes while it is copied', () => {
  const changes: Array<{ name: string; change: (file: string, original: Buffer) => Buffer }> = [
    {
      name: 'grown (still being finalised)',
      change: (f, o) => (appendFileSync(f, Buffer.alloc(50_000, 7)), Buffer.concat([o, Buffer.alloc(50_000, 7)])),
    },
    {
      name: 'replaced by rename, same size',
      change: (f, o) => {
        const n = randomBytes(o.length);
        writeFileSync(f + '.tmp', n);
        renameSync(f + '.tmp', f);
        return n;
      },
    },
    {
      name: 'rewritten in place, same size',
      change: (f, o) => {
        const n = randomBytes(o.length);
        writeFileSync(f, n);
        return n;
      },
    },
  ];
  for (const c of changes) {
    it(`discards the copy of a file ${c.name} and archives what the camera holds at the end`, async () => {
      dock = new TestDock();
      const original = randomBytes(400_000);
      // 200 kB/s: two seconds of copying to change the file in.
      dock.dock('s1', {
        serial: 'C-LIVE',
        files: [{ rel: 'REC.MP4', data: original }],
        spec: { throughputBytesPerSec: 200_000 },
      });
      const d = dock.start();
      await d.waitForEvent('offload.started');
      await new Promise((r) => setTimeout(r, 300));
      const now = c.change(path.join(dock.simDir, 's1', 'REC.MP4'), original);
      const recs = await settled(
        (rs) => rs.some((r) => r.status === 'verified' && r.deletedFromCamera),
        'the final file verified',
      );
      const verified = recs.filter((r) => r.status === 'verified');
      expect(verified).toHaveLength(1);
      expect(verified[0]!.sha256).toBe(sha256(now));
      expect(archivedHashes(recs)).toEqual([sha256(now)]);
      const first = recs.find((r) => r.id !== verified[0]!.id)!;
      expect(first).toMatchObject({ status: 'failed', leftCamera: true, deletedFromCamera: false, archivePath: null });
      const ev = (await custodyOf(first.id)).find((e) => e.type === 'recording.replaced_on_camera')!;
      expect(ev.details.noticedBy).toBe('copy');
      expect(existsSync(path.join(dock.dataDir, 'staging', `${first.id}.part`))).toBe(false);
      expect((await dock.cli(['verify'])).code).toBe(0);
    });
  }
});

describe('a copy interrupted and resumed', () => {
  /** Copies `long.mp4` until the camera detaches after 600 kB, and waits for the kept bytes. */
  async function interrupted(data: Buffer): Promise<void> {
    dock.dock('s1', {
      serial: 'C-SPLICE',
      files: [{ rel: 'long.mp4', data }],
      spec: { faults: [{ kind: 'detach', afterBytes: 600_000 }] },
    });
    const d = dock.start();
    await d.waitForEvent('offload.interrupted');
    const [r] = await dock.recordings();
    expect(r).toMatchObject({ status: 'pending', attempts: 0 });
    dock.undock('s1');
    await waitFor('undocked', async () => !(await dock.status()).cameras[0]?.docked);
  }

  it('starts over when the file was replaced by one of the same size', async () => {
    dock = new TestDock();
    const first = randomBytes(1_500_000);
    const second = randomBytes(1_500_000);
    await interrupted(first);
    replaceOnCamera('s1', 'long.mp4', second, 'rename');
    dock.writeCameraJson('s1', { serial: 'C-SPLICE' });
    const recs = await settled(
      (rs) => rs.some((r) => r.status === 'verified' && r.deletedFromCamera),
      'the second file verified',
    );
    const v = recs.find((r) => r.status === 'verified')!;
    expect(v.sha256).toBe(sha256(second));
    expect(archivedHashes(recs)).toEqual([sha256(second)]);
    const ver = (await custodyOf(v.id)).find((e) => e.type === 'offload.verified')!;
    expect(ver.details.resumedFrom).toBe(0);
  });

  it('starts over when the bytes before the resume point changed though size, time and inode did not', async () => {
    dock = new TestDock();
    const first = randomBytes(1_500_000);
    await interrupted(first);
    // A rewrite that keeps everything a listing can see: same inode, same size, the old mtime to the ns.
    const file = path.join(dock.simDir, 's1', 'long.mp4');
    const ref = path.join(dock.root, 'mtime-ref');
    copyFileSync(file, ref);
    execFileSync('touch', ['-m', '-r', file, ref]);
    const second = Buffer.from(first);
    randomBytes(1_000_000).copy(second, 0);
    writeFileSync(file, second);
    execFileSync('touch', ['-m', '-r', ref, file]);
    dock.writeCameraJson('s1', { serial: 'C-SPLICE' });
    const [v] = await allVerified(dock, 1);
    expect(v!.sha256).toBe(sha256(second));
    expect(sha256(readFileSync(v!.archivePath!))).toBe(sha256(second));
    const ver = (await custodyOf(v!.id)).find((e) => e.type === 'offload.verified')!;
    expect(ver.details).toMatchObject({ resumedFrom: 0, resumeRefused: true });
    expect(dock.lastDaemon!.events('offload.resume_refused')).toHaveLength(1);
  });

  it('starts over after kill -9 when the file was replaced before the restart', async () => {
    dock = new TestDock();
    const first = randomBytes(1_500_000);
    const second = randomBytes(1_500_000);
    await interrupted(first);
    dock.lastDaemon!.kill('SIGKILL');
    await dock.lastDaemon!.exited;
    replaceOnCamera('s1', 'long.mp4', second, 'in-place');
    dock.writeCameraJson('s1', { serial: 'C-SPLICE' });
    dock.start();
    const recs = await settled(
      (rs) => rs.some((r) => r.status === 'verified' && r.deletedFromCamera),
      'the second file verified',
    );
    expect(archivedHashes(recs)).toEqual([sha256(second)]);
    expect(readdirNames(path.join(dock.dataDir, 'staging'))).toEqual([]);
  });

  it('still resumes an unchanged file from its kept bytes', async () => {
    dock = new TestDock();
    const data = randomBytes(1_500_000);
    await interrupted(data);
    dock.writeCameraJson('s1', { serial: 'C-SPLICE' });
    const [v] = await allVerified(dock, 1);
    expect(v!.sha256).toBe(sha256(data));
    const ver = (await custodyOf(v!.id)).find((e) => e.type === 'offload.verified')!;
    expect(ver.details.resumedFrom).toBeGreaterThan(0);
    expect(ver.details.resumeRefused).toBeUndefined();
  });
});

function readdirNames(dir: string): string[] {
  return existsSync(dir) ? execFileSync('ls', ['-A', dir], { encoding: 'utf8' }).split('\n').filter(Boolean) : [];
}

describe('two cameras with one serial', () => {
  it('refuses the second while the first is docked, says so, and offloads it once the first leaves', async () => {
    dock = new TestDock();
    dock.dock('slotA', {
      serial: 'CLONE-1',
      files: [{ rel: 'a.mp4', size: 600_000 }],
      spec: { throughputBytesPerSec: 200_000 },
    });
    const d = dock.start();
    await d.waitForEvent('camera.docked');
    dock.dock('slotB', { serial: 'CLONE-1', files: [{ rel: 'b.mp4', size: 20_000 }] });
    const conflict = await d.waitForEvent('camera.serial_conflict');
    expect(conflict).toMatchObject({ level: 50, camera: 'CLONE-1', slot: 'slotB', dockedIn: 'slotA' });
    const status = await dock.json<{ conflicts: Array<{ serial: string; slot: string; dockedIn: string }> }>([
      'status',
    ]);
    expect(status.conflicts).toEqual([
      expect.objectContaining({ serial: 'CLONE-1', slot: 'slotB', dockedIn: 'slotA' }),
    ]);
    expect((await dock.cli(['status'])).stdout).toMatch(/CONFLICT .*slotB.*CLONE-1.*slotA/);
    const cams = await dock.json<Array<{ serial: string; slot: string }>>(['cameras']);
    expect(cams).toEqual([expect.objectContaining({ serial: 'CLONE-1', slot: 'slotA' })]);
    const events = await dock.json<CustodyJson[]>(['custody', '--camera', 'CLONE-1']);
    expect(events.find((e) => e.type === 'camera.serial_conflict')!.details).toMatchObject({
      slot: 'slotB',
      dockedIn: 'slotA',
    });
    // b.mp4 waits on its camera; a.mp4 is offloaded meanwhile.
    await settled((rs) => rs.some((r) => r.sourcePath === 'a.mp4' && r.status === 'verified'), 'a.mp4 verified');
    expect((await dock.recordings()).map((r) => r.sourcePath)).toEqual(['a.mp4']);
    expect(dock.cameraFileExists('slotB', 'b.mp4')).toBe(true);

    dock.undock('slotA');
    const recs = await allVerified(dock, 2);
    expect(recs.map((r) => r.sourcePath).sort()).toEqual(['a.mp4', 'b.mp4']);
    expect(dock.cameraFileExists('slotB', 'b.mp4')).toBe(false);
    expect((await dock.json<{ conflicts: unknown[] }>(['status'])).conflicts).toEqual([]);
  });

  it('still treats a camera that left one slot for another as moved, not as a clone', async () => {
    dock = new TestDock();
    dock.dock('slotA', { serial: 'MOVER', files: [{ rel: 'a.mp4', size: 20_000 }] });
    const d = dock.start();
    await allVerified(dock, 1);
    // Taken out and put into another slot before dockd heard of the first removal.
    rmSync(path.join(dock.simDir, 'slotA'), { recursive: true });
    dock.dock('slotB', { serial: 'MOVER', files: [{ rel: 'b.mp4', size: 20_000 }] });
    await allVerified(dock, 2);
    expect(d.events('camera.serial_conflict')).toEqual([]);
    const cams = await dock.json<Array<{ serial: string; slot: string }>>(['cameras']);
    expect(cams).toEqual([expect.objectContaining({ serial: 'MOVER', slot: 'slotB' })]);
  });
});

describe('a dock whose own storage refuses writes', () => {
  // Root writes wherever it likes, so the daemon runs as nobody and root takes its permission away.
  const NOBODY = { uid: 65534, gid: 65534 };
  const chown = () => execFileSync('chown', ['-R', `${NOBODY.uid}:${NOBODY.gid}`, dock.root]);
  const unwritableShown = async () => {
    const s = await dock.json<{ archive: { storeUnwritable: string | null } }>(['status']);
    return s.archive.storeUnwritable;
  };

  it('pauses offloading while staging cannot be written, spends no retries, deletes nothing, and resumes by itself', async () => {
    dock = new TestDock();
    mkdirSync(path.join(dock.dataDir, 'staging'), { recursive: true });
    dock.dock('s1', {
      serial: 'RO-1',
      files: [
        { rel: 'a.mp4', size: 100_000 },
        { rel: 'b.mp4', size: 100_000 },
      ],
    });
    chown();
    chmodSync(path.join(dock.dataDir, 'staging'), 0o555);
    const d = dock.start([], {}, NOBODY);
    const err = await d.waitForEvent('ingest.store_unwritable');
    expect(err.level).toBe(50);
    expect(err.msg).toMatch(/EACCES|permission denied/i);
    // Long enough for five retries with the test's 50–200 ms backoff to have burnt out.
    await new Promise((r) => setTimeout(r, 2500));
    const recs = await dock.recordings();
    expect(recs).toHaveLength(2);
    for (const r of recs) expect(r).toMatchObject({ status: 'pending', attempts: 0, deletedFromCamera: false });
    expect(dock.cameraFileExists('s1', 'a.mp4') && dock.cameraFileExists('s1', 'b.mp4')).toBe(true);
    expect(d.events('ingest.store_unwritable')).toHaveLength(1);
    expect(d.events('camera.cleared')).toEqual([]);
    expect(await waitFor('status shows the pause', unwritableShown)).toMatch(/EACCES|permission denied/i);
    expect((await dock.cli(['status'])).stdout).toMatch(/OFFLOADING PAUSED: cannot write the archive/);

    chmodSync(path.join(dock.dataDir, 'staging'), 0o750);
    await d.waitForEvent('ingest.store_writable');
    const done = await allVerified(dock, 2);
    for (const r of done) expect(r.attempts).toBe(1);
    expect(await unwritableShown()).toBeNull();
  });

  it('pauses when the archive folder stops taking files mid-visit, and commits the held copies when it does again', async () => {
    dock = new TestDock();
    dock.dock('s1', { serial: 'RO-2', files: [{ rel: 'first.mp4', size: 50_000 }] });
    chown();
    const d = dock.start([], {}, NOBODY);
    // The daemon creates its store first: one made by a root CLI call would not be its own.
    await d.waitForEvent('daemon.started');
    await allVerified(dock, 1);
    // Every folder of the archive, as after a restore by another user: the camera's day folder exists already.
    execFileSync('find', [path.join(dock.dataDir, 'archive'), '-type', 'd', '-exec', 'chmod', '555', '{}', '+']);
    dock.undock('s1');
    await waitFor('undocked', async () => !(await dock.status()).cameras[0]?.docked);
    dock.dock('s1', {
      serial: 'RO-2',
      files: [
        { rel: 'second.mp4', size: 50_000 },
        { rel: 'third.mp4', size: 50_000 },
      ],
    });
    chown();
    await d.waitForEvent('ingest.store_unwritable');
    await new Promise((r) => setTimeout(r, 2000));
    const held = (await dock.recordings()).filter((r) => r.sourcePath !== 'first.mp4');
    expect(held).toHaveLength(2);
    for (const r of held) expect(r).toMatchObject({ status: 'pending', attempts: 0 });
    expect(dock.cameraFileExists('s1', 'second.mp4') && dock.cameraFileExists('s1', 'third.mp4')).toBe(true);
    execFileSync('find', [path.join(dock.dataDir, 'archive'), '-type', 'd', '-exec', 'chmod', '750', '{}', '+']);
    const recs = await allVerified(dock, 3);
    expect(recs.map((r) => r.sourcePath).sort()).toEqual(['first.mp4', 'second.mp4', 'third.mp4']);
    for (const r of recs) expect(r.sha256).toBe(dock.sources.get(`RO-2\n${r.sourcePath}`)!.sha256);
    expect((await dock.cli(['verify'])).code).toBe(0);
  });
});
