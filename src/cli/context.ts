import os from 'node:os';
import { loadConfig, type Config } from '../config.js';
import { openStore, type Db } from '../store/db.js';

export interface GlobalOptions {
  config?: string;
  dataDir?: string;
  debug?: boolean;
}

export class UsageError extends Error {}

/** A problem the command found (exit 1), as opposed to bad usage (exit 2). */
export class ProblemError extends Error {}

export function resolveConfig(g: GlobalOptions, extra: { simDir?: string } = {}): Config {
  return loadConfig({ configPath: g.config, dataDir: g.dataDir, simDir: extra.simDir });
}

export function withStore<T>(g: GlobalOptions, fn: (db: Db, cfg: Config) => T): T {
  const cfg = resolveConfig(g);
  const db = openStore(cfg.dataDir);
  try {
    return fn(db, cfg);
  } finally {
    db.close();
  }
}

export async function withStoreAsync<T>(g: GlobalOptions, fn: (db: Db, cfg: Config) => Promise<T>): Promise<T> {
  const cfg = resolveConfig(g);
  const db = openStore(cfg.dataDir);
  try {
    return await fn(db, cfg);
  } finally {
    db.close();
  }
}

/** The OS user running a CLI command, recorded as the actor of the custody events it causes. */
export function cliActor(): string {
  try {
    return `cli:${os.userInfo().username}`;
  } catch {
    return `cli:uid-${process.getuid?.() ?? 'unknown'}`;
  }
}

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}
