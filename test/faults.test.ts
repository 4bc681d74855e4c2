import { afterEach, describe, expect, it } from 'vitest';
import { renameSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { generateIdentity } from '../src/crypto/age.js';
import { allVerified, TestDock, waitFor, type CustodyJson } from './support/harness.js';

let dock: TestDock;
afterEach(async () => {
  await dock?.cleanup();
});

const custodyOf = (id: string) => dock.json<CustodyJson[]>(['custody', '--recording', id]);

describe('faults a dock sees', () => {
  it('retries io-errors with backoff and counts every attempt', async () => {
    dock = new TestDock();
    dock.dock('s1', {
      serial: 'F-IO',
      files: [{ rel: 'DCIM/100/REC0002.MP4', size: 2_000_000 }],
      spec: { faults: [{ path: 'DCIM/100/REC0002.MP4', kind: 'io-error', atByte: 1_048_576, times: 2 }] },
    });
    const d = dock.start();
    const [r] = await allVerified(dock, 1);
    // The second error strikes where the retry re-reads the kept bytes to check them, just past
    // the last byte it needs: that read has what it came for, and the copy goes on from there.
    expect(r!.attempts).toBe(2);
    expect(r!.sha256).toBe(dock.sources.get('F-IO\nDCIM/100/REC0002.MP4')!.sha256);
    const types = (await custodyOf(r!.id)).map((e) => e.type);
    expect(types).toEqual([
      'recording.discovered',
      'offload.started',
      'offload.failed',
      'offload.started',
      'offload.verified',
      'camera.file_deleted',
    ]);
    const verified = (await custodyOf(r!.id)).find((e) => e.type === 'offload.verified')!;
    expect(verified.details.resumedFrom).toBeGreaterThan(0);
    expect(d.events('offload.retry')).toHaveLength(1);
    expect(d.events('offload.retry')[0]).toMatchObject({
      level: 40,
      camera: 'F-IO',
      error: expect.stringMatching(/io-error/),
    });
  });

  it('with verifySource, a corrupted transfer is discarded and copied again', async () => {
    dock = new TestDock({ ingest: { verifySource: true } });
    dock.dock('s1', {
      serial: 'F-CORRUPT',
      files: [{ rel: 'REC0003.MP4', size: 100_000 }],
      spec: { faults: [{ path: 'REC0003.MP4', kind: 'corrupt', atByte: 4096, times: 1 }] },
    });
    dock.start();
    const [r] = await allVerified(dock, 1);
    expect(r!.attempts).toBe(2);
    expect(r!.sha256).toBe(dock.sources.get('F-CORRUPT\nREC0003.MP4')!.sha256);
    expect(readFileSync(r!.archivePath!).equals(dock.sources.get('F-CORRUPT\nREC0003.MP4')!.data)).toBe(true);
    const failed = (await custodyOf(r!.id)).find((e) => e.type === 'offload.failed')!;
    expect(failed.details.error).toMatch(/source-mismatch/);
  });

  it('aborts a stalled read after readTimeoutMs and retries it', async () => {
    dock = new TestDock({ ingest: { readTimeoutMs: 400 } });
    dock.dock('s1', {
      serial: 'F-STALL',
      files: [{ rel: 'REC0004.MP4', size: 300_000 }],
      spec: { faults: [{ path: 'REC0004.MP4', kind: 'stall', atByte: 0, times: 1 }] },
    });
    dock.start();
    const [r] = await allVerified(dock, 1);
    expect(r!.attempts).toBe(2);
    expect(r!.sha256).toBe(dock.sources.get('F-STALL\nREC0004.MP4')!.sha256);
    const failed = (await custodyOf(r!.id)).find((e) => e.type === 'offload.failed')!;
    expect(failed.details.error).toMatch(/stall/);
  });

  it('keeps a verified recording whose deletion failed, retries the deletion, and records both', async () => {
    dock = new TestDock();
    dock.dock('s1', {
      serial: 'F-DEL',
      files: [{ rel: 'REC0005.MP4', size: 50_000 }],
      spec: { faults: [{ path: 'REC0005.MP4', kind: 'delete-error', times: 1 }] },
    });
    dock.start();
    const [r] = await allVerified(dock, 1);
    expect(r!.attempts).toBe(1);
    expect(dock.cameraFileExists('s1', 'REC0005.MP4')).toBe(false);
    const types = (await custodyOf(r!.id)).map((e) => e.type);
    expect(types.slice(-3)).toEqual(['offload.verified', 'camera.file_delete_failed', 'camera.file_deleted']);
  });

  it('fails a recording whose retries run out, keeps it on the camera, and `dockd retry` puts it back', async () => {
    dock = new TestDock({ ingest: { retry: { attempts: 2, baseDelayMs: 20, maxDelayMs: 40 } } });
    const spec = { faults: [{ path: 'bad.mp4', kind: 'io-error', atByte: 10 }] };
    dock.dock('s1', {
      serial: 'F-GIVEUP',
      files: [
        { rel: 'bad.mp4', size: 20_000 },
        { rel: 'good.mp4', size: 20_000 },
      ],
      spec,
    });
    const d = dock.start();
    const recs = await waitFor('one failed', async () => {
      const recs = await dock.recordings();
      return recs.some((r) => r.status === 'failed') && recs.some((r) => r.status === 'verified') ? recs : null;
    });
    const bad = recs.find((r) => r.sourcePath === 'bad.mp4')!;
    expect(bad).toMatchObject({
      status: 'failed',
      attempts: 2,
      sha256: null,
      archivePath: null,
      deletedFromCamera: false,
      lastError: expect.stringMatching(/io-error/),
    });
    expect(dock.cameraFileExists('s1', 'bad.mp4')).toBe(true);
    expect(d.events('offload.failed')[0]).toMatchObject({ level: 50, recording: bad.id });
    expect((await dock.status()).queue.failed).toBe(1);

    dock.writeCameraJson('s1', { serial: 'F-GIVEUP' });
    const r = await dock.cli(['retry', '--all']);
    expect(r.code).toBe(0);
    const done = await allVerified(dock, 2);
    expect(done.find((x) => x.id === bad.id)!.sha256).toBe(dock.sources.get('F-GIVEUP\nbad.mp4')!.sha256);
    const ev = (await custodyOf(bad.id)).find((e) => e.type === 'offload.retry_requested')!;
    expect(ev.actor).toMatch(/^cli:/);
  });

  it('gives up deleting a verified recording the camera keeps refusing, and `dockd retry` asks again, on the record', async () => {
    dock = new TestDock({ ingest: { retry: { attempts: 2, baseDelayMs: 20, maxDelayMs: 40 } } });
    dock.dock('s1', {
      serial: 'F-KEEP',
      files: [{ rel: 'REC0006.MP4', size: 30_000 }],
      spec: { faults: [{ path: 'REC0006.MP4', kind: 'delete-error', times: 2 }] },
    });
    const d = dock.start();
    const [r] = await allVerified(dock, 1, { deleted: false });
    await waitFor('the deletion to give up', async () =>
      (await custodyOf(r!.id)).filter((e) => e.type === 'camera.file_delete_failed').length === 2 ? true : null,
    );
    const refusals = (await custodyOf(r!.id)).filter((e) => e.type === 'camera.file_delete_failed');
    expect(refusals.map((e) => e.details.willRetry)).toEqual([true, false]);
    expect(dock.cameraFileExists('s1', 'REC0006.MP4')).toBe(true);

    dock.writeCameraJson('s1', { serial: 'F-KEEP' });
    const retry = await dock.cli(['retry', '--camera', 'F-KEEP', '--json']);
    expect(retry.code).toBe(0);
    expect(JSON.parse(retry.stdout)).toEqual({ requeued: [], releasesRequeued: 1 });
    await waitFor('the camera to be cleared', async () => (dock.cameraFileExists('s1', 'REC0006.MP4') ? null : true));
    const types = (await custodyOf(r!.id)).map((e) => e.type);
    expect(types.slice(-2)).toEqual(['camera.file_delete_retry_requested', 'camera.file_deleted']);
    const asked = (await custodyOf(r!.id)).find((e) => e.type === 'camera.file_delete_retry_requested')!;
    expect(asked.actor).toMatch(/^cli:/);
    expect(asked.details).toMatchObject({ sourcePath: 'REC0006.MP4', previousError: expect.stringMatching(/delete/) });
    expect(d.events('camera.file_deleted').map((l) => l.recording)).toEqual([r!.id]);
  });

  it('pauses a camera that detaches mid-copy and resumes from the kept bytes when it docks again in another slot', async () => {
    dock = new TestDock();
    dock.dock('slotA', {
      serial: 'F-DETACH',
      files: [{ rel: 'long.mp4', size: 3_000_000 }],
      spec: { faults: [{ kind: 'detach', afterBytes: 1_000_000 }] },
    });
    const d = dock.start();
    await d.waitForEvent('offload.interrupted');
    await waitFor('camera undocked', async () => !(await dock.status()).cameras[0]?.docked);
    const mid = await dock.recordings();
    expect(mid).toHaveLength(1);
    expect(mid[0]).toMatchObject({ status: 'pending', attempts: 0, deletedFromCamera: false });

    // Officer takes the camera out and puts it in another slot.
    dock.undock('slotA');
    renameSync(path.join(dock.simDir, 'slotA'), path.join(dock.simDir, 'slotB'));
    dock.writeCameraJson('slotB', { serial: 'F-DETACH' });
    const [r] = await allVerified(dock, 1);
    expect(r!.sha256).toBe(dock.sources.get('F-DETACH\nlong.mp4')!.sha256);
    expect(r!.attempts).toBe(1);
    const events = await custodyOf(r!.id);
    const verified = events.find((e) => e.type === 'offload.verified')!;
    expect(verified.details.resumedFrom).toBeGreaterThan(0);
    expect(verified.details.resumedFrom).toBeLessThanOrEqual(1_000_000);
    const cams = await dock.json<Array<{ serial: string; slot: string }>>(['cameras']);
    expect(cams).toEqual([expect.objectContaining({ serial: 'F-DETACH', slot: 'slotB' })]);
  });

  it('archives hostile file names safely inside the archive and keeps the original names', async () => {
    dock = new TestDock();
    const names = [
      'DCIM/../../etc/passwd',
      'x\\..\\..\\windows\\system32',
      'C:\\evil.mp4',
      'line\nbreak.mp4',
      'tab\tand\u0001control.mp4',
      'x'.repeat(250) + '.mp4',
      'Case.mp4',
      'case.mp4',
      'caf\u00e9.mp4',
      'cafe\u0301.mp4',
      ' leading space.mp4',
      '-rf.mp4',
    ];
    // A Linux file name cannot hold '/', so traversal shows up as dots and backslashes instead.
    const files = [
      ...names.map((n) => ({ rel: n.replace(/\.\.\//g, 'dotdot/'), size: 1000 })),
      { rel: '.hidden-is-not-a-recording', size: 10 },
    ];
    files[0]!.rel = 'DCIM/weird../passwd..';
    dock.dock('s1', { serial: '../../evil:serial \\x', files });
    dock.start();
    const recs = await allVerified(dock, names.length);
    const archive = path.join(dock.dataDir, 'archive');
    const archivedPaths = new Set<string>();
    for (const r of recs) {
      const src = dock.sources.get(`${r.camera}\n${r.sourcePath}`);
      expect(src, r.sourcePath).toBeDefined();
      expect(r.sha256).toBe(src!.sha256);
      const rel = path.relative(archive, r.archivePath!);
      expect(rel.startsWith('..') || path.isAbsolute(rel)).toBe(false);
      expect(rel).toMatch(/^[A-Za-z0-9._/-]+$/);
      expect(path.basename(rel).length).toBeLessThan(255);
      archivedPaths.add(r.archivePath!);
    }
    expect(archivedPaths.size).toBe(recs.length);
    expect(recs.map((r) => r.sourcePath).sort()).toEqual(
      files
        .filter((f) => !f.rel.startsWith('.'))
        .map((f) => f.rel)
        .sort(),
    );
  });

  // Encrypted copies are written by a worker thread; a kill must leave them as recoverable as plain ones.
  const custodian = generateIdentity();
  it.each([
    ['plain', {}],
    ['encrypted', { encryption: { recipients: [custodian.recipient] } }],
  ])(
    'survives kill -9 in the middle of %s copies: every recording ends verified exactly once, no staging left',
    async (kind, extra) => {
      dock = new TestDock({ ingest: { concurrency: 2 }, ...extra });
      const files = Array.from({ length: 6 }, (_, i) => ({ rel: `REC${i}.MP4`, size: 1_500_000 }));
      dock.dock('s1', { serial: 'K-1', files: files.slice(0, 3), spec: { throughputBytesPerSec: 3_000_000 } });
      dock.dock('s2', { serial: 'K-2', files: files.slice(3), spec: { throughputBytesPerSec: 3_000_000 } });
      for (let round = 0; round < 3; round++) {
        const d = dock.start();
        await d.waitForEvent('offload.started');
        await new Promise((r) => setTimeout(r, 300 + round * 200));
        d.kill('SIGKILL');
        await d.exited;
        // Nothing that is not verified in SQLite may be gone from its camera.
        for (const r of await dock.recordings()) {
          const slot = r.camera === 'K-1' ? 's1' : 's2';
          if (r.status !== 'verified') expect(dock.cameraFileExists(slot, r.sourcePath), r.sourcePath).toBe(true);
        }
      }
      const d = dock.start();
      const recs = await allVerified(dock, 6);
      d.kill('SIGTERM');
      await d.exited;
      for (const r of recs) {
        expect(r.sha256).toBe(dock.sources.get(`${r.camera}\n${r.sourcePath}`)!.sha256);
        const verified = (await custodyOf(r.id)).filter((e) => e.type === 'offload.verified');
        expect(verified).toHaveLength(1);
      }
      expect(readdirSync(path.join(dock.dataDir, 'staging'))).toEqual([]);
      const archived = readdirSync(path.join(dock.dataDir, 'archive'), { recursive: true, withFileTypes: true }).filter(
        (e) => e.isFile(),
      );
      expect(archived).toHaveLength(6);
      expect((await dock.json<{ chain: { ok: boolean } }>(['verify'])).chain.ok).toBe(true);
      if (kind === 'encrypted') {
        expect(archived.every((e) => e.name.endsWith('.age'))).toBe(true);
        // Decrypted, each file must give back what the camera recorded.
        const keyFile = path.join(dock.root, 'custodian.key');
        writeFileSync(keyFile, `${custodian.identity}\n`, { mode: 0o600 });
        const v = await dock.cli(['verify', '--identity', keyFile, '--json']);
        expect(v.code, v.stdout + v.stderr).toBe(0);
      }
    },
  );
});
