/**
 * A deletion from a camera is a fact custody must hold (invariant 4): while the store cannot take
 * a write (a full disk, a file system remounted read-only), dockd asks the camera to delete
 * nothing, and once the store takes writes again the deletion happens and is recorded as dockd's.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { simulatedDriver } from '../drivers/simulated/index.js';
import { cleanupAfterEach, dockInProcess, until } from './support/configuring-dock.js';

const cleanup = cleanupAfterEach();

describe('deleting from a camera while the store refuses writes', () => {
  it('leaves the recording on the camera until the store can record the deletion', async () => {
    const slot = mkdtempSync(path.join(os.tmpdir(), 'dockd-release-store-'));
    cleanup.push(() => rmSync(slot, { recursive: true, force: true }));
    const file = path.join(slot, 'REC0001.MP4');
    writeFileSync(file, randomBytes(20_000));
    // The first deletion fails, so the next one is due while the test holds the store read-only.
    const faults = [{ path: 'REC0001.MP4', kind: 'delete-error', times: 1 }];
    writeFileSync(path.join(slot, 'camera.json'), JSON.stringify({ serial: 'C-RO', faults }));
    const pc = dockInProcess(
      [simulatedDriver],
      { retry: { attempts: 10, baseDelayMs: 1500, maxDelayMs: 1500 } },
      cleanup,
    );
    pc.dock.attach({ bus: 'sim', key: 's1', slot: 's1', path: slot });

    await until('the first deletion to fail', () => pc.events('camera.file_delete_failed').length === 1);
    pc.db.pragma('query_only = ON');
    await until('the retried deletion to meet the read-only store', () => pc.events('ingest.error').length > 0);
    expect(existsSync(file)).toBe(true);

    pc.db.pragma('query_only = OFF');
    await until('the recording to leave the camera', () => !existsSync(file));
    await until('the deletion on record', () => [...pc.custody.all()].some((e) => e.type === 'camera.file_deleted'));
    const deleted = [...pc.custody.all()].filter((e) => e.type === 'camera.file_deleted');
    // dockd's own deletion, not a file found gone at a later visit.
    expect(deleted).toHaveLength(1);
    expect(deleted[0]!.details).not.toHaveProperty('alreadyGone');
  });
});
