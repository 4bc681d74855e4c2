/**
 * The documentation a clone carries: it must name no file outside the repository, and it must
 * keep up with the config keys and the commands the code has.
 */
import { describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { defaultConfig, defaultReplication } from '../src/config.js';
import { buildProgram } from '../src/cli/main.js';
import { ROOT } from './support/harness.js';

const DOCS = path.join(ROOT, 'docs');
const pages = [
  'README.md',
  ...readdirSync(DOCS)
    .filter((f) => f.endsWith('.md'))
    .map((f) => path.join('docs', f)),
];

function read(rel: string): string {
  return readFileSync(path.join(ROOT, rel), 'utf8');
}

/** Targets of Markdown links and images that are not URLs or anchors. */
function localLinks(text: string): string[] {
  return [...text.matchAll(/\]\(([^)\s]+)\)/g)]
    .map((m) => m[1]!)
    .filter((t) => !/^[a-z]+:/i.test(t) && !t.startsWith('#'));
}

function keyPaths(v: Record<string, unknown>, prefix = ''): string[] {
  return Object.entries(v).flatMap(([k, child]) =>
    typeof child === 'object' && child !== null && !Array.isArray(child) && Object.keys(child).length > 0
      ? keyPaths(child as Record<string, unknown>, `${prefix}${k}.`)
      : [`${prefix}${k}`],
  );
}

describe('documentation', () => {
  it.each(pages)('%s links only to files inside the repository that exist', (rel) => {
    const text = read(rel);
    expect(text).not.toMatch(/\.\.\/shared|shared\/contracts|shared\/DESIGN/);
    for (const target of localLinks(text)) {
      const file = path.resolve(path.dirname(path.join(ROOT, rel)), target.split('#')[0]!);
      expect(path.relative(ROOT, file).startsWith('..'), `${rel} links outside the repository: ${target}`).toBe(false);
      expect(existsSync(file), `${rel} links to a missing file: ${target}`).toBe(true);
    }
  });

  it('docs/configuration.md names every config key', () => {
    const text = read('docs/configuration.md');
    const keys = keyPaths({
      ...defaultConfig(),
      replication: defaultReplication(),
      encryption: { recipients: [] },
    } as unknown as Record<string, unknown>);
    expect(keys.filter((k) => !text.includes(`\`${k}\``))).toEqual([]);
  });

  it('docs/cli.md has a section for every command', async () => {
    const text = read('docs/cli.md');
    const program = await buildProgram([]);
    const names = program.commands.map((c) => c.name());
    expect(names.length).toBeGreaterThan(20);
    expect(names.filter((n) => !text.includes(`\`dockd ${n}`))).toEqual([]);
  });
});
