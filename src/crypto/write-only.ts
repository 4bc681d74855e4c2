/**
 * A write-only dock holds no key that can decrypt its archive: a stolen dock PC reveals nothing.
 * The daemon refuses to start when an age secret key lies where it keeps its own files.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../lib/config-error.js';
import { isAgeIdentityText } from './age.js';

const MAX_SCAN_BYTES = 1024 * 1024;

export function findSecretKeys(dataDir: string): string[] {
  const found: string[] = [];
  // The archive holds only ciphertext and may hold 100,000 files: the places a key would be
  // left by hand are the data dir itself and the folders next to the database.
  for (const dir of [dataDir, path.join(dataDir, 'keys'), path.join(dataDir, 'staging')]) {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      continue;
    }
    for (const name of names) {
      const file = path.join(dir, name);
      const st = statSync(file, { throwIfNoEntry: false });
      if (!st?.isFile() || st.size > MAX_SCAN_BYTES || name.endsWith('.part') || name.startsWith('dockd.db')) continue;
      try {
        if (isAgeIdentityText(readFileSync(file, 'utf8'))) found.push(file);
      } catch {
        // unreadable: not ours to judge
      }
    }
  }
  return found;
}

export function refuseSecretKeys(dataDir: string): void {
  const found = findSecretKeys(dataDir);
  if (found.length) {
    throw new ConfigError(
      'dataDir',
      `holds an age secret key (${found.join(', ')}): a dock must not be able to decrypt its archive; move it to the custodian's machine`,
    );
  }
}
