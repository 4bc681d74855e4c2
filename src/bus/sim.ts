/**
 * The simulated dock: a folder whose sub-folders are dock slots (contracts/simulated-camera.md).
 * Docking is the appearance of <slot>/camera.json, undocking its removal or the slot's.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import type { Logger } from 'pino';
import type { DeviceInfo } from '../../drivers/types.js';
import { CAMERA_FILE } from '../../drivers/simulated/index.js';
import type { Bus, BusListener } from './types.js';

export class SimBus implements Bus {
  readonly name = 'sim';
  private watcher: FSWatcher | null = null;
  private readonly root: string;

  constructor(
    dir: string,
    private readonly log: Logger,
  ) {
    this.root = path.resolve(dir);
  }

  private device(slot: string): DeviceInfo {
    return { bus: 'sim', key: slot, slot, path: path.join(this.root, slot) };
  }

  /** Returns the slot a watched path belongs to when it is a slot's camera.json. */
  private slotOfCameraFile(p: string): string | null {
    const parts = path.relative(this.root, p).split(path.sep);
    return parts.length === 2 && parts[1] === CAMERA_FILE ? parts[0]! : null;
  }

  async start(listener: BusListener): Promise<void> {
    mkdirSync(this.root, { recursive: true });
    const ignored = (p: string): boolean => {
      const rel = path.relative(this.root, p);
      if (rel === '') return false;
      const parts = rel.split(path.sep);
      if (parts.length === 1) return parts[0]!.startsWith('.');
      // Only camera.json matters below a slot; a camera's thousands of recordings are not watched.
      return !(parts.length === 2 && parts[1] === CAMERA_FILE);
    };
    const watcher = watch(this.root, { depth: 1, ignored, ignoreInitial: false, persistent: true });
    this.watcher = watcher;
    watcher.on('add', (p) => {
      const slot = this.slotOfCameraFile(p);
      if (slot !== null) listener.attach(this.device(slot));
    });
    watcher.on('change', (p) => {
      const slot = this.slotOfCameraFile(p);
      if (slot !== null) listener.change(this.device(slot));
    });
    watcher.on('unlink', (p) => {
      const slot = this.slotOfCameraFile(p);
      if (slot !== null) listener.detach('sim', slot);
    });
    watcher.on('unlinkDir', (p) => {
      const parts = path.relative(this.root, p).split(path.sep);
      if (parts.length === 1 && parts[0]) listener.detach('sim', parts[0]);
    });
    watcher.on('error', (err) => this.log.error({ event: 'sim.watch_error', err }, 'sim dock watcher failed'));
    await new Promise<void>((resolve) => watcher.once('ready', () => resolve()));
    this.log.info({ event: 'bus.started', bus: 'sim', dir: this.root }, `watching simulated dock ${this.root}`);
  }

  async stop(): Promise<void> {
    await this.watcher?.close();
    this.watcher = null;
  }
}
