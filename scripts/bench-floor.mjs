#!/usr/bin/env node
/**
 * The floor of the offload benchmark: only what dockd's invariants demand, with nothing around
 * them. Each camera folder of SRC is copied file by file into DEST, SHA-256 computed in the copy
 * pass, the copy fsynced, re-read and hashed again by dockd's own hash pool (from dist/: build
 * first) and compared, then renamed into place; cameras run in parallel, and the next file's read
 * overlaps the previous file's fsync and re-read, as dockd's pipeline does. One reused buffer per
 * stream, no SQLite, no custody, no driver. Prints one line per file, `SHA256  camera/path`
 * relative to SRC, the way sha256sum does, so the bench checks it like the others; exits 1 on a
 * mismatch.
 *
 *   node scripts/bench-floor.mjs SRC DEST
 */
import { mkdir, open, readdir, rename } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const CHUNK = 1024 * 1024;
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const [src, dest] = process.argv.slice(2);
if (!src || !dest) {
  process.stderr.write('usage: node scripts/bench-floor.mjs SRC DEST\n');
  process.exit(2);
}

// dockd's own verification re-read (src/archive/hash-pool.ts, from dist/): the floor and dockd
// check a copy the same way, so what separates them is everything else.
const { HashPool } = await import(pathToFileURL(path.join(ROOT, 'dist', 'src', 'archive', 'hash-pool.js')).href);
const pool = new HashPool();

async function walk(dir, rel = '') {
  const out = [];
  for (const e of await readdir(path.join(dir, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await walk(dir, r)));
    else if (e.isFile() && r !== 'camera.json') out.push(r);
  }
  return out.sort();
}

async function copyCamera(camera) {
  const from = path.join(src, camera);
  const to = path.join(dest, camera);
  await mkdir(to, { recursive: true });
  const buf = Buffer.allocUnsafe(CHUNK);
  const lines = [];
  let previous = Promise.resolve();
  for (const rel of await walk(from)) {
    const staging = path.join(to, `${rel.replaceAll('/', '_')}.part`);
    const input = await open(path.join(from, rel), 'r');
    const output = await open(staging, 'w');
    const hash = createHash('sha256');
    for (let pos = 0; ;) {
      const { bytesRead } = await input.read(buf, 0, CHUNK, pos);
      if (bytesRead === 0) break;
      hash.update(buf.subarray(0, bytesRead));
      await output.write(buf, 0, bytesRead, pos);
      pos += bytesRead;
    }
    await input.close();
    const sha256 = hash.digest('hex');
    const finish = (async () => {
      await output.sync();
      await output.close();
      if ((await pool.hashFile(staging)).sha256 !== sha256) throw new Error(`re-read of ${staging} does not match`);
      await rename(staging, staging.slice(0, -'.part'.length));
      lines.push(`${sha256}  ${camera}/${rel}`);
    })();
    await previous;
    previous = finish;
  }
  await previous;
  return lines;
}

try {
  const cameras = (await readdir(src, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name);
  const results = await Promise.all(cameras.map(copyCamera));
  process.stdout.write(results.flat().join('\n') + '\n');
} catch (err) {
  process.stderr.write(`bench-floor: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
} finally {
  await pool.close();
}
