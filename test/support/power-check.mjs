// Runs inside the QEMU guest of test/vm-power.test.ts, on the data dir that survived power cuts:
// what the database says and what the archive folder holds, for the host to judge. Plain
// JavaScript: the guest runs it with node straight from the read-only repository.
//
//   node test/support/power-check.mjs DATA_DIR   -> one JSON object on stdout
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';

const dataDir = process.argv[2];
const db = new Database(path.join(dataDir, 'dockd.db'));
db.pragma('busy_timeout = 5000');

function files(dir) {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  return entries.flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? files(p) : [p];
  });
}

const integrity = db.pragma('integrity_check', { simple: true });
const recordings = db
  .prepare(
    'SELECT id, camera, source_path sourcePath, status, sha256, archive_path archivePath, bytes, deleted_from_camera deletedFromCamera FROM recordings ORDER BY camera, source_path',
  )
  .all();
const verifiedEvents = db
  .prepare("SELECT recording, count(*) n FROM custody_events WHERE type = 'offload.verified' GROUP BY recording")
  .all();
const keyReplaced = db.prepare("SELECT count(*) n FROM custody_events WHERE type = 'custody.key_replaced'").get().n;
db.close();

// Sizes only: `dockd verify`, run next, re-hashes every archived file against the database.
const archive = files(path.join(dataDir, 'archive')).map((p) => ({ path: p, bytes: statSync(p).size }));
const staging = files(path.join(dataDir, 'staging'));
const keys = files(path.join(dataDir, 'keys')).map((p) => ({ path: p, bytes: statSync(p).size }));

process.stdout.write(
  JSON.stringify({ integrity, recordings, verifiedEvents, keyReplaced, archive, staging, keys }) + '\n',
);
