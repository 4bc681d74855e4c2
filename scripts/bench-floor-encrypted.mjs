#!/usr/bin/env node
/**
 * The floor of the encrypted benchmark run (fe): what encryption at rest costs on top of the
 * invariants with nothing around it. Each camera folder of SRC gets a thread of its own that
 * copies it file by file into DEST as age files for RECIPIENT: read, SHA-256 of the plaintext,
 * ChaCha20-Poly1305 per 64 KiB chunk (the age STREAM), write; then fsync, re-read the stored
 * file, hash it and check every chunk's tag under the payload key (so it is the file sealed),
 * rename. One reused read buffer and one write buffer per thread, blocking I/O, no messages
 * between threads, no SQLite, no driver. The header, the sealing of each chunk and the tag
 * check are dockd's own age code (dist/: build first); the rest is here. Prints `SHA256  camera/path` of
 * each plaintext, the way sha256sum does; exits 1 on a mismatch.
 *
 *   node scripts/bench-floor-encrypted.mjs SRC DEST RECIPIENT
 */
import {
  closeSync,
  fstatSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readSync,
  renameSync,
  writeSync,
} from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';

const READ = 1024 * 1024;
const CHUNK = 64 * 1024;
const TAG = 16;
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function walk(dir, rel = '') {
  const out = [];
  for (const e of readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...walk(dir, r));
    else if (e.isFile() && r !== 'camera.json') out.push(r);
  }
  return out.sort();
}

/** SHA-256 of the stored file, and what storedAgeCheck finds wrong with it (null: nothing). */
function rehash(file, buf, check) {
  const h = createHash('sha256');
  const fd = openSync(file, 'r');
  try {
    for (let pos = 0; ;) {
      const n = readSync(fd, buf, 0, buf.length, pos);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
      check.feed(buf.subarray(0, n));
      pos += n;
    }
  } finally {
    closeSync(fd);
  }
  return { sha256: h.digest('hex'), problem: check.problem() };
}

function writeAll(fd, buf, position) {
  for (let off = 0; off < buf.length;) {
    const n = writeSync(fd, buf, off, buf.length - off, position + off);
    if (n === 0) throw new Error('the staging file accepted no bytes');
    off += n;
  }
  return buf.length;
}

async function copyCamera({ src, dest, camera, recipient }) {
  const dist = (m) => import(pathToFileURL(path.join(ROOT, 'dist', 'src', 'crypto', m)).href);
  const { startAgeFile } = await dist('age.js');
  const { sealStreamChunk, storedAgeCheck } = await dist('age-stream.js');
  const { chunkAead } = await dist('aead.js');
  const from = path.join(src, camera);
  const to = path.join(dest, camera);
  mkdirSync(to, { recursive: true });
  const buf = Buffer.allocUnsafe(READ);
  const sealed = Buffer.allocUnsafe((READ / CHUNK) * (CHUNK + TAG));
  const lines = [];
  for (const rel of walk(from)) {
    const staging = path.join(to, `${rel.replaceAll('/', '_')}.age.part`);
    const { prefix, key } = startAgeFile([recipient]);
    const input = openSync(path.join(from, rel), 'r');
    const output = openSync(staging, 'w');
    const plain = createHash('sha256');
    const size = fstatSync(input).size;
    let written = writeAll(output, prefix, 0);
    let counter = 0;
    // The size is known here, so the final chunk is known without holding one back.
    for (let pos = 0; pos < size || counter === 0;) {
      const n = size === 0 ? 0 : readSync(input, buf, 0, READ, pos);
      if (n === 0 && size > 0) throw new Error(`${rel} ended at ${pos} of ${size} bytes`);
      const data = buf.subarray(0, n);
      plain.update(data);
      let used = 0;
      for (let at = 0; at < n || (n === 0 && counter === 0); at += CHUNK) {
        const piece = data.subarray(at, Math.min(at + CHUNK, n));
        used += sealStreamChunk(
          chunkAead,
          key,
          counter++,
          pos + at + piece.length === size,
          piece,
          sealed.subarray(used),
        );
      }
      written += writeAll(output, sealed.subarray(0, used), written);
      pos += n;
    }
    closeSync(input);
    fsyncSync(output);
    closeSync(output);
    const { problem } = rehash(staging, buf, storedAgeCheck(chunkAead, key, prefix, written));
    key.fill(0);
    if (problem !== null) throw new Error(`re-read of ${staging}: ${problem}`);
    renameSync(staging, staging.slice(0, -'.part'.length));
    lines.push(`${plain.digest('hex')}  ${camera}/${rel}`);
  }
  return lines;
}

if (!isMainThread) {
  copyCamera(workerData).then(
    (lines) => parentPort.postMessage({ lines }),
    (err) => parentPort.postMessage({ error: err instanceof Error ? err.message : String(err) }),
  );
} else {
  const [src, dest, recipient] = process.argv.slice(2);
  if (!src || !dest || !recipient) {
    process.stderr.write('usage: node scripts/bench-floor-encrypted.mjs SRC DEST RECIPIENT\n');
    process.exit(2);
  }
  const cameras = readdirSync(src, { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => e.name);
  const results = await Promise.all(
    cameras.map(
      (camera) =>
        new Promise((resolve, reject) => {
          const w = new Worker(fileURLToPath(import.meta.url), { workerData: { src, dest, camera, recipient } });
          w.once('message', (m) => (m.error ? reject(new Error(m.error)) : resolve(m.lines)));
          w.once('error', reject);
        }),
    ),
  ).catch((err) => {
    process.stderr.write(`bench-floor-encrypted: ${err.message}\n`);
    process.exit(1);
  });
  process.stdout.write(results.flat().join('\n') + '\n');
}
