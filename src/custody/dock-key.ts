/**
 * The dock key as the daemon's start finds it. A power cut while an older dockd wrote the key
 * left `keys/dock-signing.pem` empty, and every start after it failed: this judges such files
 * instead. A key that never signed a checkpoint proves nothing yet, so it is made anew, with a
 * custody event saying so; a key that did sign is the dock's identity, never replaced silently.
 */
import { generateKeyPairSync } from 'node:crypto';
import { rmSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Db } from '../store/db.js';
import { checkpointsSigned } from '../store/checkpoints.js';
import { temporaryName } from '../lib/durable.js';
import type { CustodyLog } from '../store/custody-log.js';
import {
  PRIVATE_KEY_FILE,
  PUBLIC_KEY_FILE,
  describeDockKey,
  describeKeyFile,
  keyDir,
  keyIdOf,
  rawPublicKey,
  readPrivateKeyFile,
  readPublicKeyFile,
  writeNewDockKey,
  writePublicKey,
  type DockKey,
} from '../crypto/signing.js';

/** A start that must not go on: the message says what was found and what a person can do. */
export class DockKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DockKeyError';
  }
}

interface Signed {
  checkpoints: number;
  lastSeq: number;
}

function signedBy(db: Db, keyId: string | null): Signed {
  return checkpointsSigned(db, keyId) ?? { checkpoints: 0, lastSeq: 0 };
}

export function openDockKey(dataDir: string, db: Db, custody: CustodyLog, log: Logger): DockKey {
  const dir = keyDir(dataDir);
  // A write cut short before its rename: never the key, whatever it holds.
  for (const name of [PRIVATE_KEY_FILE, PUBLIC_KEY_FILE]) rmSync(temporaryName(path.join(dir, name)), { force: true });

  const priv = readPrivateKeyFile(dataDir);
  const pub = readPublicKeyFile(dataDir);
  if (priv.state === 'ok') {
    const key = describeDockKey(priv.key);
    const pubKeyId = pub.state === 'ok' ? keyIdOf(rawPublicKey(pub.key)) : null;
    if (pubKeyId !== key.keyId) {
      // The public half is derived from the private one: writing it again loses nothing.
      const found =
        pub.state === 'ok'
          ? `keys/${PUBLIC_KEY_FILE} holds another key (${pubKeyId})`
          : describeKeyFile(PUBLIC_KEY_FILE, pub);
      writePublicKey(dataDir, key.publicKey);
      log.warn(
        { event: 'custody.public_key_restored', keyId: key.keyId, found },
        `${found}; wrote it again from the private key ${key.keyId}`,
      );
    }
    return key;
  }

  const knownKeyId = pub.state === 'ok' ? keyIdOf(rawPublicKey(pub.key)) : null;
  // Without the public half the lost key's id is unknown: any checkpoint may have been its.
  const signed = signedBy(db, knownKeyId);
  const found = `${describeKeyFile(PRIVATE_KEY_FILE, priv)}, ${describeKeyFile(PUBLIC_KEY_FILE, pub)}`;
  if (signed.checkpoints > 0) {
    const whose = knownKeyId ? `key ${knownKeyId}` : 'this dock (key unknown: no readable public key)';
    throw new DockKeyError(
      `${found}, but ${whose} signed ${signed.checkpoints} custody checkpoint(s), up to seq ${signed.lastSeq}: ` +
        `the dock's signing key cannot be replaced without breaking what it signed. Restore ${dir} from a backup of this dock ` +
        `(the public key in daemon.started log lines and custody exports shows which one), then start again.`,
    );
  }
  if (priv.state === 'missing' && pub.state === 'missing') return writeNewDockKey(dataDir);

  // On the record before the files change: a cut in between leaves the event and the torn
  // files, and the next start replaces them again, saying so again.
  const pair = generateKeyPairSync('ed25519');
  const newKeyId = keyIdOf(rawPublicKey(pair.publicKey));
  custody.record({
    type: 'custody.key_replaced',
    details: {
      found,
      oldKeyId: knownKeyId,
      newKeyId,
      reason: 'the old key could not be read and had signed no checkpoint',
    },
  });
  const key = writeNewDockKey(dataDir, pair);
  log.warn(
    { event: 'custody.key_replaced', found, oldKeyId: knownKeyId, keyId: key.keyId },
    `${found}; the key had signed nothing, so a new one (${key.keyId}) replaces it`,
  );
  return key;
}
