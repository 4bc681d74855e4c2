/**
 * A store with history for the fleet run (z) of the benchmark: what a dock holds after months of
 * service, made in seconds instead of months of offloading. It goes through dockd's own code from
 * dist/ (the migrations, the custody log's hash chain), so the daemon and `dockd status` meet the
 * same tables, indexes and chain they would: cameras that have docked before, recordings that
 * were verified and deleted from their camera (three custody events and a done release job each,
 * as the engine leaves them), a month of battery samples per camera and the battery verdict of its last docking. The archive files of that history are not made:
 * neither the daemon's start nor `status` reads them.
 *
 *   import { seedHistory } from './bench-seed.mjs'
 */
import { createHash, randomUUID } from 'node:crypto';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT } from './bench-lib.mjs';

const dist = (m) => import(pathToFileURL(path.join(ROOT, 'dist', 'src', m)).href);

/** Battery samples per camera: a month of daily visits, a sample every 5 minutes of 8 hours on the dock. */
const SAMPLE_DAYS = 30;
const SAMPLES_PER_DAY = 96;

/**
 * Seeds `dataDir` with `perCamera` verified, released recordings of each serial in `serials`.
 * Returns the number of recordings and custody events written.
 */
export async function seedHistory(dataDir, serials, perCamera, { shiftHours = 10 } = {}) {
  const { openStore } = await dist('store/db.js');
  const { recentHealth, storeVerdict } = await dist('battery/fleet.js');
  const { CustodyLog } = await dist('store/custody-log.js');
  const db = openStore(dataDir);
  try {
    const custody = new CustodyLog(db);
    const start = Date.now() - (SAMPLE_DAYS + 1) * 86_400_000;
    const camera = db.prepare(
      `INSERT INTO cameras (serial, model, firmware, slot, docked, first_seen, last_seen, visit) VALUES (?, 'SimCam 2', '4.1.7', NULL, 0, ?, ?, ?)`,
    );
    const recording = db.prepare(
      `INSERT INTO recordings (id, camera, source_path, source_id, bytes, modified_at, recorded_at, status, seen_visit, discovered_at,
                               sha256, stored_sha256, stored_bytes, archive_path, deleted_from_camera, verified_at, bytes_done)
       VALUES (@id, @camera, @sourcePath, @sourcePath, @bytes, @at, @at, 'verified', @visit, @at, @sha256, @sha256, @bytes, @archivePath, 1, @at, @bytes)`,
    );
    const job = db.prepare(
      `INSERT INTO jobs (recording, kind, state, attempts, created_at, updated_at) VALUES (?, 'release', 'done', 1, ?, ?)`,
    );
    const sample = db.prepare(
      `INSERT INTO battery_samples (camera, at, percent, charging, voltage, temperature_c, health_percent, cycle_count, source, visit)
       VALUES (?, ?, ?, 1, 3.9, 28, ?, ?, 'dock', ?)`,
    );
    let events = 0;
    for (const serial of serials) {
      const iso = new Date(start).toISOString();
      db.transaction(() => {
        camera.run(serial, iso, new Date().toISOString(), SAMPLE_DAYS);
        custody.append({ type: 'camera.docked', camera: serial, at: new Date(start), details: { slot: 'slot-00' } });
        for (let d = 0; d < SAMPLE_DAYS; d++) {
          for (let s = 0; s < SAMPLES_PER_DAY; s++) {
            const at = start + d * 86_400_000 + s * 300_000;
            sample.run(serial, at, Math.min(100, 20 + s), 92 - d * 0.05, 300 + d, d + 1);
          }
        }
      })();
      events++;
      // One transaction per 1,000 recordings, as a busy dock's would be far smaller.
      for (let first = 0; first < perCamera; first += 1000) {
        db.transaction(() => {
          for (let i = first; i < Math.min(perCamera, first + 1000); i++) {
            const at = new Date(start + Math.floor((i / perCamera) * SAMPLE_DAYS * 86_400_000));
            const sourcePath = `DCIM/${100 + Math.floor(i / 1000)}HIST/CLIP${String(i % 1000).padStart(4, '0')}.MP4`;
            const id = randomUUID();
            const bytes = 50_000_000 + ((i * 7919) % 400_000_000);
            const sha256 = createHash('sha256').update(`${serial}/${sourcePath}`).digest('hex');
            const archivePath = path.join(
              dataDir,
              'archive',
              serial,
              at.toISOString().slice(0, 10),
              path.basename(sourcePath),
            );
            recording.run({
              id,
              camera: serial,
              sourcePath,
              bytes,
              at: at.toISOString(),
              visit: 1 + Math.floor((i / perCamera) * SAMPLE_DAYS),
              sha256,
              archivePath,
            });
            job.run(id, at.toISOString(), at.toISOString());
            custody.append({
              type: 'offload.started',
              camera: serial,
              recording: id,
              at,
              details: { attempt: 1, resumeFrom: 0, sourcePath, bytes },
            });
            custody.append({
              type: 'offload.verified',
              camera: serial,
              recording: id,
              sha256,
              at,
              details: {
                sourcePath,
                archivePath,
                bytes,
                attempt: 1,
                resumedFrom: 0,
                verifiedSource: false,
                officer: null,
              },
            });
            custody.append({
              type: 'camera.file_deleted',
              camera: serial,
              recording: id,
              sha256,
              at,
              details: { sourcePath },
            });
            events += 3;
          }
        })();
      }
    }
    // The verdict each camera's last docking left, as the daemon stores it.
    for (const serial of serials) storeVerdict(db, serial, shiftHours, recentHealth(db, serial, shiftHours).view);
    return { recordings: serials.length * perCamera, events };
  } finally {
    db.close();
  }
}
