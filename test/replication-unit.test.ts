import { describe, expect, it } from 'vitest';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseConfig } from '../src/config.js';
import { CredentialsError, loadCredentials } from '../src/replication/credentials.js';
import { describeError, isBlocking, objectKey } from '../src/replication/replicator.js';

const rep = (over: Record<string, unknown> = {}) =>
  parseConfig(
    { replication: { endpoint: 'http://127.0.0.1:7480', bucket: 'evidence', dockId: 'station-north-1', ...over } },
    '/etc/dockd',
  ).replication!;

describe('replication config and credentials', () => {
  it('fills defaults and checks the bucket name and endpoint', () => {
    const r = rep();
    expect(r).toMatchObject({
      region: 'us-east-1',
      forcePathStyle: true,
      objectLock: { mode: 'COMPLIANCE', days: 30 },
    });
    expect(() => rep({ bucket: 'Bad_Bucket' })).toThrow(/replication\.bucket/);
    expect(() => rep({ endpoint: 'not a url' })).toThrow(/replication\.endpoint/);
    expect(() => rep({ objectLock: { mode: 'NONE', days: 1 } })).toThrow(/replication\.objectLock\.mode/);
    expect(() => rep({ secret: 'x' })).toThrow(/replication\.secret: unknown key/);
    expect(parseConfig({}, '/').replication).toBeNull();
  });

  it('takes credentials from the environment or a file only its owner can read', () => {
    expect(loadCredentials(rep(), { AWS_ACCESS_KEY_ID: 'AK', AWS_SECRET_ACCESS_KEY: 'SK' })).toEqual({
      accessKeyId: 'AK',
      secretAccessKey: 'SK',
    });
    expect(() => loadCredentials(rep(), {})).toThrow(CredentialsError);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'dockd-cred-'));
    const f = path.join(dir, 'creds');
    writeFileSync(f, 'AWS_ACCESS_KEY_ID=AK2\nAWS_SECRET_ACCESS_KEY=SK2\n');
    chmodSync(f, 0o644);
    expect(() => loadCredentials(rep({ credentialsFile: f }), {})).toThrow(/must be mode 0600/);
    chmodSync(f, 0o600);
    expect(loadCredentials(rep({ credentialsFile: f }), {})).toEqual({ accessKeyId: 'AK2', secretAccessKey: 'SK2' });
    writeFileSync(f, JSON.stringify({ accessKeyId: 'AK3', secretAccessKey: 'SK3' }));
    expect(loadCredentials(rep({ credentialsFile: f }), {})).toEqual({ accessKeyId: 'AK3', secretAccessKey: 'SK3' });
  });

  it('builds object keys under the dock id that untrusted names cannot escape', () => {
    const key = objectKey('station-north-1', {
      camera: '../../evil',
      recording: 'r1',
      source_path: 'DCIM/../../x y.mp4',
    });
    expect(key.startsWith('station-north-1/')).toBe(true);
    expect(key.split('/')).toHaveLength(4);
    expect(key).not.toMatch(/\.\.\//);
  });

  it('tells errors retrying cannot fix from transient ones', () => {
    expect(isBlocking(Object.assign(new Error('x'), { name: 'InvalidAccessKeyId' }))).toBe(true);
    expect(isBlocking({ name: 'Whatever', $metadata: { httpStatusCode: 403 } })).toBe(true);
    expect(isBlocking({ name: 'InternalError', $metadata: { httpStatusCode: 500 } })).toBe(false);
    expect(isBlocking(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }))).toBe(false);
  });

  it("names the HTTP status when the store's reply had no error body", () => {
    const bodiless = (status: number) =>
      Object.assign(new Error('UnknownError'), { name: String(status), $metadata: { httpStatusCode: status } });
    expect(describeError(bodiless(403))).toBe(
      'the store answered HTTP 403: access denied, check the access key and secret',
    );
    expect(describeError(bodiless(404))).toBe('the store answered HTTP 404: not found, check the bucket');
    expect(describeError(bodiless(503))).toBe('the store answered HTTP 503');
    // A reply that did say what went wrong is passed on as it is.
    expect(
      describeError(
        Object.assign(new Error('The request signature we calculated does not match'), {
          $metadata: { httpStatusCode: 403 },
        }),
      ),
    ).toBe('The request signature we calculated does not match');
    expect(describeError(new Error('socket hang up'))).toBe('socket hang up');
  });
});
