/**
 * The simulated dock: a folder whose sub-folders are dock slots (contracts/simulated-camera.md).
 * Docking is the appearance of <slot>/camera.json, undocking its removal or the slot's.
 */
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import type { Logger } from 'pino';
import type { DeviceInfo } from '../../drivers/types.js';
import { CAMERA_FILE } from '../../drivers/simulated/index.js';
import type { Bus, BusListener } from './types.js';

/**
 * How often the dock folder is listed beside the watcher. chokidar lists a new folder before it
 * watches it, so a camera.json renamed into a fresh slot folder in between is never reported
 * (paulmillr/chokidar#1471, open); the contract's own way of docking (files first, camera.json
 * last by rename) hits that window, more often the busier the machine.
 */
const RESCAN_MS = 1000;

export class SimBus implements Bus {
  readonly name = 'sim';
  private watcher: FSWatcher | null = null;
  private rescanTimer: NodeJS.Timeout | null = null;
  private readonly root: string;
  /** Slots whose camera.json the bus has reported present (attached) and not yet gone. */
  private readonly announced = new Set<string>();
  /** What one listing disagreed with `announced` on; a second listing in a row acts on it. */
  private suspects = new Map<string, 'attach' | 'detach'>();

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
      if (slot === null) return;
      this.announced.add(slot);
      listener.attach(this.device(slot));
    });
    watcher.on('change', (p) => {
      const slot = this.slotOfCameraFile(p);
      if (slot !== null) listener.change(this.device(slot));
    });
    watcher.on('unlink', (p) => {
      const slot = this.slotOfCameraFile(p);
      if (slot === null) return;
      this.announced.delete(slot);
      listener.detach('sim', slot);
    });
    watcher.on('unlinkDir', (p) => {
      const parts = path.relative(this.root, p).split(path.sep);
      if (parts.length !== 1 || !parts[0]) return;
      this.announced.delete(parts[0]);
      listener.detach('sim', parts[0]);
    });
    watcher.on('error', (err) => this.log.error({ event: 'sim.watch_error', err }, 'sim dock watcher failed'));
    await new Promise<void>((resolve) => watcher.once('ready', () => resolve()));
    this.rescanTimer = setInterval(() => this.rescan(listener), RESCAN_MS);
    this.log.info({ event: 'bus.started', bus: 'sim', dir: this.root }, `watching simulated dock ${this.root}`);
  }

  /**
   * Lists the dock folder and reports what the watcher missed. A difference must be seen twice in
   * a row, a listing apart, so that an event the watcher is about to deliver is not reported twice.
   */
  rescan(listener: BusListener): void {
    let present: Set<string>;
    try {
      present = new Set(
        readdirSync(this.root, { withFileTypes: true })
          .filter(
            (e) => e.isDirectory() && !e.name.startsWith('.') && existsSync(path.join(this.root, e.name, CAMERA_FILE)),
          )
          .map((e) => e.name),
      );
    } catch (err) {
      this.log.warn({ event: 'sim.rescan_failed', err }, `cannot list the simulated dock ${this.root}`);
      return;
    }
    const differs = new Map<string, 'attach' | 'detach'>();
    for (const slot of present) if (!this.announced.has(slot)) differs.set(slot, 'attach');
    for (const slot of this.announced) if (!present.has(slot)) differs.set(slot, 'detach');
    for (const [slot, change] of differs) {
      if (this.suspects.get(slot) !== change) continue;
      differs.delete(slot);
      this.log.info(
        { event: 'sim.rescan', slot, change },
        `the watcher missed ${change === 'attach' ? 'a camera docked' : 'a camera undocked'} in slot ${slot}; a listing found it`,
      );
      if (change === 'attach') {
        this.announced.add(slot);
        listener.attach(this.device(slot));
      } else {
        this.announced.delete(slot);
        listener.detach('sim', slot);
      }
    }
    this.suspects = differs;
  }

  async stop(): Promise<void> {
    if (this.rescanTimer) clearInterval(this.rescanTimer);
    this.rescanTimer = null;
    await this.watcher?.close();
    this.watcher = null;
  }
}
