/**
 * Reading and writing the small files of a mass-storage camera that are not recordings (its
 * settings, time and event files), by their `/`-separated path on the volume. Reads are bounded
 * and never follow a link out of the volume; writes are atomic as far as the file system allows:
 * a temporary name in the same folder, written and flushed to the device, renamed over the file,
 * the file and then the folder flushed, so a camera pulled out (or a dock losing power) at any
 * moment holds either the old file whole or the new one whole.
 */
import { constants } from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';
import { DriverError } from '../types.js';
import { joinBytes, openInside, resolveInside } from '../file-tree.js';

async function syncPath(p: Buffer, flags: number): Promise<void> {
  const handle = await open(p, constants.O_RDONLY | flags);
  try {
    await handle.sync();
  } finally {
    await handle.close().catch(() => undefined);
  }
}

/**
 * Writes a folder's entries through to the device. An unlink lives in this machine's page cache
 * until then; on vfat, fsync of the folder writes its entry and the allocation table and flushes
 * the disk (fat_file_fsync), so a camera pulled out a moment later no longer holds the file.
 */
export function syncDirectory(dir: Buffer): Promise<void> {
  return syncPath(dir, constants.O_DIRECTORY);
}

export interface CameraFileRead {
  bytes: Buffer;
  /** The file's size; more than `bytes.length` when only its end was read. */
  size: number;
}

/**
 * The file's bytes, at most `maxBytes` of them: a bigger file is refused (a `permanent` error of
 * code `too-big`), or with `tail` only its last `maxBytes` are read. File system errors are
 * thrown as they come, for the caller to classify.
 */
export async function readCameraFile(
  root: Buffer,
  rel: string,
  maxBytes: number,
  opts: { tail?: boolean } = {},
): Promise<CameraFileRead> {
  const { handle, size } = await openInside(root, rel);
  try {
    if (size > maxBytes && !opts.tail)
      throw new DriverError('permanent', 'too-big', `${rel} holds ${size} bytes, more than the ${maxBytes} it may`);
    const want = Math.min(size, maxBytes);
    const bytes = Buffer.alloc(want);
    let got = 0;
    while (got < want) {
      const { bytesRead } = await handle.read(bytes, got, want - got, size - want + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return { bytes: bytes.subarray(0, got), size };
  } finally {
    await handle.close().catch(() => undefined);
  }
}

export interface AtomicWriteHooks {
  /** Called once the temporary file is written and flushed, before it is renamed (tests: a crash there). */
  beforeRename?(): Promise<void> | void;
}

/** The temporary name beside a file: a dot name, which no listing takes for a recording. */
export function temporaryName(name: Buffer): Buffer {
  return Buffer.concat([Buffer.from('.'), name, Buffer.from('.dockd')]);
}

/**
 * Replaces the file `rel` by `data`: temporary name in the same folder, write, fsync, rename,
 * fsync the folder. A temporary file a crash left behind is written over by the next write, never
 * taken for anything. Then reads the file back and rejects (`permanent`, `readback`) unless it
 * holds `data`.
 */
export async function writeCameraFile(
  root: Buffer,
  rel: string,
  data: Buffer,
  hooks: AtomicWriteHooks = {},
): Promise<void> {
  const { file, folder } = await resolveInside(root, rel);
  const temp = joinBytes(folder, temporaryName(file.subarray(folder.length + 1)));
  const handle = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW);
  // The file being replaced, held open across the rename: vfat frees its clusters only once
  // nothing holds it, which must wait until the entry naming the new ones is on the device.
  const replaced = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK).catch(() => null);
  let renamed = false;
  try {
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await hooks.beforeRename?.();
    await rename(temp, file);
    renamed = true;
    // On vfat the folder holds the temporary name's removal, while the entry under the file's
    // name (its size and first cluster) is written with the file: first the one, so that no two
    // entries ever name the new clusters, then the other, while the old clusters are still held.
    await syncDirectory(folder);
    await syncPath(file, constants.O_NOFOLLOW);
  } finally {
    await replaced?.close().catch(() => undefined);
    if (!renamed) await unlink(temp).catch(() => undefined);
  }
  // Only now the old clusters' release.
  await syncDirectory(folder);
  const back = await readCameraFile(root, rel, data.length + 1);
  if (!back.bytes.equals(data))
    throw new DriverError(
      'permanent',
      'readback',
      `${rel} does not hold what was written to it (read back ${back.size} bytes)`,
    );
}
