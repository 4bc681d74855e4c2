/**
 * Invariant 9: every statement that writes recordings, jobs, cameras, officers, the heartbeat or
 * custody lives in src/store/, where each state change appends its custody event in the same
 * transaction. A write anywhere else would be a state change the chain of custody may not see.
 * The reads of those tables live there too, as named queries: one place answers for their SQL.
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '..');
const TABLES = 'recordings|jobs|cameras|assignments|unit_memberships|daemon|custody_events|chain_checkpoints';
const WRITE = new RegExp(
  `\\b(INSERT(\\s+OR\\s+\\w+)?\\s+INTO|UPDATE|DELETE\\s+FROM|REPLACE\\s+INTO)\\s+(${TABLES})\\b`,
  'i',
);

// A FROM or JOIN naming one of the tables (the statement's SELECT may be on an earlier line).
// Upper case, as dockd writes SQL: prose such as "deletions from cameras" is no statement.
const READ = new RegExp(`\\b(FROM|JOIN)\\s+(${TABLES})\\b`);

// SQL written in lower case: a string literal that opens with a statement's keyword, any case.
const LITERAL = /(['"`])((?:\\.|(?!\1)[\s\S])*)\1/g;
const STATEMENT = /^\s*(select|with|insert|update|delete|replace)\b/i;
const READ_ANY_CASE = new RegExp(READ.source, 'i');

/** The SQL string literals of a source text that read one of the tables, whatever their case. */
function lowerCaseReads(text: string): string[] {
  // Comments first: an apostrophe in prose ("the camera's") would open a literal that is none.
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  return [...code.matchAll(LITERAL)]
    .map((m) => m[2]!)
    .filter((sql) => STATEMENT.test(sql) && READ_ANY_CASE.test(sql) && !READ.test(sql));
}

function sources(dir: string): string[] {
  return readdirSync(path.join(ROOT, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => path.relative(ROOT, path.join(e.parentPath, e.name)));
}

function linesOutsideStore(pattern: RegExp): { at: string; line: string }[] {
  return [...sources('src'), ...sources('drivers')]
    .filter((f) => !f.startsWith('src/store/'))
    .flatMap((f) =>
      readFileSync(path.join(ROOT, f), 'utf8')
        .split('\n')
        .map((line, i) => ({ at: `${f}:${i + 1}`, line }))
        .filter(({ line }) => pattern.test(line)),
    );
}

describe('one home for state', () => {
  it('finds statements that write state only under src/store/', () => {
    expect(linesOutsideStore(WRITE)).toEqual([]);
  });

  it('finds statements that read state only under src/store/', () => {
    expect(linesOutsideStore(READ)).toEqual([]);
  });

  it('finds no statement in lower case that reads state outside src/store/', () => {
    const found = [...sources('src'), ...sources('drivers')]
      .filter((f) => !f.startsWith('src/store/'))
      .flatMap((f) => lowerCaseReads(readFileSync(path.join(ROOT, f), 'utf8')).map((sql) => `${f}: ${sql}`));
    expect(found).toEqual([]);
  });

  it('would see such a statement (the pattern is not blind)', () => {
    expect(lowerCaseReads("db.prepare('select id from recordings where camera = ?')")).toHaveLength(1);
    expect(
      lowerCaseReads('db.prepare(`\n  select r.id\n  from jobs j join recordings r on r.id = j.recording`)'),
    ).toHaveLength(1);
    expect(lowerCaseReads("log.info('put failed deletions from cameras back')")).toEqual([]);
    expect(lowerCaseReads("// the camera's own\nconst q = db.prepare('select 1 from cameras');")).toHaveLength(1);
    expect(lowerCaseReads("db.prepare('select * from battery_samples')")).toEqual([]);
    expect(WRITE.test('db.prepare("UPDATE recordings SET status = \'pending\'")')).toBe(true);
    expect(WRITE.test('INSERT OR IGNORE INTO jobs (recording) VALUES (?)')).toBe(true);
    expect(WRITE.test('INSERT INTO battery_samples (camera) VALUES (?)')).toBe(false);
    expect(READ.test("SELECT camera, status, count(*) n FROM recordings WHERE status = 'failed'")).toBe(true);
    expect(READ.test('SELECT 1 FROM cameras WHERE serial = ? UNION ALL SELECT 1 FROM custody_events')).toBe(true);
    expect(READ.test('FROM chain_checkpoints WHERE key_id = ?')).toBe(true);
    expect(READ.test('SELECT max(at) at FROM battery_samples WHERE camera = ?')).toBe(false);
    expect(READ.test('SELECT DISTINCT camera FROM camera_events')).toBe(false);
    expect(READ.test('put failed recordings (and failed deletions from cameras) back')).toBe(false);
  });
});
