/**
 * A docked PTP/MTP camera as a CameraSession. Recording ids are object handles written as
 * `0x0000002a`; paths are the folder names from the storage root joined with `/`.
 */
import {
  DriverError,
  boundString,
  type BatteryReading,
  type CameraIdentity,
  type CameraSettings,
  type CameraSession,
  type DriverLogger,
  type ReadOptions,
  type RecordingEntry,
  type SessionCapabilities,
} from '../types.js';
import { DatasetReader } from './codec.js';
import { DeviceProp, Format, ObjectProp, Op, PARENT_ROOT, Rc } from './constants.js';
import { decodeObjectInfo, parsePtpDateTime, type PtpDeviceInfo, type PtpObjectInfo } from './datasets.js';
import { PtpProtocolError, PtpResponseError } from './errors.js';
import { readBatteryPercent } from './battery.js';
import { readSettings, setDateTime, writeSettings, type DescribedSetting } from './device-config.js';
import { PtpObjectStream, type ReadMethod } from './read-stream.js';
import type { PtpSession } from './session.js';
import type { PtpTransport } from './transport.js';

export interface PtpCameraSessionOptions {
  session: PtpSession;
  transport: PtpTransport;
  deviceInfo: PtpDeviceInfo;
  identity: CameraIdentity;
  /** Some storage allows deleting (DeleteObject listed and not every store read-only). */
  deletable: boolean;
  log: DriverLogger;
  maxDepth: number;
  maxObjects: number;
  /** Stream buffer for reads; a bulk transfer is at most this big too. */
  readBufferBytes: number;
  /** List each storage with one GetObjectHandles instead of folder by folder (a quirk). */
  listWholeStorage?: boolean;
  /** DateTime is described as writable and SetDevicePropValue is listed. */
  clockSettable?: boolean;
  /** The setting profile's properties the camera describes; absent without a profile. */
  settings?: readonly DescribedSetting[];
  /** The profile says writing its properties disturbs recordings on the camera. */
  settingsDisturbRecordings?: boolean;
}

export function handleId(handle: number): string {
  return `0x${handle.toString(16).padStart(8, '0')}`;
}

export function parseHandleId(id: string): number {
  if (typeof id !== 'string' || !/^0x[0-9a-f]{8}$/i.test(id))
    throw new DriverError('permanent', 'bad-id', `not a PTP recording id: ${JSON.stringify(String(id).slice(0, 64))}`);
  return parseInt(id.slice(2), 16);
}

/**
 * A filename as one path component. The camera's name is kept except where it would change
 * the path's structure: `/` and NUL become `_`, and an empty, `.` or `..` name becomes the
 * object's handle.
 */
export function componentName(raw: string, handle: number): string {
  const name = raw.replace(/[/\0]/g, '_');
  return name === '' || name === '.' || name === '..' ? handleId(handle) : name;
}

/** A storage id whose low half is 0 is an empty slot (no card), not a store. */
function present(storageId: number): boolean {
  return (storageId & 0xffff) !== 0;
}

interface WalkState {
  objects: number;
  folders: Set<number>;
}

export class PtpCameraSession implements CameraSession {
  readonly capabilities: SessionCapabilities;
  /** Present only when the camera has a DateTime property to read. */
  readonly clock?: () => Promise<Date>;
  readonly setClock?: (date: Date) => Promise<void>;
  readonly settings?: () => Promise<CameraSettings>;
  readonly applySettings?: (partial: CameraSettings) => Promise<void>;
  private closed = false;
  private readonly streams = new Set<PtpObjectStream>();
  private readonly ops: ReadonlySet<number>;
  private readonly props: ReadonlySet<number>;
  private readonly session: PtpSession;
  private readonly log: DriverLogger;
  /** Deletions one after another, so a camera that refuses DeleteObject is asked only once. */
  private deletions: Promise<unknown> = Promise.resolve();

  constructor(private readonly o: PtpCameraSessionOptions) {
    this.session = o.session;
    this.log = o.log;
    this.ops = new Set(o.deviceInfo.operations);
    this.props = new Set(o.deviceInfo.deviceProperties);
    this.capabilities = {
      resume: this.ops.has(Op.GetPartialObject64) || this.ops.has(Op.GetPartialObject),
      delete: o.deletable && this.ops.has(Op.DeleteObject),
    };
    if (this.ops.has(Op.GetDevicePropValue) && this.props.has(DeviceProp.DateTime)) this.clock = () => this.readClock();
    if (o.clockSettable) {
      this.capabilities.clock = true;
      this.setClock = (date) => this.writeClock(date);
    }
    const described = o.settings ?? [];
    if (described.length > 0) {
      this.capabilities.settings = true;
      if (o.settingsDisturbRecordings) this.capabilities.settingsDisturbRecordings = true;
      this.settings = async () => {
        this.ready();
        return readSettings(this.session, described);
      };
      this.applySettings = async (partial) => {
        this.ready();
        return writeSettings(this.session, described, partial, this.ops.has(Op.SetDevicePropValue));
      };
    }
    if (!this.capabilities.resume) {
      this.log.info(
        { event: 'ptp.no_partial_read' },
        'camera cannot read from an offset (no GetPartialObject): an interrupted copy starts over from the beginning',
      );
    }
  }

  private ready(): void {
    if (this.closed) throw new DriverError('deviceGone', 'closed', 'session is closed');
    const gone = this.session.pipe.gone;
    if (gone) throw gone;
  }

  async identity(): Promise<CameraIdentity> {
    this.ready();
    return { ...this.o.identity };
  }

  async battery(): Promise<BatteryReading | null> {
    this.ready();
    if (!this.ops.has(Op.GetDevicePropValue) || !this.props.has(DeviceProp.BatteryLevel)) return null;
    const percent = await readBatteryPercent(this.session, this.ops.has(Op.GetDevicePropDesc));
    // PTP reports no charge state; a camera in the dock draws power from it until it is full.
    return { percent, charging: percent < 100 };
  }

  private async readClock(): Promise<Date> {
    this.ready();
    const { data } = await this.session.request(
      Op.GetDevicePropValue,
      [DeviceProp.DateTime],
      'GetDevicePropValue DateTime',
    );
    const text = new DatasetReader(data ?? new Uint8Array(0), 'DateTime').string('DateTime');
    const at = parsePtpDateTime(text);
    if (!at)
      throw new PtpProtocolError(
        `camera clock ${JSON.stringify(boundString(text, 64))} is not a PTP DateTime`,
        'ptp-bad-datetime',
      );
    return at;
  }

  private async objectInfo(handle: number): Promise<PtpObjectInfo> {
    const { data } = await this.session.request(Op.GetObjectInfo, [handle], `GetObjectInfo ${handleId(handle)}`);
    if (!data)
      throw new PtpProtocolError(`GetObjectInfo ${handleId(handle)}: camera sent no ObjectInfo`, 'ptp-no-data');
    return decodeObjectInfo(data);
  }

  /** ObjectInfo's 32-bit size, or MTP's 64-bit ObjectSize property for 4 GiB and more; null when the camera cannot say. */
  private async sizeOf(handle: number, info: PtpObjectInfo): Promise<number | null> {
    if (info.compressedSize !== null) return info.compressedSize;
    if (!this.ops.has(Op.GetObjectPropValue)) return null;
    try {
      const { data } = await this.session.request(
        Op.GetObjectPropValue,
        [handle, ObjectProp.ObjectSize],
        `GetObjectPropValue ObjectSize ${handleId(handle)}`,
      );
      const r = new DatasetReader(data ?? new Uint8Array(0), 'ObjectSize');
      return r.u64('ObjectSize');
    } catch (err) {
      if (err instanceof PtpResponseError && err.kind === 'permanent') return null;
      throw err;
    }
  }

  private async u32List(op: number, params: number[], what: string): Promise<number[]> {
    const { data } = await this.session.request(op, params, what);
    return new DatasetReader(data ?? new Uint8Array(0), what).u32Array(what);
  }

  private async writeClock(date: Date): Promise<void> {
    this.ready();
    try {
      await setDateTime(this.session, date);
    } catch (err) {
      // Described as writable yet refused as an operation: asking again this docking is pointless.
      if (err instanceof PtpResponseError && err.responseCode === Rc.OperationNotSupported)
        this.capabilities.clock = false;
      throw err;
    }
  }

  async *list(): AsyncIterable<RecordingEntry> {
    this.ready();
    const storages = (await this.u32List(Op.GetStorageIDs, [], 'GetStorageIDs')).filter(present);
    const state: WalkState = { objects: 0, folders: new Set() };
    for (const storage of storages) {
      // One store keeps the camera's own paths; several get a folder each so equal paths stay apart.
      const prefix = storages.length > 1 ? `store-${storage.toString(16).padStart(8, '0')}/` : '';
      if (this.o.listWholeStorage) yield* this.listStorage(storage, prefix, state);
      else yield* this.walk(storage, PARENT_ROOT, prefix, 0, state);
    }
  }

  private async *walk(
    storage: number,
    parent: number,
    prefix: string,
    depth: number,
    state: WalkState,
  ): AsyncGenerator<RecordingEntry> {
    let handles: number[];
    try {
      // Format 0 (any): QEMU's usb-mtp refuses a format filter, and every object there is 0x3000 anyway.
      handles = await this.u32List(Op.GetObjectHandles, [storage, 0, parent], `GetObjectHandles ${prefix || '/'}`);
    } catch (err) {
      // A card pulled between GetStorageIDs and now: its recordings are not on the camera any more.
      if (
        depth === 0 &&
        err instanceof PtpResponseError &&
        (err.responseCode === Rc.StoreNotAvailable || err.responseCode === Rc.InvalidStorageID)
      ) {
        this.log.warn({ event: 'ptp.store_unavailable', storage }, `storage ${storage.toString(16)} is not available`);
        return;
      }
      throw err;
    }
    const names = new Set<string>();
    for (const handle of handles) {
      this.ready();
      // Stopping early would make the unlisted recordings look deleted; refuse the whole listing instead.
      if (++state.objects > this.o.maxObjects) {
        throw new DriverError(
          'permanent',
          'ptp-too-many-objects',
          `camera lists more than ${this.o.maxObjects} objects`,
        );
      }
      const info = await this.objectInfo(handle);
      let name = componentName(info.filename, handle);
      if (names.has(name)) name = `${name}~${handleId(handle)}`;
      names.add(name);
      const path = prefix + name;
      if (info.format === Format.Association) {
        if (state.folders.has(handle)) {
          this.log.warn(
            { event: 'ptp.folder_loop', path: boundString(path, 512) },
            'camera lists a folder inside itself; skipped',
          );
          continue;
        }
        state.folders.add(handle);
        if (depth + 1 > this.o.maxDepth) {
          this.log.warn(
            { event: 'ptp.too_deep', path: boundString(path, 512) },
            `folder deeper than ${this.o.maxDepth} levels skipped`,
          );
          continue;
        }
        yield* this.walk(storage, handle, `${path}/`, depth + 1, state);
        continue;
      }
      const bytes = await this.sizeOf(handle, info);
      if (bytes === null) {
        this.log.error(
          { event: 'ptp.size_unknown', path: boundString(path, 512), id: handleId(handle) },
          'camera reports 4 GiB or more and cannot say how much; recording skipped',
        );
        continue;
      }
      yield entryOf(handle, path, bytes, info);
    }
  }

  /**
   * Every object of a storage from one GetObjectHandles (parent 0 means all of them), folder
   * paths rebuilt from each object's ParentObject. Only folders are remembered (name and parent);
   * a folder listed after its files is asked for with GetObjectInfo.
   */
  private async *listStorage(storage: number, prefix: string, state: WalkState): AsyncGenerator<RecordingEntry> {
    const handles = await this.u32List(
      Op.GetObjectHandles,
      [storage, 0, 0],
      `GetObjectHandles ${prefix || '/'} (whole storage)`,
    );
    const folders = new Map<number, { name: string; parent: number }>();
    const paths = new Set<string>();
    for (const handle of handles) {
      this.ready();
      if (++state.objects > this.o.maxObjects) {
        throw new DriverError(
          'permanent',
          'ptp-too-many-objects',
          `camera lists more than ${this.o.maxObjects} objects`,
        );
      }
      const info = await this.objectInfo(handle);
      if (info.format === Format.Association) {
        folders.set(handle, { name: componentName(info.filename, handle), parent: info.parent });
        continue;
      }
      const dir = await this.folderPath(info.parent, folders, prefix);
      if (dir === null) continue;
      let path = `${prefix}${dir}${componentName(info.filename, handle)}`;
      if (paths.has(path)) path = `${path}~${handleId(handle)}`;
      paths.add(path);
      const bytes = await this.sizeOf(handle, info);
      if (bytes === null) {
        this.log.error(
          { event: 'ptp.size_unknown', path: boundString(path, 512), id: handleId(handle) },
          'camera reports 4 GiB or more and cannot say how much; recording skipped',
        );
        continue;
      }
      yield entryOf(handle, path, bytes, info);
    }
  }

  /** `DCIM/100BODY/` for a file's parent; null (and a warning) for a folder loop or one too deep. */
  private async folderPath(
    parent: number,
    folders: Map<number, { name: string; parent: number }>,
    prefix: string,
  ): Promise<string | null> {
    const names: string[] = [];
    const seen = new Set<number>();
    for (let at = parent; at !== 0 && at !== PARENT_ROOT;) {
      const where = () => boundString(prefix + names.join('/'), 512);
      if (seen.has(at)) {
        this.log.warn({ event: 'ptp.folder_loop', path: where() }, 'camera lists a folder inside itself; skipped');
        return null;
      }
      if (names.length >= this.o.maxDepth) {
        this.log.warn({ event: 'ptp.too_deep', path: where() }, `folder deeper than ${this.o.maxDepth} levels skipped`);
        return null;
      }
      seen.add(at);
      let folder = folders.get(at);
      if (!folder) {
        const info = await this.objectInfo(at);
        folder = { name: componentName(info.filename, at), parent: info.parent };
        folders.set(at, folder);
      }
      names.unshift(folder.name);
      at = folder.parent;
    }
    return names.map((n) => `${n}/`).join('');
  }

  async stat(id: string): Promise<RecordingEntry | null> {
    this.ready();
    const handle = parseHandleId(id);
    let info: PtpObjectInfo;
    try {
      info = await this.objectInfo(handle);
    } catch (err) {
      // A handle names one object for the whole session: a file replaced under the same name gets another.
      if (err instanceof PtpResponseError && err.responseCode === Rc.InvalidObjectHandle) return null;
      throw err;
    }
    if (info.format === Format.Association) return null;
    const bytes = await this.sizeOf(handle, info);
    if (bytes === null) throw new DriverError('permanent', 'size-unknown', `camera cannot say how big ${id} is`);
    return entryOf(handle, componentName(info.filename, handle), bytes, info);
  }

  async read(id: string, offset: number, options: ReadOptions = {}): Promise<PtpObjectStream> {
    const { signal } = options;
    if (signal?.aborted) throw new DriverError('transient', 'aborted', 'read aborted');
    this.ready();
    const handle = parseHandleId(id);
    if (!Number.isSafeInteger(offset) || offset < 0)
      throw new DriverError('permanent', 'bad-offset', `bad offset ${offset}`);
    if (offset > 0 && !this.capabilities.resume)
      throw new DriverError(
        'permanent',
        'resume-unsupported',
        'camera cannot read from an offset (no GetPartialObject)',
      );
    const info = await this.objectInfo(handle);
    if (info.format === Format.Association) throw new DriverError('permanent', 'not-a-file', `${id} is a folder`);
    const size = await this.sizeOf(handle, info);
    if (size === null) throw new DriverError('permanent', 'size-unknown', `camera cannot say how big ${id} is`);
    if (offset > size)
      throw new DriverError('permanent', 'bad-offset', `offset ${offset} is past the end (${size}) of ${id}`);
    const method = this.methodFor(offset, size);
    if (method === 'object' && offset > 0) {
      this.log.info(
        { event: 'ptp.resume_from_start', id, offset, bytes: size },
        `no partial read reaches offset ${offset} of ${id}: reading it from the start and skipping to the offset`,
      );
    }
    const stream = await PtpObjectStream.open({
      session: this.session,
      handle,
      size,
      offset,
      method,
      label: id,
      highWaterMark: this.o.readBufferBytes,
      signal,
    });
    this.streams.add(stream);
    stream.once('close', () => this.streams.delete(stream));
    return stream;
  }

  /** A 32-bit partial read cannot reach past 4 GiB; reading from 0 and skipping always can. */
  private methodFor(offset: number, size: number): ReadMethod {
    if (offset === 0) return 'object';
    if (this.ops.has(Op.GetPartialObject64)) return 'partial64';
    if (this.ops.has(Op.GetPartialObject) && size <= 0xffffffff) return 'partial32';
    return 'object';
  }

  delete(id: string): Promise<void> {
    const run = this.deletions.then(() => this.deleteNow(id));
    this.deletions = run.catch(() => undefined);
    return run;
  }

  private async deleteNow(id: string): Promise<void> {
    this.ready();
    if (!this.capabilities.delete)
      throw new DriverError('permanent', 'delete-unsupported', 'camera does not allow deleting');
    const handle = parseHandleId(id);
    // DeleteObject on a folder deletes everything in it (QEMU's usb-mtp does): only ever files.
    const info = await this.objectInfo(handle);
    if (info.format === Format.Association) throw new DriverError('permanent', 'not-a-file', `${id} is a folder`);
    try {
      await this.session.request(Op.DeleteObject, [handle, 0], `DeleteObject ${id}`);
    } catch (err) {
      // Listed in DeviceInfo yet refused as an operation: every other recording would be refused
      // the same way, so the camera is not asked again during this docking.
      if (err instanceof PtpResponseError && err.responseCode === Rc.OperationNotSupported) {
        this.capabilities.delete = false;
        this.log.warn(
          { event: 'ptp.delete_unsupported', operation: 'DeleteObject', code: err.code },
          'camera refuses DeleteObject (OperationNotSupported) although it lists it: verified recordings stay on the camera',
        );
      }
      throw err;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const gone = new DriverError('deviceGone', 'closed', 'session is closed');
    for (const s of this.streams) s.destroy(gone);
    // Each stream cancels its transaction before it closes; CloseSession must come after.
    await Promise.all(
      [...this.streams].map((s) => new Promise<void>((r) => (s.closed ? r() : s.once('close', () => r())))),
    );
    try {
      await this.session.close();
    } catch (err) {
      this.log.debug({ event: 'ptp.close_failed', error: (err as Error).message }, 'CloseSession failed');
    }
    this.session.shut(gone);
    await this.o.transport.close().catch(() => undefined);
  }
}

/**
 * The handle is left out of the identity on purpose: handles need only hold within one session,
 * and a camera that numbers its objects anew at each docking would otherwise make every
 * recording look replaced. Within a session the handle itself tells a replaced object apart.
 */
function entryOf(handle: number, path: string, bytes: number, info: PtpObjectInfo): RecordingEntry {
  const modifiedAt = parsePtpDateTime(info.modificationDate) ?? parsePtpDateTime(info.captureDate);
  return {
    id: handleId(handle),
    path,
    bytes,
    modifiedAt,
    identity: `${bytes}:${info.captureDate}:${info.modificationDate}`,
  };
}
