/**
 * Publishes this dock's state document to the replication bucket: at start, at every docking
 * and undocking, every `fleet.publishIntervalMs`, and once more, marked stopped, on a graceful
 * stop. Nothing waits for it: docking and ingest only poke it, one PUT is in flight at a time and
 * pokes meanwhile fold into one more, and a store that fails is told once per streak and tried
 * again at the next tick.
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { FailureStreak } from '../log.js';
import { describeError } from '../replication/replicator.js';
import { stateKey, type DockState } from './document.js';
import { DockStateBuilder } from './state.js';
import { s3ClientFor } from '../replication/store.js';
import type { S3Credentials } from '../replication/credentials.js';
import type { Config } from '../config.js';
import type { Db } from '../store/db.js';
import type { DockKey } from '../crypto/signing.js';

export type PutDocument = (key: string, body: Buffer, signal: AbortSignal) => Promise<void>;

/** A PUT with the document's own SHA-256 in `sha256`, as every object of the bucket carries one. */
export function s3PutDocument(client: S3Client, bucket: string): PutDocument {
  return async (key, body, signal) => {
    await client.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: key,
        Body: body,
        ContentLength: body.length,
        // Object Lock buckets refuse a PUT without a body digest.
        ContentMD5: createHash('md5').update(body).digest('base64'),
        ContentType: 'application/json',
        Metadata: { sha256: createHash('sha256').update(body).digest('hex') },
      }),
      { abortSignal: signal },
    );
  };
}

export interface PublisherOptions {
  key: string;
  intervalMs: number;
  build(stoppedAt: string | null): DockState;
  put: PutDocument;
  log: Logger;
  /** Called once the last document is out (or given up). */
  close?(): void;
}

/** How long the last document of a stop may take: the whole stop has 10 s. */
const STOP_PUBLISH_MS = 2500;
/** How long a stop waits for a PUT already under way before it cuts it off. */
const STOP_WAIT_MS = 1000;

export class FleetPublisher {
  private timer: NodeJS.Timeout | null = null;
  private inFlight: Promise<void> | null = null;
  private again = false;
  private stopping = false;
  private readonly abort = new AbortController();
  private readonly failing = new FailureStreak();

  constructor(private readonly opts: PublisherOptions) {}

  start(): void {
    this.opts.log.info(
      { event: 'fleet.publishing', key: this.opts.key, intervalMs: this.opts.intervalMs },
      `publishing this dock's state to ${this.opts.key} every ${this.opts.intervalMs / 1000} s`,
    );
    this.poke();
    this.timer = setInterval(() => this.poke(), this.opts.intervalMs);
  }

  /** Something changed (a camera docked or left): publish soon, without waiting for it. */
  poke(): void {
    if (this.stopping) return;
    if (this.inFlight) {
      this.again = true;
      return;
    }
    const timeoutMs = Math.min(30_000, Math.max(5000, this.opts.intervalMs));
    this.inFlight = this.publish(null, AbortSignal.any([this.abort.signal, AbortSignal.timeout(timeoutMs)])).finally(
      () => {
        this.inFlight = null;
        if (this.again) {
          this.again = false;
          this.poke();
        }
      },
    );
  }

  /** The last document, marked stopped; it must not be overtaken by one still under way. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    if (this.timer) clearInterval(this.timer);
    if (this.inFlight) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.inFlight, new Promise((r) => (timer = setTimeout(r, STOP_WAIT_MS)))]);
      clearTimeout(timer);
      this.abort.abort();
      await this.inFlight;
    }
    try {
      await this.publish(new Date().toISOString(), AbortSignal.timeout(STOP_PUBLISH_MS));
    } finally {
      this.opts.close?.();
    }
  }

  private async publish(stoppedAt: string | null, signal: AbortSignal): Promise<void> {
    const { log, key } = this.opts;
    let body: Buffer;
    let doc: DockState;
    try {
      doc = this.opts.build(stoppedAt);
      body = Buffer.from(JSON.stringify(doc));
    } catch (err) {
      this.failed(`the store could not be read: ${(err as Error)?.message ?? String(err)}`);
      return;
    }
    try {
      await this.opts.put(key, body, signal);
    } catch (err) {
      if (this.abort.signal.aborted && !stoppedAt) return;
      this.failed(signal.aborted ? 'the store did not answer in time' : describeError(err));
      return;
    }
    const failedForMs = this.failing.ended();
    if (failedForMs !== null)
      log.info(
        { event: 'fleet.publish_restored', key, failedForMs },
        `this dock's state is published again, after ${Math.round(failedForMs / 1000)} s`,
      );
    log.debug(
      {
        event: 'fleet.published',
        key,
        bytes: body.length,
        cameras: doc.cameras.length,
        seq: doc.custodyHead?.seq ?? null,
        stopped: stoppedAt !== null,
      },
      `published ${key}`,
    );
  }

  private failed(error: string): void {
    if (!this.failing.failed()) return;
    this.opts.log.warn(
      { event: 'fleet.publish_failed', key: this.opts.key, error, retryInMs: this.opts.intervalMs },
      `cannot publish this dock's state to ${this.opts.key}: ${error}; trying again at the next tick (offloading is not affected)`,
    );
  }
}

export interface FleetWiring {
  db: Db;
  cfg: Config;
  creds: S3Credentials;
  key: DockKey;
  startedAt: string;
  version: string;
  log: Logger;
}

/** The publisher of a replicating daemon, with an S3 client of its own (the replicator destroys its). */
export function createFleetPublisher(w: FleetWiring): FleetPublisher {
  const rep = w.cfg.replication!;
  const client = s3ClientFor(rep, w.creds);
  const builder = new DockStateBuilder(w.db, {
    dockId: rep.dockId,
    version: w.version,
    startedAt: w.startedAt,
    publishIntervalMs: w.cfg.fleet.publishIntervalMs,
    shiftHours: w.cfg.battery.shiftHours,
    dataDir: w.cfg.dataDir,
    key: w.key,
  });
  const publisher = new FleetPublisher({
    key: stateKey(rep.dockId),
    intervalMs: w.cfg.fleet.publishIntervalMs,
    build: (stoppedAt) => builder.build(new Date(), stoppedAt),
    put: s3PutDocument(client, rep.bucket),
    log: w.log,
    close: () => client.destroy(),
  });
  return publisher;
}
