import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { defaultConfig, loadConfig, parseConfig } from '../src/config.js';
import { configError } from './support/config-error.js';

const err = configError;

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
    [
      { replication: { retry: { baseDelayMs: 5000, maxDelayMs: 10 } } },
      /replication\.retry\.maxDelayMs: must not be below replication\.retry\.baseDelayMs/,
    ],
    [{ battery: { shiftHours: 'ten' } }, /battery\.shiftHours: must be a number/],
    [{ log: { level: 'loud' } }, /log\.level: must be one of/],
    [{ nope: 1 }, /nope: unknown key/],
    [{ usb: { slots: { '1-2': 5 } } }, /usb\.slots: must be an object of strings/],
    [[], /must hold a JSON object/],
  ])('refuses %j naming the key', (raw, re) => {
    expect(err(raw)).toMatch(re);
  });

  // Node takes a timer beyond 2^31-1 ms as 1 ms: each of these would fire a thousand times a second.
  it.each([
    'usb.pollIntervalMs',
    'ingest.readTimeoutMs',
    'ingest.retry.baseDelayMs',
    'ingest.retry.maxDelayMs',
    'battery.sampleIntervalMs',
    'retention.sweepIntervalMs',
    'replication.retry.baseDelayMs',
    'replication.retry.maxDelayMs',
    'replication.blockedRetryMs',
    'daemon.heartbeatIntervalMs',
  ])('bounds %s to what a timer holds', (key) => {
    const parts = key.split('.');
    const at = (v: number, siblings: object = {}) =>
      parts.slice(0, -1).reduceRight<unknown>((inner, k) => ({ [k]: inner }), { ...siblings, [parts.at(-1)!]: v });
    expect(err(at(1e300))).toBe(
      `config: ${key}: must be at most 2147483647 milliseconds (about 24.8 days), the longest a timer holds, got 1e+300`,
    );
    expect(err(at(2 ** 31))).toMatch(new RegExp(`^config: ${key.replace(/\./g, '\\.')}: must be at most 2147483647 `));
    // A base delay that long needs a maximum as long, or that rule speaks first.
    const longest = key.endsWith('baseDelayMs') ? at(2 ** 31 - 1, { maxDelayMs: 2 ** 31 - 1 }) : at(2 ** 31 - 1);
    const cfg = parseConfig(longest, '/base') as unknown as Record<string, Record<string, unknown>>;
    expect(key.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], cfg)).toBe(2 ** 31 - 1);
  });

  it.each(['retention.days', 'battery.keepDays', 'replication.objectLock.days'])(
    'bounds %s to a century, so that it stays a date',
    (key) => {
      const at = (v: number) => key.split('.').reduceRight<unknown>((inner, k) => ({ [k]: inner }), v);
      expect(err(at(1e300))).toBe(`config: ${key}: must be at most 36500 days (a century), got 1e+300`);
      expect(() => parseConfig(at(36_500), '/base')).not.toThrow();
    },
  );

  it.each([
    ['{"__proto__": {"dataDir": "/elsewhere"}}', '__proto__'],
    ['{"ingest": {"__proto__": {"deleteFromCamera": false}}}', 'ingest.__proto__'],
    ['{"usb": {"slots": {"constructor": "dock1-01"}}}', 'usb.slots.constructor'],
    ['{"usb": {"drivers": {"prototype": "ptp"}}}', 'usb.drivers.prototype'],
    ['{"constructor": {}}', 'constructor'],
    ['{"replication": {"objectLock": {"__proto__": {}}}}', 'replication.objectLock.__proto__'],
    ['{"encryption": {"recipients": [{"__proto__": 1}]}}', 'encryption.recipients[0].__proto__'],
  ])('refuses the prototype key in %s naming %s', (text, key) => {
    // JSON.parse, as for a file: it makes "__proto__" an own key, which an object literal would not.
    expect(err(JSON.parse(text))).toBe(
      `config: ${key}: "${key.split('.').pop()!.replace(/^.*\]/, '')}" is not allowed as a key anywhere in the config`,
    );
  });

  it("refuses keys that only an object's prototype knows", () => {
    expect(err({ ingest: { toString: 1 } })).toBe('config: ingest.toString: unknown key');
    expect(err({ hasOwnProperty: 1 })).toBe('config: hasOwnProperty: unknown key');
  });

  it.each([
    [{ dataDir: '' }, 'dataDir'],
    [{ sim: { dir: '' } }, 'sim.dir'],
    [{ log: { file: '' } }, 'log.file'],
    [{ replication: { credentialsFile: '' } }, 'replication.credentialsFile'],
    [{ usb: { massStorage: { automountRoots: ['/media', ''] } } }, 'usb.massStorage.automountRoots[1]'],
    [{ usb: { massStorage: { folders: [''] } } }, 'usb.massStorage.folders[0]'],
  ])('refuses the empty path %j naming %s', (raw, key) => {
    expect(err(raw)).toMatch(new RegExp(`^config: ${key.replace(/[.[\]]/g, '\\$&')}: must not be empty`));
  });

  it('still takes null for the paths that may be off', () => {
    const cfg = parseConfig(
      { sim: { dir: null }, log: { file: null }, replication: { credentialsFile: null } },
      '/base',
    );
    expect([cfg.sim.dir, cfg.log.file, cfg.replication!.credentialsFile]).toEqual([null, null, null]);
  });

  it('takes --config, then $DOCKD_CONFIG, then ./dockd.config.json, and flags override the file', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'dockd-cfg-'));
    writeFileSync(path.join(dir, 'dockd.config.json'), JSON.stringify({ dataDir: 'from-cwd' }));
    writeFileSync(path.join(dir, 'env.json'), JSON.stringify({ dataDir: 'from-env' }));
    writeFileSync(path.join(dir, 'flag.json'), JSON.stringify({ dataDir: 'from-flag' }));
    expect(loadConfig({ cwd: dir, env: {} }).dataDir).toBe(path.join(dir, 'from-cwd'));
    expect(loadConfig({ cwd: dir, env: { DOCKD_CONFIG: 'env.json' } }).dataDir).toBe(path.join(dir, 'from-env'));
    expect(loadConfig({ cwd: dir, env: { DOCKD_CONFIG: 'env.json' }, configPath: 'flag.json' }).dataDir).toBe(
      path.join(dir, 'from-flag'),
    );
    expect(loadConfig({ cwd: dir, env: {}, dataDir: 'over' }).dataDir).toBe(path.join(dir, 'over'));
  });

  it.each([
    [{ configPath: '' }, '--config'],
    [{ dataDir: '' }, '--data-dir'],
    [{ simDir: '' }, '--sim-dir'],
  ])('refuses the empty flag %j naming it', (flags, flag) => {
    expect(() => loadConfig({ cwd: '/base', env: {}, ...flags })).toThrow(`config: ${flag}: must not be empty`);
  });

  it('names the file when it is not JSON or missing', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'dockd-cfg-'));
    writeFileSync(path.join(dir, 'bad.json'), '{ nope');
    expect(() => loadConfig({ cwd: dir, env: {}, configPath: 'bad.json' })).toThrow(/bad\.json is not valid JSON/);
    expect(() => loadConfig({ cwd: dir, env: {}, configPath: 'missing.json' })).toThrow(
      /--config: cannot read .*missing\.json: ENOENT/,
    );
  });
});
