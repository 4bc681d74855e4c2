/**
 * How a simulated camera's firmware takes configuration from the dock: two files in its slot,
 * each written atomically (a temporary name starting with ".", fsync, rename) so that the camera
 * never reads half a file and the listing never sees a temporary file as a recording.
 */
import { randomBytes } from 'node:crypto';
import { open, readFile, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import { DriverError, type CameraSettings } from '../types.js';
import { CLOCK_FILE, SETTINGS_FILE, parseSettingsOverlay } from './camera-settings-file.js';

async function readIfPresent(file: string): Promise<string | null> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

async function writeAtomically(dir: string, name: string, text: string): Promise<void> {
  const tmp = path.join(dir, `.${name}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    const fh = await open(tmp, 'wx', 0o644);
    try {
      await fh.writeFile(text);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path.join(dir, name));
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    const e = err as NodeJS.ErrnoException;
    // The slot folder vanished: the camera was pulled out while dockd configured it.
    if (e.code === 'ENOENT')
      throw new DriverError('deviceGone', 'undocked', `camera is gone (cannot write ${name})`, { cause: err });
    throw new DriverError('transient', e.code ?? 'write', `cannot write ${name}: ${e.message}`, { cause: err });
  }
}

/** While clock.json exists the camera runs on the dock's clock. */
export async function clockWasSet(dir: string): Promise<boolean> {
  return (await readIfPresent(path.join(dir, CLOCK_FILE))) !== null;
}

export async function writeClock(dir: string, date: Date): Promise<void> {
  await writeAtomically(dir, CLOCK_FILE, JSON.stringify({ setTo: date.toISOString() }) + '\n');
}

/**
 * What the camera reports: camera.json's settings with settings.json laid over them. Keys the
 * camera does not have, and values of another type than its own, are what its firmware ignores.
 */
export async function reportedSettings(dir: string, own: CameraSettings): Promise<CameraSettings> {
  const overlay = parseSettingsOverlay(await readIfPresent(path.join(dir, SETTINGS_FILE)));
  const out: CameraSettings = { ...own };
  for (const [k, v] of Object.entries(overlay ?? {})) {
    if (Object.hasOwn(own, k) && typeof own[k] === typeof v) out[k] = v;
  }
  return out;
}

/**
 * Checks `partial` the way the camera's firmware would and writes the complete wanted settings
 * into settings.json; writes nothing when the camera already has every wanted value.
 */
export async function writeSettings(dir: string, own: CameraSettings, partial: CameraSettings): Promise<boolean> {
  for (const [k, v] of Object.entries(partial)) {
    if (!Object.hasOwn(own, k))
      throw new DriverError('permanent', 'setting-unknown', `the camera has no setting "${k}"`);
    if (typeof own[k] !== typeof v)
      throw new DriverError(
        'permanent',
        'setting-type',
        `the camera refuses ${k} = ${JSON.stringify(v)}: it takes a ${typeof own[k]}`,
      );
  }
  const current = await reportedSettings(dir, own);
  if (Object.entries(partial).every(([k, v]) => current[k] === v)) return false;
  await writeAtomically(dir, SETTINGS_FILE, JSON.stringify({ ...current, ...partial }, null, 2) + '\n');
  return true;
}
