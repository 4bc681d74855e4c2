import { afterEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { generateIdentity } from '../src/crypto/age.js';
import { allVerified, TestDock } from './support/harness.js';

/**
 * A real full disk: the data dir is a small tmpfs mounted for the test (CI runs as root).
 */
class SmallDiskDock extends TestDock {
  readonly mountPoint: string;
  constructor(sizeMb: number, config: Record<string, unknown>) {
    super(config);
    this.mountPoint = this.dataDir;
    mkdirSync(this.mountPoint, { recursive: true });
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMb}m`, 'tmpfs', this.mountPoint]);
    } catch (err) {
      throw new Error(`the disk tests mount a tmpfs and need root: ${(err as Error).message}`);
    }
  }
  /** Writes up to `bytes`; running out of space first is the point, not a failure. */
  fill(bytes: number): string {
    const f = path.join(this.mountPoint, 'filler');
    try {
      writeFileSync(f, Buffer.alloc(bytes, 1));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
    }
    return f;
  }
  override async cleanup(): Promise<void> {
    await super.cleanup().catch(() => undefined);
    try {
      execFileSync('umount', ['-l', this.mountPoint]);
    } catch {
      // already gone
    }
    rmSync(this.root, { recursive: true, force: true });
  }
}

let dock: SmallDiskDock;
afterEach(async () => {
  await dock?.cleanup();
});

describe('disk guard', () => {
  it('pauses offloading below minFreeBytes, deletes nothing from the camera, and resumes when space returns', async () => {
    dock = new SmallDiskDock(24, { ingest: { minFreeBytes: 4_000_000 } });
    const filler = dock.fill(19_000_000);
    dock.dock('s1', {
      serial: 'DISK-1',
      files: [
        { rel: 'a.mp4', size: 3_000_000 },
        { rel: 'b.mp4', size: 2_000_000 },
      ],
    });
    const d = dock.start();
    const warn = await d.waitForEvent('ingest.disk_low');
    expect(warn.level).toBe(40);
    expect(warn.freeBytes).toBeLessThan(warn.requiredBytes as number);
    expect(warn.requiredBytes).toBeGreaterThanOrEqual(4_000_000);
    expect(warn.msg).toMatch(/bytes free/);
    await new Promise((r) => setTimeout(r, 1500));
    const recs = await dock.recordings();
    expect(recs.every((r) => r.status === 'pending' && !r.deletedFromCamera)).toBe(true);
    expect(dock.cameraFileExists('s1', 'a.mp4') && dock.cameraFileExists('s1', 'b.mp4')).toBe(true);
    expect((await dock.json<{ archive: { diskLow: boolean } }>(['status'])).archive.diskLow).toBe(true);

    rmSync(filler);
    const done = await allVerified(dock, 2);
    expect(done.every((r) => r.attempts === 1)).toBe(true);
    await d.waitForEvent('ingest.disk_ok');
  });

  // An encrypted copy is written by a worker thread of the seal pool, not by the copy loop.
  it.each([
    ['a plain copy', {}],
    ['an encrypted copy', { encryption: { recipients: [generateIdentity().recipient] } }],
  ])(
    'survives ENOSPC in the middle of %s (even SQLite full), keeps the recording on the camera and finishes once space returns',
    async (_kind, extra) => {
      dock = new SmallDiskDock(16, { ingest: { minFreeBytes: 0 }, ...extra });
      dock.dock('s1', {
        serial: 'DISK-2',
        files: [{ rel: 'long.mp4', size: 6_000_000 }],
        spec: { throughputBytesPerSec: 3_000_000 },
      });
      const d = dock.start();
      await d.waitForEvent('offload.started');
      await new Promise((r) => setTimeout(r, 700));
      // Leave room for SQLite's few pages but not for the rest of the recording.
      const free = (await dock.status()).archive.freeBytes;
      const filler = dock.fill(free - 600_000);
      await d.waitForEvent('ingest.disk_low');
      // The disk is full to the last byte: even SQLite cannot write. Nothing may leave the camera.
      await new Promise((r) => setTimeout(r, 1000));
      expect(dock.cameraFileExists('s1', 'long.mp4')).toBe(true);
      expect(d.child.exitCode).toBeNull();
      rmSync(filler);
      const [r] = await allVerified(dock, 1);
      expect(r!.sha256).toBe(dock.sources.get('DISK-2\nlong.mp4')!.sha256);
      expect(r!.attempts).toBe(1);
      const events = await dock.json<Array<{ type: string; details: Record<string, unknown> }>>([
        'custody',
        '--recording',
        r!.id,
      ]);
      expect(events.map((e) => e.type)).toContain('offload.interrupted');
    },
  );
});
