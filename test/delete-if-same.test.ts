/**
 * A deletion in the name of an archived copy removes only that copy's file: the check and the
 * removal must not leave the camera a moment to put new footage under the name unseen.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { interimName, statInside, unlinkInside } from '../drivers/file-tree.js';

let root: string;
afterEach(() => rmSync(root, { recursive: true, force: true }));

describe('deleting a recording only if it is still the one archived', () => {
  it('deletes the file that still has the identity it was archived with', async () => {
    root = mkdtempSync(path.join(os.tmpdir(), 'dockd-del-'));
    writeFileSync(path.join(root, 'REC0001.MP4'), 'old footage');
    const archived = (await statInside(Buffer.from(root), 'REC0001.MP4'))!;
    await unlinkInside(Buffer.from(root), 'REC0001.MP4', archived.identity);
    expect(readdirSync(root)).toEqual([]);
  });

  it('refuses, and leaves new footage under the name where it was, when the camera replaced the file', async () => {
    root = mkdtempSync(path.join(os.tmpdir(), 'dockd-del-'));
    writeFileSync(path.join(root, 'REC0001.MP4'), 'old footage');
    const archived = (await statInside(Buffer.from(root), 'REC0001.MP4'))!;
    writeFileSync(path.join(root, '.new'), 'new footage!');
    renameSync(path.join(root, '.new'), path.join(root, 'REC0001.MP4'));
    await expect(unlinkInside(Buffer.from(root), 'REC0001.MP4', archived.identity)).rejects.toMatchObject({
      kind: 'permanent',
      code: 'changed',
    });
    expect(readdirSync(root)).toEqual(['REC0001.MP4']);
    expect(readFileSync(path.join(root, 'REC0001.MP4'), 'utf8')).toBe('new footage!');
  });

  it('compares as the listing described the file: without the inode where the file system has none of its own (FAT)', async () => {
    root = mkdtempSync(path.join(os.tmpdir(), 'dockd-del-'));
    writeFileSync(path.join(root, 'REC0001.MP4'), 'old footage');
    const archived = (await statInside(Buffer.from(root), 'REC0001.MP4', false))!;
    expect(archived.identity.split(':')).toHaveLength(2);
    await unlinkInside(Buffer.from(root), 'REC0001.MP4', archived.identity, false);
    expect(readdirSync(root)).toEqual([]);
  });

  it('says the file is gone when it is', async () => {
    root = mkdtempSync(path.join(os.tmpdir(), 'dockd-del-'));
    await expect(unlinkInside(Buffer.from(root), 'REC0001.MP4', '1:2:3')).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('a deletion cut short between renaming the file away and unlinking it', () => {
  const walk = async (rootDir: string) => {
    const { walkTree } = await import('../drivers/file-tree.js');
    const listed: string[] = [];
    const w = {
      root: Buffer.from(rootDir),
      maxDepth: 4,
      classify: async (err: unknown) => {
        throw err;
      },
    };
    for await (const e of walkTree(w as never, Buffer.alloc(0))) listed.push(e.path);
    return listed;
  };

  it('is finished by the next listing when the interim file is still the archived copy, and not offloaded again', async () => {
    root = mkdtempSync(path.join(os.tmpdir(), 'dockd-del-'));
    writeFileSync(path.join(root, 'REC0001.MP4'), 'archived footage');
    const archived = (await statInside(Buffer.from(root), 'REC0001.MP4'))!;
    // What unlinkIfSame does before it is killed: the rename, and nothing after.
    const interim = interimName(archived.identity);
    renameSync(path.join(root, 'REC0001.MP4'), path.join(root, interim));
    expect(await walk(root)).toEqual([]);
    expect(readdirSync(root)).toEqual([]);
  });

  it('keeps, and lists as a recording, an interim file whose content is not the one the deletion was for', async () => {
    root = mkdtempSync(path.join(os.tmpdir(), 'dockd-del-'));
    writeFileSync(path.join(root, 'REC0001.MP4'), 'archived footage');
    const archived = (await statInside(Buffer.from(root), 'REC0001.MP4'))!;
    const interim = interimName(archived.identity);
    // The camera's new footage under the name, left at the interim name when it could not be linked back.
    writeFileSync(path.join(root, interim), 'new footage, longer than the old');
    expect((await walk(root)).sort()).toEqual(['REC0001.MP4', interim].sort());
    expect(readFileSync(path.join(root, interim), 'utf8')).toBe('new footage, longer than the old');
  });
});
