import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, defaultConfig, loadConfig, parseConfig } from '../src/config.js';

function err(raw: unknown): string {
  try {
    parseConfig(raw, '/base');
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('config', () => {
  it('fills every key with its default', () => {
    const cfg = parseConfig({}, '/base');
    expect(cfg.ingest).toEqual(defaultConfig().ingest);
    expect(cfg.dataDir).toBe('/base/var');
    expect(cfg.battery.shiftHours).toBe(10);
    expect(cfg.replication).toBeNull();
  });

  it('merges nested keys over the defaults and resolves paths against the file', () => {
    const cfg = parseConfig({ dataDir: 'd', sim: { dir: 'sim' }, ingest: { retry: { attempts: 2 } } }, '/etc/dockd');
    expect(cfg.dataDir).toBe('/etc/dockd/d');
    expect(cfg.sim.dir).toBe('/etc/dockd/sim');
    expect(cfg.ingest.retry).toEqual({ attempts: 2, baseDelayMs: 1000, maxDelayMs: 60000 });
  });

  it.each([
    [{ ingest: { concurrency: -1 } }, /ingest\.concurrency: must be at least 1, got -1/],
    [{ ingest: { concurrency: 1.5 } }, /ingest\.concurrency: must be a whole number/],
    [{ ingest: { verifySource: 'yes' } }, /ingest\.verifySource: must be true or false/],
    [{ ingest: { retry: { attempts: 0 } } }, /ingest\.retry\.attempts: must be at least 1/],
    [{ ingest: { retry: { baseDelayMs: 5000, maxDelayMs: 10 } } }, /ingest\.retry\.maxDelayMs/],
    [{ battery: { shiftHours: 'ten' } }, /battery\.shiftHours: must be a number/],
    [{ log: { level: 'loud' } }, /log\.level: must be one of/],
    [{ nope: 1 }, /nope: unknown key/],
    [{ usb: { slots: { '1-2': 5 } } }, /usb\.slots: must be an object of strings/],
    [[], /must hold a JSON object/],
  ])('refuses %j naming the key', (raw, re) => {
    expect(err(raw)).toMatch(re);
  });

  it('takes --config, then $DOCKD_CONFIG, then ./dockd.config.json, and flags override the file', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'dockd-cfg-'));
    writeFileSync(path.join(dir, 'dockd.config.json'), JSON.stringify({ dataDir: 'from-cwd' }));
    writeFileSync(path.join(dir, 'env.json'), JSON.stringify({ dataDir: 'from-env' }));
    writeFileSync(path.join(dir, 'flag.json'), JSON.stringify({ dataDir: 'from-flag' }));
    expect(loadConfig({ cwd: dir, env: {} }).dataDir).toBe(path.join(dir, 'from-cwd'));
    expect(loadConfig({ cwd: dir, env: { DOCKD_CONFIG: 'env.json' } }).dataDir).toBe(path.join(dir, 'from-env'));
    expect(loadConfig({ cwd: dir, env: { DOCKD_CONFIG: 'env.json' }, configPath: 'flag.json' }).dataDir).toBe(path.join(dir, 'from-flag'));
    expect(loadConfig({ cwd: dir, env: {}, dataDir: 'over' }).dataDir).toBe(path.join(dir, 'over'));
  });

  it('names the file when it is not JSON or missing', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'dockd-cfg-'));
    writeFileSync(path.join(dir, 'bad.json'), '{ nope');
    expect(() => loadConfig({ cwd: dir, env: {}, configPath: 'bad.json' })).toThrow(/bad\.json is not valid JSON/);
    expect(() => loadConfig({ cwd: dir, env: {}, configPath: 'missing.json' })).toThrow(/--config: cannot read .*missing\.json: ENOENT/);
  });
});
