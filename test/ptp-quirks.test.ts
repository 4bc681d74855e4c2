/**
 * Cameras that bend PTP/MTP (issue 29), docked the whole way: the dock, the ingest engine and
 * the real PTP driver against the responder in one of its quirk modes. Each mode must end with
 * every recording verified in the archive, and off the camera only where the camera can delete.
 */
import { describe, expect, it } from 'vitest';
import { cleanupAfterEach, dockInProcess } from './support/configuring-dock.js';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { DeviceInfo } from '../drivers/types.js';
import { createPtpDriver } from '../drivers/ptp/driver.js';
import { Op, Rc } from '../drivers/ptp/constants.js';
import { PtpResponder, WITHOUT_PARTIAL_READS, type PtpResponderOptions } from './support/ptp-responder.js';

const DEVICE: DeviceInfo = {
  bus: 'usb',
  key: '1-4',
  slot: 'Bay 4',
  vendorId: 0x2a70,
  productId: 0x0a11,
  serialNumber: 'BWC-4711',
  interfaces: [{ number: 0, class: 6, subclass: 1, protocol: 1 }],
};
const OPEN_RETRY = { attempts: 4, baseDelayMs: 30, maxDelayMs: 60 };
const INGEST_RETRY = { attempts: 5, baseDelayMs: 20, maxDelayMs: 50 };

const cleanup = cleanupAfterEach();

/** A camera folder with recordings of a few sizes, one of them several transfers long. */
function cameraFolder(): { root: string; files: Map<string, Buffer> } {
  const root = mkdtempSync(path.join(os.tmpdir(), 'dockd-ptpq-cam-'));
  cleanup.push(() => rmSync(root, { recursive: true, force: true }));
  const files = new Map<string, Buffer>([
    ['DCIM/100BODY/A001.MP4', randomBytes(3 * 1024 * 1024 + 77)],
    ['DCIM/100BODY/A002.MP4', randomBytes(4096)],
    ['DCIM/101BODY/B001.MP4', randomBytes(1)],
    ['DCIM/101BODY/B002.MP4', randomBytes(200_000)],
  ]);
  for (const [rel, data] of files) {
    mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    writeFileSync(path.join(root, rel), data);
  }
  return { root, files };
}

/** A dock PC whose only driver is the PTP driver, talking to `responder`. */
function dockPc(responder: PtpResponder) {
  const driver = createPtpDriver({
    openTransport: async () => responder,
    timeoutMs: 300,
    transferBytes: 64 * 1024,
    session: { drainTimeoutMs: 20, statusPollMs: 2 },
  });
  return dockInProcess([driver], { retry: INGEST_RETRY, openRetry: OPEN_RETRY }, cleanup);
}

const until = async (what: string, cond: () => boolean, ms = 10_000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

interface Row {
  source_path: string;
  status: string;
  sha256: string | null;
  archive_path: string | null;
  deleted_from_camera: number;
}

/** Docks a camera in `mode`, waits until the dock is done with it, and checks every recording. */
async function offload(mode: Partial<PtpResponderOptions>) {
  const { root, files } = cameraFolder();
  const responder = new PtpResponder({ root, ...mode });
  const pc = dockPc(responder);
  pc.dock.attach(DEVICE);
  await until('the camera to be cleared', () => pc.cleared.includes('BWC-4711'));
  const rows = pc.db
    .prepare<[], Row>(
      'SELECT source_path, status, sha256, archive_path, deleted_from_camera FROM recordings ORDER BY source_path',
    )
    .all();
  expect(rows.map((r) => r.source_path)).toEqual([...files.keys()].sort());
  for (const r of rows) {
    const original = files.get(r.source_path)!;
    expect(r.status, r.source_path).toBe('verified');
    expect(r.sha256, r.source_path).toBe(sha(original));
    expect(sha(readFileSync(r.archive_path!)), r.source_path).toBe(sha(original));
  }
  return { ...pc, responder, root, files, rows };
}

describe('docking cameras that bend PTP', () => {
  it('a camera that refuses GetDeviceInfo outside a session is asked inside one, offloaded, verified and cleared', async () => {
    const t = await offload({ deviceInfoNeedsSession: true });
    expect(t.events('camera.open_retry')).toHaveLength(0);
    expect(t.events('camera.rejected')).toHaveLength(0);
    const [refused] = t.events('ptp.device_info_refused');
    expect(refused).toMatchObject({ operation: 'GetDeviceInfo', code: 'ptp-0x2003' });
    expect(t.responder.commands.slice(0, 3).map((c) => [c.op, c.transactionId])).toEqual([
      [Op.GetDeviceInfo, 0],
      [Op.OpenSession, 0],
      [Op.GetDeviceInfo, 1],
    ]);
    expect(t.rows.every((r) => r.deleted_from_camera === 1)).toBe(true);
    for (const rel of t.files.keys()) expect(existsSync(path.join(t.root, rel)), rel).toBe(false);
  });

  it('a camera that sizes every recording only through the 64-bit ObjectSize property is offloaded whole', async () => {
    const t = await offload({ unknownSizes: true });
    const sized = t.responder.commands.filter((c) => c.op === Op.GetObjectPropValue).map((c) => c.params[1]);
    expect(sized.length).toBeGreaterThanOrEqual(t.files.size);
    expect(new Set(sized)).toEqual(new Set([0xdc04]));
    expect(t.events('ptp.size_unknown')).toHaveLength(0);
    expect(t.rows.every((r) => r.deleted_from_camera === 1)).toBe(true);
  });

  it('a camera without GetPartialObject restarts an interrupted copy from the first byte, and says so once', async () => {
    const { root, files } = cameraFolder();
    const responder = new PtpResponder({ root, operations: WITHOUT_PARTIAL_READS });
    // The long recording's first transfer ends early: the copy fails after some bytes arrived.
    responder.inject({
      op: Op.GetObject,
      object: 'DCIM/100BODY/A001.MP4',
      kind: 'short-data',
      afterBytes: 1024 * 1024,
    });
    const pc = dockPc(responder);
    pc.dock.attach(DEVICE);
    await until('the camera to be cleared', () => pc.cleared.includes('BWC-4711'));
    const rows = pc.db
      .prepare<[], Row>(
        "SELECT source_path, status, sha256, archive_path, deleted_from_camera FROM recordings WHERE status = 'verified'",
      )
      .all();
    expect(rows).toHaveLength(files.size);
    for (const r of rows)
      expect(sha(readFileSync(r.archive_path!)), r.source_path).toBe(sha(files.get(r.source_path)!));
    const starts = pc.db
      .prepare<[], { details: string }>(
        "SELECT details FROM custody_events WHERE type = 'offload.started' ORDER BY seq",
      )
      .all()
      .map((e) => JSON.parse(e.details) as { attempt: number; resumeFrom: number });
    // The failed attempt had kept bytes; the next one still started from byte 0.
    const failed = pc.db
      .prepare<[], { details: string }>("SELECT details FROM custody_events WHERE type = 'offload.failed'")
      .all();
    expect(failed.map((e) => (JSON.parse(e.details) as { keptBytes: number }).keptBytes)).toEqual([expect.any(Number)]);
    expect((JSON.parse(failed[0]!.details) as { keptBytes: number }).keptBytes).toBeGreaterThan(0);
    expect(starts.some((s) => s.attempt === 2)).toBe(true);
    expect(starts.every((s) => s.resumeFrom === 0)).toBe(true);
    expect(responder.commands.some((c) => c.op === Op.GetPartialObject || c.op === Op.GetPartialObject64)).toBe(false);
    expect(pc.events('ptp.no_partial_read')).toHaveLength(1);
  });

  it('a camera that refuses DeleteObject keeps its verified recordings, is told so in one line and is not asked again', async () => {
    const t = await offload({ refuseDelete: true });
    expect(t.rows.every((r) => r.deleted_from_camera === 0)).toBe(true);
    for (const [rel, data] of t.files) expect(sha(readFileSync(path.join(t.root, rel))), rel).toBe(sha(data));
    const [line] = t.events('ptp.delete_unsupported');
    expect(t.events('ptp.delete_unsupported')).toHaveLength(1);
    expect(line).toMatchObject({ operation: 'DeleteObject', code: 'ptp-0x2005' });
    expect(t.responder.commands.filter((c) => c.op === Op.DeleteObject)).toHaveLength(1);
    // Each release job gave up at its first refusal instead of retrying it.
    const jobs = t.db
      .prepare<[], { state: string; attempts: number }>("SELECT state, attempts FROM jobs WHERE kind = 'release'")
      .all();
    expect(jobs).toHaveLength(t.files.size);
    expect(jobs.every((j) => j.state === 'failed' && j.attempts === 1)).toBe(true);
    await sleep(5 * INGEST_RETRY.maxDelayMs);
    expect(t.responder.commands.filter((c) => c.op === Op.DeleteObject)).toHaveLength(1);
  });
});

describe('offloading from a PTP camera: what is retried', () => {
  it('gives up on a recording the camera refuses with a deterministic code at the first refusal, and copies the rest', async () => {
    const { root, files } = cameraFolder();
    const responder = new PtpResponder({ root }).inject({
      op: Op.GetObject,
      kind: 'response',
      code: Rc.ParameterNotSupported,
    });
    const pc = dockPc(responder);
    pc.dock.attach(DEVICE);
    await until('the camera to be cleared', () => pc.cleared.includes('BWC-4711'));
    const rows = pc.db
      .prepare<[], { source_path: string; status: string; attempts: number }>(
        'SELECT source_path, status, attempts FROM recordings ORDER BY rowid',
      )
      .all();
    expect(rows.filter((r) => r.status === 'verified')).toHaveLength(files.size - 1);
    const [refused] = rows.filter((r) => r.status === 'failed');
    expect(refused).toMatchObject({ attempts: 1 });
    expect(existsSync(path.join(root, refused!.source_path))).toBe(true);
    expect(pc.events('offload.retry')).toHaveLength(0);
    expect(pc.events('offload.failed')).toEqual([
      expect.objectContaining({
        class: 'permanent',
        error: expect.stringMatching(/^ptp-0x2006: GetObject .*ParameterNotSupported \(0x2006\)/),
      }),
    ]);
  });
});

describe('opening a PTP camera: what is retried', () => {
  it('does not retry a camera that refuses GetDeviceInfo even inside its session', async () => {
    const { root } = cameraFolder();
    const responder = new PtpResponder({ root }).inject({
      op: Op.GetDeviceInfo,
      kind: 'response',
      code: Rc.SessionNotOpen,
      times: 2,
    });
    const pc = dockPc(responder);
    pc.dock.attach(DEVICE);
    await until('the camera to be rejected', () => pc.events('camera.rejected').length > 0);
    await sleep(3 * OPEN_RETRY.maxDelayMs);
    expect(pc.events('camera.open_retry')).toHaveLength(0);
    expect(pc.events('camera.rejected')[0]).toMatchObject({
      code: 'ptp-0x2003',
      attempts: 1,
      error: expect.stringMatching(/GetDeviceInfo.*SessionNotOpen \(0x2003\)/),
    });
    expect(responder.commands.filter((c) => c.op === Op.GetDeviceInfo)).toHaveLength(2);
  });

  it('retries a camera that answers DeviceBusy, and offloads it once it is ready', async () => {
    const { root } = cameraFolder();
    const responder = new PtpResponder({ root }).inject({
      op: Op.GetDeviceInfo,
      kind: 'response',
      code: Rc.DeviceBusy,
      times: 2,
    });
    const pc = dockPc(responder);
    pc.dock.attach(DEVICE);
    await until('the camera to be cleared', () => pc.cleared.includes('BWC-4711'));
    const [retry] = pc.events('camera.open_retry');
    expect(pc.events('camera.open_retry')).toHaveLength(1);
    expect(retry).toMatchObject({
      code: 'ptp-0x2019',
      error: expect.stringMatching(/GetDeviceInfo.*DeviceBusy \(0x2019\)/),
    });
  });
});
