/**
 * The dock's signing key as a power cut can leave it: a dock cut in its first half minute came
 * back with both key files empty and then failed every start. The daemon judges what it finds:
 * a key that never signed a checkpoint is made anew, on the record; one that did is never
 * replaced, and the start says what to do.
 */
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { TestDock, type DaemonProcess, type VerifyJson } from './support/harness.js';

const docks: TestDock[] = [];
afterEach(async () => {
  await Promise.all(docks.splice(0).map((d) => d.cleanup()));
});

function newDock(): TestDock {
  const d = new TestDock();
  docks.push(d);
  return d;
}

const keys = (d: TestDock) => path.join(d.dataDir, 'keys');
const priv = (d: TestDock) => path.join(keys(d), 'dock-signing.pem');
const pub = (d: TestDock) => path.join(keys(d), 'dock-signing.pub.pem');

/** SIGTERM once the daemon watches its dock (its signal handlers come a moment after). */
async function stopGracefully(p: DaemonProcess): Promise<void> {
  await p.waitForEvent('bus.started');
  await new Promise((r) => setTimeout(r, 300));
  p.kill('SIGTERM');
  expect((await p.exited).code).toBe(0);
}

/** Runs the daemon until it is up, then stops it: its stop signs the chain head. */
async function runOnce(d: TestDock): Promise<{ keyId: string }> {
  const p = d.start();
  const started = await p.waitForEvent('daemon.started');
  await stopGracefully(p);
  return { keyId: started.keyId as string };
}

function checkpointKeyIds(d: TestDock): string[] {
  const db = new Database(path.join(d.dataDir, 'dockd.db'), { readonly: true });
  try {
    return db
      .prepare<[], { key_id: string }>('SELECT key_id FROM chain_checkpoints ORDER BY seq')
      .all()
      .map((r) => r.key_id);
  } finally {
    db.close();
  }
}

function custodyEvents(d: TestDock, type: string): Array<{ seq: number; details: Record<string, unknown> }> {
  const db = new Database(path.join(d.dataDir, 'dockd.db'), { readonly: true });
  try {
    return db
      .prepare<[string], { seq: number; details: string }>(
        'SELECT seq, details FROM custody_events WHERE type = ? ORDER BY seq',
      )
      .all(type)
      .map((r) => ({ seq: r.seq, details: JSON.parse(r.details) as Record<string, unknown> }));
  } finally {
    db.close();
  }
}

async function verify(d: TestDock): Promise<{ code: number; v: VerifyJson }> {
  const r = await d.cli(['verify', '--json']);
  return { code: r.code, v: JSON.parse(r.stdout) as VerifyJson };
}

describe('a torn dock key that never signed anything', () => {
  it('both files empty, as a cut in the first start left them: a new key, with a custody event and a log line saying so', async () => {
    const d = newDock();
    mkdirSync(keys(d), { recursive: true, mode: 0o700 });
    writeFileSync(priv(d), '', { mode: 0o600 });
    writeFileSync(pub(d), '');

    const p = d.start();
    const replaced = await p.waitForEvent('custody.key_replaced');
    const started = await p.waitForEvent('daemon.started');
    expect(replaced).toMatchObject({ level: 40, oldKeyId: null, keyId: started.keyId });
    expect(replaced.found).toBe(
      'keys/dock-signing.pem is empty (0 bytes), keys/dock-signing.pub.pem is empty (0 bytes)',
    );
    await stopGracefully(p);

    const [event] = custodyEvents(d, 'custody.key_replaced');
    expect(event?.details).toMatchObject({ found: replaced.found, oldKeyId: null, newKeyId: started.keyId });
    // The new key signs from then on, and the chain with its checkpoints verifies.
    expect(checkpointKeyIds(d)).toEqual([started.keyId]);
    const { code, v } = await verify(d);
    expect(code).toBe(0);
    expect(v.checkpoints).toMatchObject({ checked: 1, ok: 1, bad: [] });
    // Nothing half-written is left next to the key.
    expect(readdirSync(keys(d)).sort()).toEqual(['dock-signing.pem', 'dock-signing.pub.pem']);
  });

  it('a public key without its private half, never used to sign: replaced, naming the old key', async () => {
    const d = newDock();
    mkdirSync(keys(d), { recursive: true, mode: 0o700 });
    const { publicKey } = generateKeyPairSync('ed25519');
    writeFileSync(pub(d), publicKey.export({ format: 'pem', type: 'spki' }));

    const p = d.start();
    const replaced = await p.waitForEvent('custody.key_replaced');
    expect(replaced.found).toBe('keys/dock-signing.pem is missing, keys/dock-signing.pub.pem holds a key');
    expect(replaced.oldKeyId).toMatch(/^[0-9a-f]{16}$/);
    expect(replaced.keyId).not.toBe(replaced.oldKeyId);
    await stopGracefully(p);
    expect(custodyEvents(d, 'custody.key_replaced')[0]?.details).toMatchObject({
      oldKeyId: replaced.oldKeyId,
      newKeyId: replaced.keyId,
    });
  });

  it('a leftover temporary file from a write cut before its rename is neither read nor kept', async () => {
    const d = newDock();
    mkdirSync(keys(d), { recursive: true, mode: 0o700 });
    writeFileSync(`${priv(d)}.tmp`, '-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2Vw');

    const p = d.start();
    await p.waitForEvent('daemon.started');
    await stopGracefully(p);
    // No key existed: a first start, nothing to put on the record.
    expect(p.events('custody.key_replaced')).toEqual([]);
    expect(readdirSync(keys(d)).sort()).toEqual(['dock-signing.pem', 'dock-signing.pub.pem']);
  });
});

describe('a torn dock key that signed checkpoints', () => {
  it('a truncated private key: the daemon refuses to start, says what it found and what to do, and leaves the files alone', async () => {
    const d = newDock();
    const { keyId } = await runOnce(d);
    expect(checkpointKeyIds(d)).toContain(keyId);
    truncateSync(priv(d), 40);
    const before = readFileSync(priv(d));

    const p = d.start();
    const { code } = await p.exited;
    expect(code).toBe(1);
    expect(p.stderr).toMatch(/^dockd: keys\/dock-signing\.pem is torn \(40 bytes: not a key/);
    expect(p.stderr).toContain(`key ${keyId} signed 1 custody checkpoint(s)`);
    expect(p.stderr).toMatch(/Restore .*keys from a backup of this dock/);
    expect(p.stderr).not.toMatch(/\n\s+at /);
    expect(p.events('daemon.started')).toEqual([]);
    expect(readFileSync(priv(d))).toEqual(before);
    // The refusal is not a crash that leaves the data dir locked.
    const again = d.start();
    expect((await again.exited).code).toBe(1);
  });

  it('both halves unreadable while checkpoints exist: the key is unknown, so it is not replaced either', async () => {
    const d = newDock();
    await runOnce(d);
    writeFileSync(priv(d), '');
    rmSync(pub(d));

    const p = d.start();
    expect((await p.exited).code).toBe(1);
    expect(p.stderr).toContain('keys/dock-signing.pem is empty (0 bytes), keys/dock-signing.pub.pem is missing');
    expect(p.stderr).toContain('key unknown');
    expect(existsSync(pub(d))).toBe(false);
  });

  it('keys/ gone altogether: not taken for a first start', async () => {
    const d = newDock();
    await runOnce(d);
    rmSync(keys(d), { recursive: true });

    const p = d.start();
    expect((await p.exited).code).toBe(1);
    expect(p.stderr).toContain('keys/dock-signing.pem is missing, keys/dock-signing.pub.pem is missing');
  });
});

describe('a torn public key next to a sound private key', () => {
  it('is written again from the private key; the dock keeps its identity and its checkpoints verify', async () => {
    const d = newDock();
    const { keyId } = await runOnce(d);
    writeFileSync(pub(d), '');
    // Commands that only read the public key derive it meanwhile.
    const before = await verify(d);
    expect(before.code).toBe(0);

    const p = d.start();
    const restored = await p.waitForEvent('custody.public_key_restored');
    expect(restored).toMatchObject({ level: 40, keyId, found: 'keys/dock-signing.pub.pem is empty (0 bytes)' });
    expect((await p.waitForEvent('daemon.started')).keyId).toBe(keyId);
    await stopGracefully(p);
    expect(readFileSync(pub(d), 'utf8')).toMatch(/^-----BEGIN PUBLIC KEY-----/);
    expect(custodyEvents(d, 'custody.key_replaced')).toEqual([]);
    const { code, v } = await verify(d);
    expect(code).toBe(0);
    expect(v.checkpoints).toMatchObject({ checked: 2, ok: 2, bad: [] });
  });
});
