/**
 * dockd.config.example.json is what an admin copies to start a dock PC: it must load as it is,
 * and it must show every key the config file has, so that nothing is left to be found in the
 * source.
 */
import { openStore } from '../src/store/db.js';
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { defaultConfig, defaultReplication, loadConfig } from '../src/config.js';
import { cli, ROOT } from './support/harness.js';

const EXAMPLE = path.join(ROOT, 'dockd.config.example.json');

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Dotted key paths down to the values; an empty object (a map such as usb.slots) is a value. */
function keyPaths(v: Record<string, unknown>, prefix = ''): string[] {
  return Object.entries(v).flatMap(([k, child]) =>
    isObject(child) && Object.keys(child).length > 0 ? keyPaths(child, `${prefix}${k}.`) : [`${prefix}${k}`],
  );
}

describe('dockd.config.example.json', () => {
  const raw = JSON.parse(readFileSync(EXAMPLE, 'utf8')) as Record<string, unknown>;

  it('loads through the config loader, replication and encryption on, paths relative to the file', () => {
    const cfg = loadConfig({ configPath: EXAMPLE, env: {} });
    expect(cfg.dataDir).toBe('/var/lib/dockd');
    expect(cfg.replication?.bucket).toBe('evidence');
    expect(cfg.replication?.objectLock.mode).toBe('COMPLIANCE');
    expect(cfg.replication?.credentialsFile).toBe(path.join(ROOT, 's3-credentials'));
    expect(cfg.encryption?.recipients).toHaveLength(1);
  });

  it('sets every key the config file has', () => {
    const defaults = {
      ...defaultConfig(),
      replication: defaultReplication(),
      encryption: { recipients: [] },
    } as unknown as Record<string, unknown>;
    // A map the example fills (usb.slots) counts as shown, whatever names it maps.
    const shown = new Set(
      keyPaths(raw).flatMap((k) => k.split('.').map((_, i, parts) => parts.slice(0, i + 1).join('.'))),
    );
    const missing = keyPaths(defaults).filter((k) => !shown.has(k));
    expect(missing, 'keys to add to dockd.config.example.json (and docs/configuration.md)').toEqual([]);
  });

  it('runs the CLI: status exits 0 and doctor finds the config sound', async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'dockd-example-'));
    // Read commands never create a store (they say there is no dockd data): make the one a daemon would.
    openStore(dataDir).close();
    const status = await cli(['--config', EXAMPLE, '--data-dir', dataDir, 'status', '--json'], {
      env: { DOCKD_CONFIG: '' },
    });
    expect(status.stderr).toBe('');
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout).replication.enabled).toBe(true);

    const doctor = await cli(['--config', EXAMPLE, '--data-dir', dataDir, 'doctor', '--json']);
    expect(doctor.code).not.toBe(2);
    const checks = JSON.parse(doctor.stdout).checks as Array<{ name: string; status: string; detail: string }>;
    expect(checks.find((c) => c.name === 'config')).toMatchObject({ status: 'ok' });
    expect(checks.find((c) => c.name === 'encryption')?.status).not.toBe('fail');
  });
});
