import { existsSync } from 'node:fs';
import os from 'node:os';
import { loadConfig, type Config } from '../config.js';
import { dbPath, openStore, type Db } from '../store/db.js';

export interface GlobalOptions {
  config?: string;
  dataDir?: string;
  debug?: boolean;
  /** false with --no-color. */
  color?: boolean;
}

export class UsageError extends Error {}

/** A problem the command found (exit 1), as opposed to bad usage (exit 2). */
export class ProblemError extends Error {}

export function resolveConfig(g: GlobalOptions, extra: { simDir?: string } = {}): Config {
  return loadConfig({ configPath: g.config, dataDir: g.dataDir, simDir: extra.simDir });
}

export interface StoreUse {
  /**
   * Only for commands that set a dock up before its daemon first ran (`assign`): every other
   * command reads or amends what a daemon wrote, and a mistyped --data-dir must say so instead
   * of leaving a fresh, empty store behind.
   */
  create?: boolean;
}

/** The store of the configured data dir; a missing one is a problem the user must hear about. */
export function openCliStore(cfg: Config, use: StoreUse = {}): Db {
  if (use.create) return openStore(cfg.dataDir);
  if (!existsSync(dbPath(cfg.dataDir)))
    throw new ProblemError(
      `no dockd data in ${cfg.dataDir} (no dockd.db there): check --data-dir or dataDir in the config`,
    );
  try {
    return openStore(cfg.dataDir, { mustExist: true });
  } catch (err) {
    // Removed between the check and the open.
    if ((err as { code?: string }).code === 'SQLITE_CANTOPEN')
      throw new ProblemError(`no dockd data in ${cfg.dataDir}`);
    throw err;
  }
}

export function withStore<T>(g: GlobalOptions, fn: (db: Db, cfg: Config) => T, use: StoreUse = {}): T {
  const cfg = resolveConfig(g);
  const db = openCliStore(cfg, use);
  try {
    return fn(db, cfg);
  } finally {
    db.close();
  }
}

export async function withStoreAsync<T>(g: GlobalOptions, fn: (db: Db, cfg: Config) => Promise<T>): Promise<T> {
  const cfg = resolveConfig(g);
  const db = openCliStore(cfg);
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

export function parseTime(flag: string, v: string | undefined): Date | undefined {
  if (v === undefined) return undefined;
  const d = new Date(v);
  if (Number.isNaN(d.getTime()))
    throw new UsageError(`${flag} must be a date/time such as 2026-11-27T06:00:00Z, got "${v}"`);
  return d;
}

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}
