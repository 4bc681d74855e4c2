/**
 * A camera session driven by the test: its reads and deletes wait on hooks the test resolves, so
 * a test can hold one step and see what else the code under test does meanwhile.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { CameraSession, RecordingEntry } from '../../drivers/types.js';

export const BYTES = 300_000;

/** A camera whose reads and deletes the test holds and lets go. */
export class ScriptedCamera implements CameraSession {
  readonly capabilities = { resume: true, delete: true };
  readonly started: string[] = [];
  readonly deleted: string[] = [];
  active = 0;
  private readonly readStartedWaiters: Array<{ id: string; resolve: () => void }> = [];

  constructor(
    readonly serial: string,
    readonly files: string[],
    private readonly hooks: {
      /** Resolves when the read of `id` may deliver its bytes. */
      beforeData?(id: string, cam: ScriptedCamera): Promise<void>;
      beforeDelete?(id: string, cam: ScriptedCamera): Promise<void>;
    } = {},
  ) {}

  readStarted(id: string): Promise<void> {
    if (this.started.includes(id)) return Promise.resolve();
    return new Promise((resolve) => this.readStartedWaiters.push({ id, resolve }));
  }

  async identity() {
    return { serial: this.serial, model: 'Scripted', firmware: '1' };
  }
  async battery() {
    return null;
  }
  async *list(): AsyncIterable<RecordingEntry> {
    for (const id of this.files) yield this.entry(id);
  }
  async stat(id: string): Promise<RecordingEntry | null> {
    return this.files.includes(id) && !this.deleted.includes(id) ? this.entry(id) : null;
  }
  private entry(id: string): RecordingEntry {
    return { id, path: id, bytes: BYTES, modifiedAt: null, identity: `${BYTES}` };
  }
  async read(id: string, offset: number): Promise<Readable> {
    this.started.push(id);
    for (const w of this.readStartedWaiters.filter((x) => x.id === id)) w.resolve();
    return Readable.from(this.deliver(id, offset), { objectMode: false });
  }
  private async *deliver(id: string, offset: number): AsyncGenerator<Buffer> {
    this.active++;
    try {
      await this.hooks.beforeData?.(id, this);
      yield contentOf(this.serial, id).subarray(offset);
    } finally {
      this.active--;
    }
  }
  async delete(id: string): Promise<void> {
    await this.hooks.beforeDelete?.(id, this);
    this.deleted.push(id);
  }
  async close(): Promise<void> {}
}

/** What recording `id` of camera `serial` holds: fixed, so its SHA-256 can be checked. */
export function contentOf(serial: string, id: string): Buffer {
  const seed = createHash('sha256').update(`${serial}/${id}`).digest();
  const out = Buffer.alloc(BYTES);
  for (let i = 0; i < BYTES; i += seed.length) seed.copy(out, i);
  return out;
}
