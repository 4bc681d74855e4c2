/**
 * A store in a temporary data dir with one camera docked, for tests of the store's transitions
 * and of what reads them; and the verification a copy of ten identical bytes would report.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CameraStore } from '../../src/store/cameras.js';
import { CustodyLog } from '../../src/store/custody-log.js';
import { openStore, type Db } from '../../src/store/db.js';
import { Transitions, type Verification } from '../../src/store/transitions.js';

export interface TestStore {
  dir: string;
  db: Db;
  custody: CustodyLog;
  tx: Transitions;
  close(): void;
}

/** A fresh store whose camera `serial` is docked (visit 1) in slot-1. */
export function storeWithCamera(serial = 'CAM1'): TestStore {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dockd-store-'));
  const db = openStore(dir);
  const custody = new CustodyLog(db);
  const camera = { serial, model: 'm', firmware: 'f', slot: 'slot-1', clockSkewSeconds: 0, battery: null };
  new CameraStore(db, custody).docked({ ...camera, at: new Date(), details: {} }, 1);
  return {
    dir,
    db,
    custody,
    tx: new Transitions(db, custody),
    close() {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A plain copy verified on its first attempt; `release` queues the camera's deletion. */
export function verification(bytes: number, release: boolean, archivePath = '/archive/x'): Verification {
  return {
    sha256: 'a'.repeat(64),
    storedSha256: 'a'.repeat(64),
    storedBytes: bytes,
    bytes,
    archivePath,
    at: new Date(),
    attempt: 1,
    resumedFrom: 0,
    resumeRefused: false,
    verifiedSource: false,
    encryptedTo: null,
    release,
    replicate: false,
  };
}
