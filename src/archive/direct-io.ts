/**
 * Staging files written and verified with O_DIRECT (`ingest.directIo`): from our buffer to the
 * disk with no copy in the page cache, and read back from the disk.
 *
 * Why: the verification re-read of a buffered copy reads the page cache, so it proves the bytes
 * reached the filesystem intact but not that the disk gives them back; with O_DIRECT it reads
 * what the disk holds. It also spares the CPU the copy into page-cache pages (0.7–2.4 of 6.4–8
 * CPU-seconds per 2 GB offloaded on the benchmark VM) and leaves the page cache to what the
 * machine uses.
 * The price is a disk read per recording, which on that VM's shared virtual disk made offloading
 * about 1.4 × slower, so it is off by default.
 *
 * O_DIRECT wants buffers, lengths and file offsets aligned to the device's block. Node has no
 * aligned allocation, but a WebAssembly memory is mapped whole pages at a page boundary, so its
 * buffer is aligned to 4096 and every 4096-multiple offset into it is too. A file's last partial
 * block is written padded to a whole block and the file cut back to its size.
 *
 * Not every filesystem takes O_DIRECT (or these alignments), so a probe decides once at start;
 * without it, copies are buffered as before.
 */
import { closeSync, constants, openSync, readSync, unlinkSync, writeSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { ArchiveError } from './errors.js';

export const DIRECT_ALIGN = 4096;
const WASM_PAGE = 64 * 1024;

/** `bytes` (rounded up to 64 KiB) of page-aligned memory. */
export function alignedBuffer(bytes: number): Buffer {
  const pages = Math.max(1, Math.ceil(bytes / WASM_PAGE));
  return Buffer.from(new WebAssembly.Memory({ initial: pages, maximum: pages }).buffer);
}

/**
 * Aligned buffers for direct writes, kept for reuse: each is its own WebAssembly memory, which
 * reserves address space beyond its size, so they are made once and not per copy. Holds at most
 * as many as were in use at once.
 */
export class AlignedBuffers {
  private readonly free: Buffer[] = [];

  constructor(readonly size: number) {}

  take(): Buffer {
    return this.free.pop() ?? alignedBuffer(this.size);
  }

  give(buf: Buffer): void {
    this.free.push(buf);
  }
}

/**
 * Whether files in `dir` can be written and read back with O_DIRECT at DIRECT_ALIGN. Returns
 * the reason when not, for the log.
 */
export function probeDirectIo(dir: string): { ok: true } | { ok: false; reason: string } {
  const file = path.join(dir, `.direct-io-probe-${process.pid}`);
  const buf = alignedBuffer(DIRECT_ALIGN).subarray(0, DIRECT_ALIGN);
  buf.fill(0x5a);
  let fd = -1;
  try {
    fd = openSync(file, constants.O_RDWR | constants.O_CREAT | constants.O_TRUNC | (constants.O_DIRECT ?? 0), 0o600);
    if (!constants.O_DIRECT) return { ok: false, reason: 'O_DIRECT is not available on this platform' };
    if (writeSync(fd, buf, 0, DIRECT_ALIGN, 0) !== DIRECT_ALIGN) return { ok: false, reason: 'short direct write' };
    buf.fill(0);
    if (readSync(fd, buf, 0, DIRECT_ALIGN, 0) !== DIRECT_ALIGN || buf.some((b) => b !== 0x5a))
      return { ok: false, reason: 'direct read did not return what was written' };
    return { ok: true };
  } catch (err) {
    return { ok: false, reason: (err as NodeJS.ErrnoException).code ?? String(err) };
  } finally {
    if (fd >= 0) closeSync(fd);
    try {
      unlinkSync(file);
    } catch {
      // never created
    }
  }
}

/**
 * Writes a stream of chunks to a file opened with O_DIRECT, from position `position` (a
 * multiple of DIRECT_ALIGN). Chunks are copied into one aligned buffer while the previous one is
 * on its way to the disk, so reading from the camera and writing overlap.
 */
export class DirectWriter {
  private buf: Buffer;
  private spare: Buffer | null = null;
  /** File position of buf[0], and how much of buf holds data. */
  private base: number;
  private fill = 0;
  private inflight: Promise<void> | null = null;
  private failure: unknown = null;
  private done = 0;
  private closed = false;

  constructor(
    private readonly fh: FileHandle,
    position: number,
    private readonly buffers: AlignedBuffers,
  ) {
    if (position % DIRECT_ALIGN !== 0)
      throw new RangeError(`direct write position ${position} is not a multiple of ${DIRECT_ALIGN}`);
    this.base = position;
    this.done = position;
    this.buf = buffers.take();
  }

  /** Bytes that are in the file: what an fsync now makes durable. */
  get written(): number {
    return this.done;
  }

  /** Copies the chunk in: the caller may reuse it as soon as this resolves. */
  async write(chunk: Buffer): Promise<void> {
    for (let off = 0; off < chunk.length;) {
      const n = chunk.copy(this.buf, this.fill, off);
      this.fill += n;
      off += n;
      if (this.fill === this.buf.length) await this.rotate();
    }
  }

  /** Puts every whole block in the file; the last partial block stays here for more bytes. */
  async flush(): Promise<void> {
    await this.settled();
    const whole = this.fill - (this.fill % DIRECT_ALIGN);
    if (whole === 0) return;
    await writeAll(this.fh, this.buf, whole, this.base);
    this.done = this.base + whole;
    this.buf.copyWithin(0, whole, this.fill);
    this.base += whole;
    this.fill -= whole;
  }

  /** Puts everything in the file: the partial block padded with zeros, the file cut to size. */
  async finish(): Promise<void> {
    await this.flush();
    if (this.fill === 0) return;
    const end = this.base + this.fill;
    this.buf.fill(0, this.fill, DIRECT_ALIGN);
    await writeAll(this.fh, this.buf, DIRECT_ALIGN, this.base);
    await this.fh.truncate(end);
    this.done = end;
    this.base = end;
    this.fill = 0;
  }

  /** Waits for the write under way and hands the buffers back; the writer is done. */
  async close(): Promise<void> {
    await this.inflight;
    // Twice would lend the same memory to two later writers.
    if (this.closed) return;
    this.closed = true;
    this.buffers.give(this.buf);
    if (this.spare) this.buffers.give(this.spare);
    this.spare = null;
  }

  private async settled(): Promise<void> {
    await this.inflight;
    // A failed write leaves a gap: nothing after it may reach the file.
    if (this.failure !== null) throw this.failure;
  }

  private async rotate(): Promise<void> {
    await this.settled();
    const full = this.buf;
    const at = this.base;
    const len = this.fill;
    this.buf = this.spare ?? this.buffers.take();
    this.spare = null;
    this.base += len;
    this.fill = 0;
    this.inflight = writeAll(this.fh, full, len, at).then(
      () => {
        this.done = at + len;
        this.spare = full;
        this.inflight = null;
      },
      (err: unknown) => {
        this.failure = err;
        this.buffers.give(full);
        this.inflight = null;
      },
    );
  }
}

async function writeAll(fh: FileHandle, buf: Buffer, len: number, position: number): Promise<void> {
  for (let off = 0; off < len;) {
    const { bytesWritten } = await fh.write(buf, off, len - off, position + off);
    // A file that takes nothing and says no error would otherwise hold the copy here for ever.
    if (bytesWritten === 0) throw new ArchiveError('write-stalled', 'the staging file accepted no bytes');
    off += bytesWritten;
  }
}
