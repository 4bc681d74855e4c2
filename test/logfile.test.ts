import { afterEach, describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { allVerified, TestDock, waitFor } from './support/harness.js';

let dock: TestDock;

/** The keys of a JSON line's outer object, in order, repeats kept (JSON.parse keeps the last). */
function topLevelKeys(line: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c === '"') {
      let j = i + 1;
      while (line[j] !== '"') j += line[j] === '\\' ? 2 : 1;
      if (depth === 1 && line[j + 1] === ':') keys.push(line.slice(i + 1, j));
      i = j;
    } else if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') depth--;
  }
  return keys;
}
afterEach(async () => {
  await dock?.cleanup();
});

describe('log file for IT', () => {
  it('writes the same JSON lines to a size-rotated file as to stdout', async () => {
    dock = new TestDock();
    const logDir = path.join(dock.root, 'logs');
    dock.writeConfig({
      log: {
        level: 'info',
        file: path.join(logDir, 'dockd.log'),
        rotate: { size: '4k', frequency: 'daily', keep: 50 },
      },
    });
    dock.dock('s1', {
      serial: 'L-1',
      files: Array.from({ length: 12 }, (_, i) => ({ rel: `REC${i}.MP4`, size: 2000 })),
    });
    const d = dock.start();
    await allVerified(dock, 12);
    d.kill('SIGTERM');
    expect((await d.exited).code).toBe(0);
    const files = await waitFor('rotated files', async () => {
      const f = readdirSync(logDir).filter((n) => n.startsWith('dockd'));
      return f.length >= 2 ? f : null;
    });
    const raw = files.flatMap((f) => readFileSync(path.join(logDir, f), 'utf8').split('\n').filter(Boolean));
    // A key twice in one object is JSON many log shippers refuse or read differently.
    const twice = raw.filter((l) => {
      const keys = topLevelKeys(l);
      return new Set(keys).size !== keys.length;
    });
    expect(twice).toEqual([]);
    const lines = raw.map((l) => JSON.parse(l) as { event?: string; level: number });
    expect(lines.filter((l) => l.event === 'offload.verified')).toHaveLength(12);
    expect(lines.some((l) => l.event === 'daemon.stopped')).toBe(true);
    expect(d.events('offload.verified')).toHaveLength(12);
  });

  it('refuses a rotation size it cannot read, naming the key', async () => {
    dock = new TestDock({ log: { file: '/tmp/x.log', rotate: { size: 'big' } } });
    const r = await dock.cli(['status']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/log\.rotate\.size/);
  });
});
