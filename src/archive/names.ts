/**
 * Safe archive names for untrusted camera paths (DESIGN invariant 5). The original path stays in
 * SQLite and custody; the archive name only has to be safe, unique and readable.
 */
import { createHash, randomBytes } from 'node:crypto';

const MAX_BASE = 80;

function hash8(s: string): string {
  return createHash('sha256').update(s).digest('hex').slice(0, 8);
}

/** Reduces any string to [A-Za-z0-9._-], never empty, never starting with a dot. */
export function safeComponent(raw: string, max = MAX_BASE): string {
  let s = raw.normalize('NFC').replace(/[^A-Za-z0-9._-]+/g, '_');
  s = s.replace(/^[._]+/, '');
  if (s.length > max) {
    const dot = s.lastIndexOf('.');
    const ext = dot > 0 && s.length - dot <= 10 ? s.slice(dot) : '';
    s = s.slice(0, max - ext.length) + ext;
  }
  return s || 'recording';
}

/** The last component of a camera path, treating both separators as separators. */
export function baseName(sourcePath: string): string {
  const parts = sourcePath.split(/[/\\]/).filter((p) => p !== '' && p !== '.' && p !== '..');
  return parts[parts.length - 1] ?? '';
}

/** A folder name for a camera; serials that had to be changed get a hash so two cannot collide. */
export function safeSerial(serial: string): string {
  const safe = safeComponent(serial, 48);
  return safe === serial ? safe : `${safe}-${hash8(serial)}`;
}

/** Time-sortable, unique recording id; it also makes every archive name unique. */
export function newRecordingId(now = Date.now()): string {
  return `${now.toString(36).padStart(9, '0')}-${randomBytes(5).toString('hex')}`;
}

/** Archive-relative path of a recording: <camera>/<day>/<id>_<name>. Deterministic per row. */
export function archiveRelPath(rec: { id: string; camera: string; sourcePath: string; discoveredAt: string }): string {
  const day = rec.discoveredAt.slice(0, 10).replace(/[^0-9-]/g, '') || 'unknown';
  return `${safeSerial(rec.camera)}/${day}/${rec.id}_${safeComponent(baseName(rec.sourcePath))}`;
}
