#!/usr/bin/env node
/**
 * age encryption throughput: dockd's encrypt stream against a plain copy through a PassThrough
 * and against the age-encryption package, on the same data in the same run, so the ratios hold
 * on any machine. Runs are interleaved and the best of each kind is kept.
 *
 *   npm run build && node scripts/bench-age.mjs [--mib 256] [--runs 3]
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createHash, randomBytes } from 'node:crypto';
import { PassThrough, Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ReadableStream } from 'node:stream/web';
import { parseArgs } from 'node:util';
import * as npmAge from 'age-encryption';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const LIB = path.join(ROOT, 'dist', 'src', 'crypto', 'age.js');
const MIB = 1024 * 1024;
// The size of a file read stream's pieces, and of an age chunk.
const PIECE = 64 * 1024;

const { values } = parseArgs({
  options: { mib: { type: 'string', default: '256' }, runs: { type: 'string', default: '3' } },
});
const total = Number(values.mib) * MIB;
const runs = Number(values.runs);
if (!(total > 0) || !(runs >= 1)) {
  process.stderr.write('usage: node scripts/bench-age.mjs [--mib N] [--runs N]\n');
  process.exit(2);
}
if (!existsSync(LIB)) {
  process.stderr.write(`bench-age: ${path.relative(ROOT, LIB)} is missing; run \`npm run build\` first\n`);
  process.exit(2);
}
const age = await import(pathToFileURL(LIB).href);

// Random so nothing compresses or short-cuts; a pool reused so generating it costs nothing.
const pool = randomBytes(16 * MIB);
function* pieces(bytes) {
  for (let at = 0; at < bytes; at += PIECE) {
    const from = at % pool.length;
    yield pool.subarray(from, from + Math.min(PIECE, bytes - at));
  }
}

function countingSink() {
  const sink = new Writable({
    write(chunk, _enc, cb) {
      sink.bytes += chunk.length;
      cb();
    },
  });
  sink.bytes = 0;
  return sink;
}

// The archive hashes the plaintext going in and the ciphertext coming out; a PassThrough alone
// never touches the bytes, so this pair shows what encryption costs in that pipeline.
function hashing() {
  const hash = createHash('sha256');
  return new Transform({
    transform(chunk, _enc, cb) {
      hash.update(chunk);
      cb(null, chunk);
    },
    flush(cb) {
      hash.digest();
      cb();
    },
  });
}

async function timeNode(bytes, ...transforms) {
  const sink = countingSink();
  const start = performance.now();
  await pipeline(Readable.from(pieces(bytes), { objectMode: false }), ...transforms, sink);
  return { seconds: (performance.now() - start) / 1000, bytes: sink.bytes };
}

async function timeNpm(bytes, recipient) {
  const it = pieces(bytes);
  const source = new ReadableStream({
    pull(controller) {
      const next = it.next();
      if (next.done) controller.close();
      else controller.enqueue(next.value);
    },
  });
  const start = performance.now();
  const e = new npmAge.Encrypter();
  e.addRecipient(recipient);
  const reader = (await e.encrypt(source)).getReader();
  let produced = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    produced += value.length;
  }
  return { seconds: (performance.now() - start) / 1000, bytes: produced };
}

const { identity, recipient } = age.generateIdentity();
const expected = age.encryptedSize(total, 1);
const kinds = {
  copy: (bytes) => timeNode(bytes, new PassThrough()),
  ours: (bytes) => timeNode(bytes, age.createEncryptStream([recipient])),
  hashedCopy: (bytes) => timeNode(bytes, hashing(), new PassThrough(), hashing()),
  hashedOurs: (bytes) => timeNode(bytes, hashing(), age.createEncryptStream([recipient]), hashing()),
  roundTrip: (bytes) => timeNode(bytes, age.createEncryptStream([recipient]), age.createDecryptStream([identity])),
  npm: (bytes) => timeNpm(bytes, recipient),
};
const expectedBytes = {
  copy: total,
  ours: expected,
  hashedCopy: total,
  hashedOurs: expected,
  roundTrip: total,
  npm: expected,
};
const best = {};
// Untimed, so that the first timed run is not also the one that warms up the JIT.
for (const fn of Object.values(kinds)) await fn(16 * MIB);
for (let r = 0; r < runs; r++) {
  for (const [kind, fn] of Object.entries(kinds)) {
    const { seconds, bytes } = await fn(total);
    if (bytes !== expectedBytes[kind]) {
      process.stderr.write(`bench-age: ${kind} produced ${bytes} bytes, expected ${expectedBytes[kind]}\n`);
      process.exit(1);
    }
    const rate = total / MIB / seconds;
    best[kind] = Math.max(best[kind] ?? 0, rate);
  }
}

const row = (label, rate, note = '') => `  ${label.padEnd(34)}${rate.toFixed(0).padStart(7)} MiB/s${note}`;
process.stdout.write(
  [
    `age X25519 encryption of ${values.mib} MiB in ${PIECE / 1024} KiB writes, best of ${runs} (Node ${process.version})`,
    row('copy through a PassThrough', best.copy),
    row('dockd encrypt stream', best.ours, `   ${(best.ours / best.copy).toFixed(2)}× copy`),
    row('PassThrough, SHA-256 in and out', best.hashedCopy),
    row(
      'dockd encrypt, SHA-256 in and out',
      best.hashedOurs,
      `   ${(best.hashedOurs / best.hashedCopy).toFixed(2)}× hashed copy`,
    ),
    row('dockd encrypt → decrypt', best.roundTrip),
    row('age-encryption package encrypt', best.npm),
    `  dockd encrypt vs age-encryption package: ${(best.ours / best.npm).toFixed(1)}×`,
    '',
  ].join('\n'),
);
