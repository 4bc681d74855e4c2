/**
 * Every dock's state document from the bucket: one listing of the top-level prefixes (paginated,
 * with a delimiter, so recordings are never listed) and one GET per prefix, at most `concurrency`
 * at a time. Needs only s3:ListBucket and s3:GetObject.
 */
import { GetObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { MAX_DOCUMENT_BYTES, parseDockState, type DockState } from './document.js';

export interface FetchedState {
  /** The top-level folder the document was found under, without its slash. */
  prefix: string;
  key: string;
  /** The store's own time of the last PUT: the docks' clocks need not agree with each other. */
  lastModified: Date | null;
  doc: DockState | null;
  /** Why the document could not be used (doc is then null). */
  error: string | null;
}

export interface FetchOptions {
  concurrency?: number;
  signal?: AbortSignal;
}

export async function listDockPrefixes(client: S3Client, bucket: string, signal?: AbortSignal): Promise<string[]> {
  const prefixes: string[] = [];
  let token: string | undefined;
  do {
    const page = await client.send(
      new ListObjectsV2Command({ Bucket: bucket, Delimiter: '/', ContinuationToken: token }),
      { abortSignal: signal },
    );
    for (const p of page.CommonPrefixes ?? []) if (p.Prefix) prefixes.push(p.Prefix.slice(0, -1));
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return prefixes;
}

function isNotFound(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e.name === 'NoSuchKey' || e.name === 'NotFound' || e.$metadata?.httpStatusCode === 404;
}

async function fetchOne(
  client: S3Client,
  bucket: string,
  prefix: string,
  signal?: AbortSignal,
): Promise<FetchedState | null> {
  const key = `${prefix}/_dock/state.json`;
  try {
    const r = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: signal });
    const lastModified = r.LastModified ?? null;
    if ((r.ContentLength ?? 0) > MAX_DOCUMENT_BYTES) {
      await r.Body?.transformToByteArray().catch(() => undefined);
      return {
        prefix,
        key,
        lastModified,
        doc: null,
        error: `${r.ContentLength} bytes, more than a dock's state document may have`,
      };
    }
    const text = await r.Body!.transformToString('utf8');
    try {
      return { prefix, key, lastModified, doc: parseDockState(text), error: null };
    } catch (err) {
      return { prefix, key, lastModified, doc: null, error: (err as Error).message };
    }
  } catch (err) {
    // A folder of recordings from a dock that does not publish (an older dockd): not a dock here.
    if (isNotFound(err)) return null;
    throw err;
  }
}

/** The documents of every dock that publishes one, in prefix order. */
export async function fetchFleet(client: S3Client, bucket: string, opts: FetchOptions = {}): Promise<FetchedState[]> {
  const prefixes = await listDockPrefixes(client, bucket, opts.signal);
  const out: Array<FetchedState | null> = new Array(prefixes.length).fill(null);
  let next = 0;
  const worker = async () => {
    while (next < prefixes.length) {
      const i = next++;
      out[i] = await fetchOne(client, bucket, prefixes[i]!, opts.signal);
    }
  };
  await Promise.all(Array.from({ length: Math.min(opts.concurrency ?? 16, prefixes.length) }, worker));
  return out.filter((s): s is FetchedState => s !== null);
}
