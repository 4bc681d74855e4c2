/**
 * The encryption-at-rest run of scripts/bench.mjs: a custodian's identity made as an admin makes
 * one, and decryption of archived files back to their source, by Debian's age or dockd's code.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, readFileSync, statSync, writeFileSync } from 'node:fs';
import { BIN, ROOT, ageLib, hashFile } from './bench-lib.mjs';

/**
 * A custodian's identity made the way an admin makes one (`dockd keygen`), written to `file`;
 * returns its age1… recipient. keygen itself refuses a file inside `dataDir`.
 */
export function keygen(file, dataDir) {
  const env = { ...process.env };
  // keygen reads a config for the data dir it must stay out of; the caller's is not the run's.
  delete env.DOCKD_CONFIG;
  const out = execFileSync(process.execPath, [BIN, '--data-dir', dataDir, 'keygen', '--out', file, '--json'], {
    cwd: ROOT,
    env,
    encoding: 'utf8',
  });
  return JSON.parse(out).recipient;
}

/**
 * Decrypts an archived .age file with Debian's `age` (`via: 'age'`) or dockd's own code from
 * dist/ (`via: 'dockd'`) and compares the plaintext with the source file, by SHA-256 and size.
 * Returns the problems found.
 */
/** An identity for the encrypted floor (fe), made with dockd's age code, in `file`. */
export async function floorIdentity(file) {
  const { generateIdentity } = await ageLib();
  const { identity, recipient } = generateIdentity();
  writeFileSync(file, `${identity}\n`, { mode: 0o600 });
  return { file, recipient };
}

export async function checkDecrypts(archived, source, identityFile, via) {
  const hash = createHash('sha256');
  let bytes = 0;
  const take = (chunk) => {
    hash.update(chunk);
    bytes += chunk.length;
  };
  try {
    if (via === 'age') {
      const child = spawn('age', ['-d', '-i', identityFile, archived], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stdout.on('data', take);
      child.stderr.setEncoding('utf8').on('data', (s) => (stderr += s));
      const code = await new Promise((resolve, reject) => {
        child.on('error', reject);
        child.on('close', resolve);
      });
      if (code !== 0) return [`age -d ${archived} exited ${code}: ${stderr.trim()}`];
    } else {
      const { createDecryptStream, parseIdentityFile } = await ageLib();
      const decrypt = createDecryptStream(parseIdentityFile(readFileSync(identityFile, 'utf8')));
      const done = new Promise((resolve, reject) => {
        decrypt.on('data', take).on('end', resolve).on('error', reject);
      });
      createReadStream(archived)
        .on('error', (e) => decrypt.destroy(e))
        .pipe(decrypt);
      await done;
    }
  } catch (err) {
    return [`decrypting ${archived} with ${via} failed: ${err instanceof Error ? err.message : String(err)}`];
  }
  const want = { sha: await hashFile(source), bytes: statSync(source).size };
  const got = hash.digest('hex');
  return got === want.sha && bytes === want.bytes
    ? []
    : [
        `${archived} decrypts (${via}) to ${bytes} bytes with SHA-256 ${got}; the source ${source} is ${want.bytes} bytes, ${want.sha}`,
      ];
}
