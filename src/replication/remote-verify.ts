import type { Db } from '../store/db.js';
import { replicationVerifiedEvents } from '../store/custody-log.js';
import type { ObjectStore } from './store.js';

export interface RemoteCheck {
  checked: number;
  ok: number;
  missing: string[];
  mismatched: string[];
  unlocked: string[];
}

/**
 * `dockd verify --remote`: every recording whose custody says `replication.verified` must still
 * be in the store, with its SHA-256 in the metadata and retention at least as long as recorded.
 */
export async function verifyRemote(db: Db, store: ObjectStore): Promise<RemoteCheck> {
  const res: RemoteCheck = { checked: 0, ok: 0, missing: [], mismatched: [], unlocked: [] };
  const rows = replicationVerifiedEvents(db);
  const latest = new Map<string, { sha256: string; key: string; retainUntil: string | null }>();
  for (const r of rows) {
    const d = JSON.parse(r.details) as { key: string; retainUntil: string | null };
    latest.set(r.recording, { sha256: r.sha256, key: d.key, retainUntil: d.retainUntil });
  }
  for (const [id, want] of latest) {
    res.checked++;
    const got = await store.head(want.key);
    if (!got) res.missing.push(id);
    else if (got.metadata.sha256 !== want.sha256) res.mismatched.push(id);
    else if (!got.retainUntil || (want.retainUntil && got.retainUntil.getTime() < Date.parse(want.retainUntil)))
      res.unlocked.push(id);
    else res.ok++;
  }
  return res;
}
