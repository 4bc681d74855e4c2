#!/usr/bin/env node
/**
 * The floor of the encrypted benchmark run (fe): what encryption at rest costs on top of the
 * invariants with nothing around it. Each camera folder of SRC gets a thread of its own that
 * copies it file by file into DEST as age files for RECIPIENT: read, SHA-256 of the plaintext,
 * ChaCha20-Poly1305 per 64 KiB chunk (the age STREAM), SHA-256 of the ciphertext, write; then
 * fsync, re-read and hash the stored file and compare, rename. One reused read buffer per thread,
 * blocking I/O, no messages between threads, no SQLite, no driver. The header and the sealing of
 * each chunk are dockd's own age code (dist/: build first); the rest is here. Prints `SHA256  camera/path` of
 * each plaintext, the way sha256sum does; exits 1 on a mismatch.
 *
 *   node scripts/bench-floor-encrypted.mjs SRC DEST RECIPIENT
 */
import { closeSync, fstatSync, fsyncSync, mkdirSync, openSync, readdirSync, readSync, renameSync, writevSync } from 'node:fs';
import { createCipheriv, createHash } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';

const READ = 1024 * 1024;
const CHUNK = 64 * 1024;
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

function sha256Of(file, buf) {
  const h = createHash('sha256');
  const fd = openSync(file, 'r');
  try {
    for (let pos = 0; ; ) {
      const n = readSync(fd, buf, 0, buf.length, pos);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
      pos += n;
    }
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}

async function copyCamera({ src, dest, camera, recipient }) {
  const dist = (m) => import(pathToFileURL(path.join(ROOT, 'dist', 'src', 'crypto', m)).href);
  const { startAgeFile } = await dist('age.js');
  const { sealStreamChunk } = await dist('age-stream.js');
  const from = path.join(src, camera);
  const to = path.join(dest, camera);
  mkdirSync(to, { recursive: true });
  const buf = Buffer.allocUnsafe(READ);
  const lines = [];
  for (const rel of walk(from)) {
    const staging = path.join(to, `${rel.replaceAll('/', '_')}.age.part`);
    const { prefix, key } = startAgeFile([recipient]);
    const input = openSync(path.join(from, rel), 'r');
    const output = openSync(staging, 'w');
    const plain = createHash('sha256');
    const stored = createHash('sha256').update(prefix);
    const size = fstatSync(input).size;
    let out = [prefix];
    let written = 0;
    let counter = 0;
    const put = (piece) => {
      stored.update(piece);
      out.push(piece);
    };
    // The size is known here, so the final chunk is known without holding one back.
    for (let pos = 0; pos < size || counter === 0; ) {
      const n = size === 0 ? 0 : readSync(input, buf, 0, READ, pos);
      if (n === 0 && size > 0) throw new Error(`${rel} ended at ${pos} of ${size} bytes`);
      const data = buf.subarray(0, n);
      plain.update(data);
      for (let at = 0; at < n || (n === 0 && counter === 0); at += CHUNK) {
        const piece = data.subarray(at, Math.min(at + CHUNK, n));
        for (const sealed of sealStreamChunk(createCipheriv, key, counter++, pos + at + piece.length === size, piece)) put(sealed);
      }
      pos += n;
      const want = out.reduce((sum, b) => sum + b.length, 0);
      if (writevSync(output, out, written) !== want) throw new Error(`short write to ${staging}`);
      written += want;
      out = [];
    }
    closeSync(input);
    fsyncSync(output);
    closeSync(output);
    const storedSha256 = stored.digest('hex');
    if (sha256Of(staging, buf) !== storedSha256) throw new Error(`re-read of ${staging} does not match`);
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
