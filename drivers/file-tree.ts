/**
 * A camera whose storage is a folder tree on this machine (a simulated slot, a mounted volume):
 * listing, opening and deleting its files by their raw names (Buffer paths, so a name that is not
 * UTF-8 is still found), never following a link and never leaving the tree's root.
 */
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { link, lstat, open, opendir, readlink, realpath, rename, unlink, type FileHandle } from 'node:fs/promises';
import type { BigIntStats } from 'node:fs';
import { bytesFromName, nameFromBytes } from './camera-names.js';
import { DriverError, type ListOptions, type RecordingEntry, type UnreadableReason } from './types.js';

const SLASH = 0x2f;
const DOT = 0x2e;

/** Joins raw path parts with `/`. */
export function joinBytes(...parts: Buffer[]): Buffer {
  const out: Buffer[] = [];
  for (const p of parts) {
    if (out.length > 0) out.push(Buffer.of(SLASH));
    out.push(p);
  }
  return Buffer.concat(out);
}

/** `p` is `root` or below it; both are resolved paths. */
export function insideRoot(root: Buffer, p: Buffer): boolean {
  if (p.equals(root)) return true;
  const base = root.at(-1) === SLASH ? root : Buffer.concat([root, Buffer.of(SLASH)]);
  return p.length > base.length && p.subarray(0, base.length).equals(base);
}

export interface TreeWalk extends ListOptions {
  /** The tree's root folder, resolved by realpath. */
  root: Buffer;
  /** Folders below a starting folder that are still listed; deeper ones are reported `too-deep`. */
  maxDepth: number;
  /** Names in a starting folder that belong to the camera and are not footage (camera.json). */
  notFootage?(name: Buffer): boolean;
  /** Turns a file system error into a DriverError; `permanent` ones are reported, others end the listing. */
  classify(err: unknown, what: string): Promise<DriverError>;
  /** Whether a file keeps its inode number from one mount to the next (true); see entryOf. */
  stableInodes?: boolean;
}

/**
 * Every regular file below `start` (a raw path relative to the root; empty = the root itself),
 * except names starting with "." and what `notFootage` claims. A starting folder that does not
 * exist lists as empty.
 */
export async function* walkTree(w: TreeWalk, start: Buffer): AsyncGenerator<RecordingEntry> {
  if (start.length > 0) {
    let st: BigIntStats;
    try {
      st = await lstat(joinBytes(w.root, start), { bigint: true });
    } catch (err) {
      const e = await w.classify(err, `cannot list ${shown(start)}`);
      // A starting folder the camera does not have is an empty folder, not a fault.
      if (e.kind === 'permanent' && (e.code === 'ENOENT' || e.code === 'ENOTDIR')) return;
      throw e;
    }
    if (st.isSymbolicLink()) return report(w, start, 'symlink');
    if (!st.isDirectory()) return;
  }
  yield* walkFolder(w, start, 0);
}

async function* walkFolder(w: TreeWalk, rel: Buffer, depth: number): AsyncGenerator<RecordingEntry> {
  const abs = rel.length > 0 ? joinBytes(w.root, rel) : w.root;
  let dir;
  try {
    // A folder swapped for a link after its lstat would be followed by opendir: check where it is.
    if (rel.length > 0 && !insideRoot(w.root, await realpath(abs, { encoding: 'buffer' })))
      return report(w, rel, 'outside');
    // Node's types leave 'buffer' out, but opendir honours it: entry names come as raw bytes.
    dir = await opendir(abs, { encoding: 'buffer' as BufferEncoding });
  } catch (err) {
    const e = await w.classify(err, `cannot list ${shown(rel)}`);
    if (e.kind !== 'permanent' || rel.length === 0) throw e;
    return report(w, rel, e.code === 'ENOENT' ? 'vanished' : 'unreadable', e.code);
  }
  try {
    for await (const ent of dir) {
      const name = ent.name as unknown as Buffer;
      if (name[0] === DOT || (depth === 0 && w.notFootage?.(name))) continue;
      const child = rel.length > 0 ? joinBytes(rel, name) : name;
      // lstat even when the listing gave a type: some file systems give none, and a link is never followed.
      const st = await lstatOrReport(w, child);
      if (!st) continue;
      if (st.isSymbolicLink()) {
        report(w, child, 'symlink');
      } else if (st.isDirectory()) {
        if (depth >= w.maxDepth) report(w, child, 'too-deep');
        else yield* walkFolder(w, child, depth + 1);
      } else if (st.isFile()) {
        const entry = entryOf(nameFromBytes(child), st, w.stableInodes);
        if (await finishedInterruptedDeletion(w, child, name, entry)) continue;
        yield entry;
      } else {
        report(w, child, 'not-a-file');
      }
    }
  } catch (err) {
    throw await w.classify(err, `cannot list ${shown(rel)}`);
  }
}

async function lstatOrReport(w: TreeWalk, rel: Buffer): Promise<BigIntStats | null> {
  try {
    return await lstat(joinBytes(w.root, rel), { bigint: true });
  } catch (err) {
    const e = await w.classify(err, `cannot stat ${shown(rel)}`);
    if (e.kind !== 'permanent') throw e;
    report(w, rel, e.code === 'ENOENT' ? 'vanished' : 'unreadable', e.code);
    return null;
  }
}

function report(w: TreeWalk, rel: Buffer, reason: UnreadableReason, code?: string): void {
  w.onUnreadable?.({ path: nameFromBytes(rel), reason, ...(code ? { code } : {}) });
}

function shown(rel: Buffer): string {
  return rel.length > 0 ? nameFromBytes(rel) : '/';
}

function badId(id: unknown, why: string): DriverError {
  return new DriverError('permanent', 'bad-id', `${why}: ${JSON.stringify(String(id)).slice(0, 300)}`);
}

/**
 * The absolute raw path of a recording id, its folder resolved by realpath and checked to be
 * inside the root, so a folder replaced by a link since the listing leads nowhere else.
 * File system errors are thrown as they come, for the caller to classify.
 */
export async function resolveInside(root: Buffer, id: string): Promise<{ file: Buffer; folder: Buffer }> {
  const raw = bytesFromName(id);
  if (!raw) throw badId(id, 'not a recording id');
  const parts: Buffer[] = [];
  for (let from = 0; from <= raw.length;) {
    const to = raw.indexOf(SLASH, from);
    const end = to < 0 ? raw.length : to;
    parts.push(raw.subarray(from, end));
    from = end + 1;
  }
  const bad = (p: Buffer) =>
    p.length === 0 || p.includes(0) || p.equals(Buffer.from('.')) || p.equals(Buffer.from('..'));
  if (parts.some(bad)) throw badId(id, 'not a recording id');
  const folder =
    parts.length > 1 ? await realpath(joinBytes(root, ...parts.slice(0, -1)), { encoding: 'buffer' }) : root;
  if (!insideRoot(root, folder)) throw badId(id, 'recording id leads outside the camera');
  return { file: joinBytes(folder, parts.at(-1)!), folder };
}

/**
 * Opens a recording for reading: never through a link (O_NOFOLLOW), never blocking on a FIFO
 * swapped in (O_NONBLOCK; no effect on a regular file), and only a regular file that is, once
 * open, still inside the root as the kernel sees it (/proc/self/fd, where there is one).
 */
export async function openInside(root: Buffer, id: string): Promise<{ handle: FileHandle; size: number }> {
  const { file } = await resolveInside(root, id);
  const handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw new DriverError('permanent', 'not-a-file', `${id} is not a file`);
    const where = await readlink(`/proc/self/fd/${handle.fd}`, { encoding: 'buffer' }).catch(() => null);
    if (where && !insideRoot(root, where)) throw badId(id, 'recording id leads outside the camera');
    return { handle, size: st.size };
  } catch (err) {
    await handle.close().catch(() => undefined);
    throw err;
  }
}

/**
 * Removes a recording's file (never a link's target: unlink does not follow the last name, and
 * the folder was resolved inside the root). Returns the folder it was in, for a caller that must
 * sync it. A link swapped in between the check and the unlink is the one race left open; Node
 * has no unlinkat to close it.
 */
export async function unlinkInside(root: Buffer, id: string, identity?: string, stableInodes = true): Promise<Buffer> {
  const { file, folder } = await resolveInside(root, id);
  if (identity !== undefined) return unlinkIfSame(file, folder, id, identity, stableInodes);
  if (!(await lstat(file)).isFile()) throw new DriverError('permanent', 'not-a-file', `${id} is not a file`);
  await unlink(file);
  return folder;
}

let grabs = 0;
/**
 * Interim names of the deletions this process has under way. A listing made meanwhile (the
 * camera relisted while another file is deleted) leaves them alone: they are not leftovers.
 */
const underWay = new Set<string>();

/** The interim name of a file being deleted: it carries a digest of the identity it must have. */
const INTERIM = /^~dockd-deleting-\d+-\d+-([0-9a-f]{16})$/;

export function interimName(identity: string): string {
  return `~dockd-deleting-${process.pid}-${++grabs}-${identityTag(identity)}`;
}

function identityTag(identity: string): string {
  return createHash('sha256').update(identity).digest('hex').slice(0, 16);
}

/**
 * A file under an interim name whose identity is still the one the name carries is the archived
 * copy a deletion was removing when the dock lost power or was killed: the listing finishes that
 * deletion instead of offloading the same content again. Anything else under such a name (the
 * camera's new footage that could not be linked back, a file changed since) is listed, and kept.
 */
async function finishedInterruptedDeletion(
  w: TreeWalk,
  rel: Buffer,
  name: Buffer,
  entry: RecordingEntry,
): Promise<boolean> {
  const m = INTERIM.exec(name.toString('latin1'));
  if (m && underWay.has(name.toString('latin1'))) return true;
  if (!m || identityTag(entry.identity) !== m[1]) return false;
  try {
    await unlink(joinBytes(w.root, rel));
    return true;
  } catch (err) {
    // Gone already: nothing to list. A read-only volume, say: offloading it again loses nothing.
    return (err as NodeJS.ErrnoException).code === 'ENOENT';
  }
}

/**
 * Deletes the file only if it is still the one with `identity`. A check followed by an unlink
 * would leave a window in which the camera could put new footage under the name, to be deleted
 * unseen; instead the file is first renamed away (atomic: whatever is under the name now is what
 * gets checked), then unlinked if it is the expected one, else linked back without replacing
 * anything that appeared meanwhile. A dock that loses power half-way finds the interim name at its
 * next listing: the archived copy it carries is deleted then (see finishedInterruptedDeletion),
 * anything else is listed as a recording of its own.
 */
async function unlinkIfSame(
  file: Buffer,
  folder: Buffer,
  id: string,
  identity: string,
  stableInodes: boolean,
): Promise<Buffer> {
  // Short (under 60 bytes), so that it fits beside a name already at the file system's limit.
  const interim = interimName(identity);
  const grab = joinBytes(folder, Buffer.from(interim));
  underWay.add(interim);
  try {
    await rename(file, grab);
    const st = await lstat(grab, { bigint: true });
    // Described as the listing described it, or a FAT file (no inode of its own) never matches.
    if (st.isFile() && entryOf(id, st, stableInodes).identity === identity) {
      await unlink(grab);
      return folder;
    }
    try {
      await link(grab, file);
      await unlink(grab);
    } catch (err) {
      // Something new took the name meanwhile: the file stays under the interim name, listed anew.
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    throw new DriverError('permanent', 'changed', `${id} is no longer the file that was archived; not deleted`);
  } finally {
    underWay.delete(interim);
  }
}

/**
 * A file's identity in a tree: a file written again in place changes its size or modification
 * time (kept to the nanosecond where the file system has it; FAT keeps 2 s), one renamed over it
 * has another inode. The listing and `statInside` describe a file the same way.
 *
 * Without `stableInodes` the inode is left out: Linux numbers vfat and exFAT files afresh at
 * every mount, so a camera docked again would show every file it kept as other content.
 */
export function entryOf(id: string, st: BigIntStats, stableInodes = true): RecordingEntry {
  const bytes = Number(st.size);
  const identity = stableInodes ? `${bytes}:${st.mtimeNs}:${st.ino}` : `${bytes}:${st.mtimeNs}`;
  return { id, path: id, bytes, modifiedAt: new Date(Number(st.mtimeMs)), identity };
}

/** What the tree holds under a recording id now, as the listing describes it; null when it holds no file there. */
export async function statInside(root: Buffer, id: string, stableInodes = true): Promise<RecordingEntry | null> {
  let st: BigIntStats;
  try {
    const { file } = await resolveInside(root, id);
    st = await lstat(file, { bigint: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw err;
  }
  return st.isFile() ? entryOf(id, st, stableInodes) : null;
}
