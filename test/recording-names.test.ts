/**
 * Names are bytes, and a simulated camera's storage is only its slot: black-box, on the real
 * daemon and the simulated dock.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { allVerified, sha256, TestDock, waitFor, type CustodyJson, type VerifyJson } from './support/harness.js';

let dock: TestDock;
afterEach(async () => {
  await dock?.cleanup();
});

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const utf8 = (s: string) => Buffer.from(s, 'utf8');
const cat = (...parts: Buffer[]) => Buffer.concat(parts);

/** The recipe of docs/recording-names.md, written out again here rather than imported. */
function originalBytes(sourcePath: string): Buffer {
  return Buffer.concat(
    [...sourcePath].map((ch) => {
      const cp = ch.codePointAt(0)!;
      return cp >= 0xf780 && cp <= 0xf7ff ? Buffer.of(cp - 0xf700) : Buffer.from(ch, 'utf8');
    }),
  );
}

function archivedFiles(dir: string): Buffer[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile())
    .map((e) => readFileSync(path.join(e.parentPath, e.name)));
}

describe('names that are not UTF-8', () => {
  it('offloads, verifies and deletes each like any other, under a sourcePath that gives its bytes back', async () => {
    dock = new TestDock();
    const names = [
      cat(utf8('DCIM/caf'), hex('e9'), utf8('.mp4')), // Latin-1
      cat(utf8('DCIM/'), hex('ff')), // a lone byte that is never UTF-8
      cat(utf8('DCIM/x'), hex('c0 af'), utf8('.mp4')), // an overlong "/"
      cat(utf8('DCIM/'), hex('ed a0 80'), utf8('.mp4')), // an encoded surrogate
      utf8('DCIM/caf\uf7e9.mp4'), // UTF-8 that looks like the Latin-1 name's encoding
      utf8('DCIM/caf\u00e9.mp4'), // the same name in UTF-8
      cat(hex('fe fe'), utf8('/inner.mp4')), // a folder whose name is not UTF-8
    ];
    const byName = new Map<string, Buffer>();
    for (const n of names) {
      const data = randomBytes(20_000 + byName.size);
      dock.putRawFile('s1', n, data);
      byName.set(n.toString('hex'), data);
    }
    dock.dock('s1', { serial: 'N-BYTES' });
    const d = dock.start();
    const recs = await allVerified(dock, names.length);

    expect(new Set(recs.map((r) => r.sourcePath)).size).toBe(names.length);
    for (const r of recs) {
      const raw = originalBytes(r.sourcePath);
      const data = byName.get(raw.toString('hex'));
      expect(
        data,
        `${JSON.stringify(r.sourcePath)} decodes to ${raw.toString('hex')}, a name that was not on the camera`,
      ).toBeDefined();
      expect(r.sha256).toBe(sha256(data!));
      expect(readFileSync(r.archivePath!).equals(data!)).toBe(true);
      expect(existsSync(cat(Buffer.from(path.join(dock.simDir, 's1') + '/'), raw))).toBe(false);
    }
    const paths = recs.map((r) => r.sourcePath);
    expect(paths).toContain('DCIM/caf\uf7e9.mp4');
    expect(paths).toContain('DCIM/caf\uf7ef\uf79f\uf7a9.mp4');
    expect(paths).toContain('DCIM/caf\u00e9.mp4');
    expect(paths).toContain('\uf7fe\uf7fe/inner.mp4');

    const latin1 = recs.find((r) => r.sourcePath === 'DCIM/caf\uf7e9.mp4')!;
    const custody = await dock.json<CustodyJson[]>(['custody', '--recording', latin1.id]);
    expect(custody.find((e) => e.type === 'recording.discovered')!.details.sourcePath).toBe('DCIM/caf\uf7e9.mp4');
    expect(custody.map((e) => e.type)).toContain('camera.file_deleted');
    expect((await dock.json<VerifyJson>(['verify'])).ok).toBe(true);
    expect(d.events('recording.unreadable')).toEqual([]);
  });
});

describe('links on a simulated camera', () => {
  it('are reported as unreadable and never followed, listed, read or deleted', async () => {
    dock = new TestDock();
    const outside = path.join(dock.root, 'outside');
    mkdirSync(outside, { recursive: true });
    const secret = randomBytes(5000);
    writeFileSync(path.join(outside, 'secret.MP4'), secret);
    const slot = path.join(dock.simDir, 's1');
    mkdirSync(slot, { recursive: true });
    symlinkSync(path.join(outside, 'secret.MP4'), path.join(slot, 'link.MP4'));
    symlinkSync(outside, path.join(slot, 'DCIM'));
    symlinkSync(path.join(outside, 'secret.MP4'), cat(Buffer.from(slot + '/l'), hex('e9'), utf8('nk.MP4')));
    execFileSync('mkfifo', [path.join(slot, 'fifo.MP4')]);
    dock.dock('s1', { serial: 'N-LINKS', files: [{ rel: 'REC0001.MP4', size: 10_000 }] });
    const d = dock.start();

    const [rec] = await allVerified(dock, 1);
    expect(rec!.sourcePath).toBe('REC0001.MP4');
    const listed = await d.waitForEvent('camera.listed');
    expect(listed).toMatchObject({ discovered: 1, unreadable: 4 });
    const unreadable = d
      .events('recording.unreadable')
      .map((l) => ({ level: l.level, camera: l.camera, sourcePath: l.sourcePath, reason: l.reason }));
    expect(unreadable).toEqual(
      expect.arrayContaining([
        { level: 40, camera: 'N-LINKS', sourcePath: 'link.MP4', reason: 'symlink' },
        { level: 40, camera: 'N-LINKS', sourcePath: 'DCIM', reason: 'symlink' },
        { level: 40, camera: 'N-LINKS', sourcePath: 'l\uf7e9nk.MP4', reason: 'symlink' },
        { level: 40, camera: 'N-LINKS', sourcePath: 'fifo.MP4', reason: 'not-a-file' },
      ]),
    );
    expect(unreadable).toHaveLength(4);
    expect(readFileSync(path.join(outside, 'secret.MP4')).equals(secret)).toBe(true);
    for (const name of ['link.MP4', 'DCIM', 'fifo.MP4'])
      expect(() => lstatSync(path.join(slot, name)), name).not.toThrow();
    expect(archivedFiles(path.join(dock.dataDir, 'archive')).some((b) => b.equals(secret))).toBe(false);
  });

  it('count all of a camera full of them, but log at most 100 lines for one docking', async () => {
    dock = new TestDock();
    const folder = path.join(dock.simDir, 's1', 'links');
    mkdirSync(folder, { recursive: true });
    for (let i = 0; i < 150; i++) symlinkSync('/etc/hostname', path.join(folder, `L${i}.MP4`));
    dock.dock('s1', { serial: 'N-MANY', files: [{ rel: 'REC0001.MP4', size: 1000 }] });
    const d = dock.start();
    await allVerified(dock, 1);
    expect(await d.waitForEvent('camera.listed')).toMatchObject({ discovered: 1, unreadable: 150 });
    expect(d.events('recording.unreadable')).toHaveLength(100);
  });
});

describe('a folder replaced by a link after the listing', () => {
  /** Moves the camera's folder away (to a dot name, which is not listed) and links it to `outside`. */
  function swap(slot: string, folder: string, outside: string): void {
    renameSync(path.join(slot, folder), path.join(slot, `.moved-${path.basename(folder)}`));
    symlinkSync(outside, path.join(slot, folder));
  }

  it('never makes dockd read a file outside the slot', async () => {
    dock = new TestDock({ ingest: { readTimeoutMs: 1500 } });
    const outside = path.join(dock.root, 'outside');
    mkdirSync(outside, { recursive: true });
    const theirs = randomBytes(30_000);
    writeFileSync(path.join(outside, 'REC1.MP4'), theirs);
    // The first read stalls, which holds the copy between the listing and the next open.
    dock.dock('s1', {
      serial: 'N-SWAP-READ',
      files: [{ rel: 'DCIM/100/REC1.MP4', size: 30_000 }],
      spec: { faults: [{ path: 'DCIM/100/REC1.MP4', kind: 'stall', atByte: 0, times: 1 }] },
    });
    const ours = dock.sources.get('N-SWAP-READ\nDCIM/100/REC1.MP4')!;
    const slot = path.join(dock.simDir, 's1');
    const d = dock.start();
    await d.waitForEvent('offload.started');
    swap(slot, 'DCIM/100', outside);

    const [rec] = await waitFor('the recording to fail', async () => {
      const recs = await dock.recordings();
      return recs.length === 1 && recs[0]!.status === 'failed' ? recs : null;
    });
    expect(rec!.lastError).toMatch(/outside the camera/);
    expect(rec!.sha256).toBeNull();
    expect(readFileSync(path.join(outside, 'REC1.MP4')).equals(theirs)).toBe(true);
    expect(readFileSync(path.join(slot, '.moved-100', 'REC1.MP4')).equals(ours.data)).toBe(true);
    expect(archivedFiles(path.join(dock.dataDir, 'archive')).some((b) => b.equals(theirs))).toBe(false);
  });

  it('never makes dockd delete a file outside the slot', async () => {
    dock = new TestDock({ ingest: { retry: { attempts: 5, baseDelayMs: 1500, maxDelayMs: 1500 } } });
    const outside = path.join(dock.root, 'outside');
    mkdirSync(outside, { recursive: true });
    const theirs = randomBytes(30_000);
    writeFileSync(path.join(outside, 'REC2.MP4'), theirs);
    // The first deletion fails, which holds it between the verification and the next try.
    dock.dock('s1', {
      serial: 'N-SWAP-DEL',
      files: [{ rel: 'DCIM/100/REC2.MP4', size: 30_000 }],
      spec: { faults: [{ path: 'DCIM/100/REC2.MP4', kind: 'delete-error', times: 1 }] },
    });
    const ours = dock.sources.get('N-SWAP-DEL\nDCIM/100/REC2.MP4')!;
    const slot = path.join(dock.simDir, 's1');
    const d = dock.start();
    await d.waitForEvent('camera.file_delete_failed');
    swap(slot, 'DCIM/100', outside);

    const again = await d.waitForLog((l) => l.event === 'camera.file_delete_failed' && l.attempt === 2, 15_000);
    expect(again).toMatchObject({ willRetry: false, error: expect.stringMatching(/outside the camera/) });
    const [rec] = await dock.recordings();
    expect(rec).toMatchObject({ status: 'verified', sha256: ours.sha256, deletedFromCamera: false });
    expect(readFileSync(path.join(outside, 'REC2.MP4')).equals(theirs)).toBe(true);
    expect(readFileSync(path.join(slot, '.moved-100', 'REC2.MP4')).equals(ours.data)).toBe(true);
    expect(d.events('camera.file_deleted')).toEqual([]);
  });
});
