import { afterEach, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { SimBus } from '../src/bus/sim.js';
import type { BusListener } from '../src/bus/types.js';

const roots: string[] = [];
afterEach(() => {
  for (const r of roots.splice(0)) rmSync(r, { recursive: true, force: true });
});

function setup(): { root: string; bus: SimBus; calls: string[]; listener: BusListener } {
  const root = mkdtempSync(path.join(os.tmpdir(), 'dockd-sim-'));
  roots.push(root);
  const calls: string[] = [];
  const listener: BusListener = {
    attach: (d) => calls.push(`attach ${d.slot}`),
    detach: (_bus, key) => calls.push(`detach ${key}`),
    change: (d) => calls.push(`change ${d.slot}`),
  };
  return { root, bus: new SimBus(root, pino({ level: 'silent' })), calls, listener };
}

/** Docks as the contract says: the files first, then camera.json by rename. */
function dockSlot(root: string, slot: string): void {
  mkdirSync(path.join(root, slot, 'DCIM'), { recursive: true });
  writeFileSync(path.join(root, slot, 'DCIM', 'A.MP4'), 'x');
  writeFileSync(path.join(root, slot, '.camera.json.tmp'), JSON.stringify({ serial: `S-${slot}` }));
  renameSync(path.join(root, slot, '.camera.json.tmp'), path.join(root, slot, 'camera.json'));
}

describe('the simulated dock folder listing', () => {
  // The folder watcher cannot be made to miss an event on purpose, so these list folders it never
  // saw: exactly what the listing must catch when chokidar drops a rename into a fresh folder.
  it('docks a camera the watcher never reported, once, on the second listing that finds it', () => {
    const { root, bus, calls, listener } = setup();
    dockSlot(root, 's1');
    mkdirSync(path.join(root, 's2')); // a slot folder without camera.json is no camera
    mkdirSync(path.join(root, '.staging', 'x'), { recursive: true });
    writeFileSync(path.join(root, '.staging', 'x', 'camera.json'), '{}'); // dot folders are not slots
    bus.rescan(listener);
    expect(calls).toEqual([]); // once may be the watcher's event still on its way
    bus.rescan(listener);
    expect(calls).toEqual(['attach s1']);
    bus.rescan(listener);
    bus.rescan(listener);
    expect(calls).toEqual(['attach s1']);
  });

  it('undocks a camera whose camera.json went without the watcher saying so', () => {
    const { root, bus, calls, listener } = setup();
    dockSlot(root, 's1');
    bus.rescan(listener);
    bus.rescan(listener);
    rmSync(path.join(root, 's1', 'camera.json'));
    bus.rescan(listener);
    expect(calls).toEqual(['attach s1']);
    bus.rescan(listener);
    expect(calls).toEqual(['attach s1', 'detach s1']);
  });

  it('reports nothing for a camera that came and went between two listings', () => {
    const { root, bus, calls, listener } = setup();
    dockSlot(root, 's1');
    bus.rescan(listener);
    rmSync(path.join(root, 's1'), { recursive: true });
    bus.rescan(listener);
    bus.rescan(listener);
    expect(calls).toEqual([]);
  });

  it('leaves to the watcher what it reported itself', async () => {
    const { root, bus, calls, listener } = setup();
    await bus.start(listener);
    try {
      dockSlot(root, 's1');
      for (let i = 0; i < 100 && !calls.includes('attach s1'); i++) await new Promise((r) => setTimeout(r, 20));
      expect(calls).toEqual(['attach s1']);
      bus.rescan(listener);
      bus.rescan(listener);
      expect(calls).toEqual(['attach s1']);
    } finally {
      await bus.stop();
    }
  });
});
