/**
 * Files and folders that must still be there after a power cut. A rename or a new entry lives in
 * the folder that holds it, so a file is durable only once its data and that folder are fsynced;
 * the kernel's page cache survives `kill -9` but not the machine stopping.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';

export function fsyncDirSync(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** The name a file is written under before it is renamed into place; never read as the real one. */
export function temporaryName(file: string): string {
  return `${file}.tmp`;
}

/**
 * Writes `data` under a temporary name, fsyncs it, renames it over `file` and fsyncs the folder:
 * after a cut, `file` is either absent (or as it was) or whole, never empty or half-written.
 */
export function writeFileDurably(file: string, data: string | Buffer, mode = 0o644): void {
  const tmp = temporaryName(file);
  rmSync(tmp, { force: true });
  const fd = openSync(tmp, 'wx', mode);
  try {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    for (let done = 0; done < bytes.length;) done += writeSync(fd, bytes, done, bytes.length - done);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
  fsyncDirSync(path.dirname(file));
}

/**
 * mkdir -p whose new folders survive a cut: each created folder's entry lives in its parent, so
 * every parent of one is fsynced. A folder that already existed costs nothing.
 */
export function mkdirDurably(dir: string, mode = 0o750): void {
  const first = mkdirSync(dir, { recursive: true, mode });
  if (first === undefined) return;
  for (const d of createdChain(first, dir)) fsyncDirSync(path.dirname(d));
}

/** The folders mkdir -p made, from the first created one down to `dir`. */
export function createdChain(first: string, dir: string): string[] {
  const chain: string[] = [];
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    chain.unshift(d);
    if (d === path.resolve(first) || d === path.dirname(d)) break;
  }
  return chain;
}
