import { readFileSync } from 'node:fs';
import { parseIdentityFile } from '../crypto/age.js';
import { UsageError } from './context.js';

/** Reads an age identity file given on the command line; the key never reaches an error message. */
export function readIdentities(file: string): string[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`--identity: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  try {
    return parseIdentityFile(text);
  } catch (err) {
    throw new UsageError(`--identity: ${file}: ${(err as Error).message}`);
  }
}
