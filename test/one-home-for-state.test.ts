/**
 * Invariant 9: every statement that writes recordings, jobs, cameras, officers, the heartbeat or
 * custody lives in src/store/, where each state change appends its custody event in the same
 * transaction. A write anywhere else would be a state change the chain of custody may not see.
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '..');
const TABLES = 'recordings|jobs|cameras|assignments|officer_units|daemon|custody_events|chain_checkpoints';
const WRITE = new RegExp(
  `\\b(INSERT(\\s+OR\\s+\\w+)?\\s+INTO|UPDATE|DELETE\\s+FROM|REPLACE\\s+INTO)\\s+(${TABLES})\\b`,
  'i',
);

function sources(dir: string): string[] {
  return readdirSync(path.join(ROOT, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => path.relative(ROOT, path.join(e.parentPath, e.name)));
}

describe('one home for state', () => {
  it('finds statements that write state only under src/store/', () => {
    const outside = [...sources('src'), ...sources('drivers')]
      .filter((f) => !f.startsWith('src/store/'))
      .flatMap((f) =>
        readFileSync(path.join(ROOT, f), 'utf8')
          .split('\n')
          .map((line, i) => ({ at: `${f}:${i + 1}`, line }))
          .filter(({ line }) => WRITE.test(line)),
      );
    expect(outside).toEqual([]);
  });

  it('would see such a statement (the pattern is not blind)', () => {
    expect(WRITE.test('db.prepare("UPDATE recordings SET status = \'pending\'")')).toBe(true);
    expect(WRITE.test('INSERT OR IGNORE INTO jobs (recording) VALUES (?)')).toBe(true);
    expect(WRITE.test('INSERT INTO battery_samples (camera) VALUES (?)')).toBe(false);
  });
});
