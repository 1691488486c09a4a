import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { pipelineSchema } from '../../../shared/config/schema.js';
import { changesHashRule, hashRuleOf } from '../../../shared/storage/manifest.js';
import type { HashRule } from '../../../shared/canonical/row-hash.js';
import { runTransform, type SnapshotOutput } from '../../../shared/transform/run-transform.js';
import { duckExec, duckQuery } from '../../support/project.js';

// Issue #14 points 2 and 9 on the real transform (DuckDB over Parquet): the number text does not
// depend on a decimal's declared scale or the sign of zero, `trackedColumns: all` leaves out the
// change column, and a target created under the old rule keeps it, so an upgrade opens nothing.
const pipeline = pipelineSchema.parse({
  name: 'prices',
  source: { connection: 'SRC', table: 'app.prices', changeDetection: { mode: 'timestamp', column: 'modified_at' } },
  key: ['id'],
  target: { warehouse: 'WH', table: 'dw.prices', trackedColumns: 'all' },
  validation: { rowCount: 'none' },
});

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function parquet(dir: string, name: string, select: string): Promise<string> {
  const file = join(dir, name);
  await duckExec(join(dir, `${name}.duckdb`), `COPY (${select}) TO '${file}' (FORMAT parquet)`);
  return file;
}

async function transform(dir: string, part: string, previous: SnapshotOutput | undefined, hashRule: HashRule | undefined, outName: string) {
  const outDir = join(dir, outName);
  mkdirSync(outDir);
  const out = await runTransform({
    pipeline,
    parts: [part],
    schema: [],
    snapshot: previous?.file ? { layers: [{ file: previous.file, rows: previous.rows }], current: previous.current } : undefined,
    fullRead: previous === undefined,
    ...(hashRule ? { hashRule } : {}),
    boundary: '2026-11-24T00:00:00.000Z',
    sourceRowCount: null,
    outDir,
    duck: { memoryLimit: '256MB', threads: 1, tempDir: join(dir, 'spill') },
  });
  const ops = await duckQuery<{ id: number; _tm_op: string }>(join(dir, `${outName}-read.duckdb`), `SELECT id, _tm_op FROM read_parquet('${out.changesFile}') ORDER BY id`);
  return { out, ops };
}

/** The types of the hash columns in a changes file and a snapshot layer, and the row hash's stored length. */
const hashTypes = async (dir: string, changes: string, snapshot: string) =>
  (
    await duckQuery<{ row: string; t1: string; version: string; snapRow: string; len: bigint }>(
      join(dir, 'hash-types.duckdb'),
      `SELECT (SELECT typeof(_tm_row_hash) FROM read_parquet('${changes}') LIMIT 1) AS row, (SELECT typeof(_tm_t1_hash) FROM read_parquet('${changes}') LIMIT 1) AS t1,
        (SELECT typeof(_tm_version_key) FROM read_parquet('${changes}') LIMIT 1) AS version, (SELECT typeof(_tm_row_hash) FROM read_parquet('${snapshot}') LIMIT 1) AS snapRow,
        (SELECT max(octet_length(CAST(_tm_row_hash AS BLOB))) FROM read_parquet('${changes}')) AS len`,
    )
  )[0];

const FIRST = `SELECT * FROM (VALUES (1, CAST(1.50 AS DECIMAL(10,2)), CAST('0.0' AS DOUBLE), TIMESTAMP '2026-01-01 00:00:00'),
  (2, CAST(7 AS DECIMAL(10,2)), CAST('2.5' AS DOUBLE), TIMESTAMP '2026-01-01 00:00:00')) t(id, price, score, modified_at)`;
// The scale widened to 4, -0.0 for 0.0, and every row touched (a new modified_at).
const TOUCHED = `SELECT * FROM (VALUES (1, CAST(1.5 AS DECIMAL(12,4)), CAST('-0.0' AS DOUBLE), TIMESTAMP '2026-01-02 00:00:00'),
  (2, CAST(7 AS DECIMAL(12,4)), CAST('2.5' AS DOUBLE), TIMESTAMP '2026-01-02 00:00:00')) t(id, price, score, modified_at)`;

describe('hash rule per target', () => {
  it('a new target (rule 4): a wider scale, -0.0 and a touched change column open no version; a real change does', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tidemark-hashrule-'));
    dirs.push(dir);
    const first = await transform(dir, await parquet(dir, 'p0.parquet', FIRST), undefined, undefined, 'r1');
    expect(first.out.hashRule).toBe(4);
    expect(await hashTypes(dir, first.out.changesFile, first.out.snapshot.file!)).toEqual({ row: 'BLOB', t1: 'BLOB', version: 'BLOB', snapRow: 'BLOB', len: 16n });
    const second = await transform(dir, await parquet(dir, 'p1.parquet', TOUCHED), first.out.snapshot, 4, 'r2');
    expect(second.out.counts).toMatchObject({ inserted: 0, updated: 0, unchanged: 2 });
    const changed = await parquet(dir, 'p2.parquet', TOUCHED.replace("CAST('2.5' AS DOUBLE)", "CAST('2.75' AS DOUBLE)"));
    const third = await transform(dir, changed, first.out.snapshot, 4, 'r3');
    expect(third.ops).toEqual([{ id: 2, _tm_op: 'update' }]);
    expect(await hashTypes(dir, third.out.changesFile, third.out.snapshot.file!)).toMatchObject({ row: 'BLOB', version: 'BLOB', snapRow: 'BLOB' });
  });

  it('a target created under rule 3 (hex hashes) keeps rule 3 after the upgrade: the same rows open no version, hashes stay text', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tidemark-hashrule-'));
    dirs.push(dir);
    const old = await transform(dir, await parquet(dir, 'p0.parquet', FIRST), undefined, 3, 'r1');
    expect(old.out.hashRule).toBe(3);
    const kept = await transform(dir, await parquet(dir, 'p1.parquet', TOUCHED), old.out.snapshot, 3, 'r2');
    expect(kept.out.counts).toMatchObject({ inserted: 0, updated: 0, unchanged: 2 });
    const changed = await transform(dir, await parquet(dir, 'p2.parquet', TOUCHED.replace("CAST('2.5' AS DOUBLE)", "CAST('2.75' AS DOUBLE)")), old.out.snapshot, 3, 'r3');
    expect(changed.ops).toEqual([{ id: 2, _tm_op: 'update' }]);
    expect(changed.out.hashRule).toBe(3);
    expect(await hashTypes(dir, changed.out.changesFile, changed.out.snapshot.file!)).toEqual({ row: 'VARCHAR', t1: 'VARCHAR', version: 'VARCHAR', snapRow: 'VARCHAR', len: 32n });
  });

  it('a target created under rule 1 keeps rule 1 after the upgrade: the same rows open no version', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tidemark-hashrule-'));
    dirs.push(dir);
    // Rule 1 is the text of tidemark before #14: this is the snapshot an old tidemark wrote.
    const old = await transform(dir, await parquet(dir, 'p0.parquet', FIRST), undefined, 1, 'r1');
    expect(old.out.hashRule).toBe(1);
    const same = `SELECT * FROM (VALUES (1, CAST(1.50 AS DECIMAL(10,2)), CAST('0.0' AS DOUBLE), TIMESTAMP '2026-01-01 00:00:00'),
      (2, CAST(7 AS DECIMAL(10,2)), CAST('2.5' AS DOUBLE), TIMESTAMP '2026-01-01 00:00:00')) t(id, price, score, modified_at)`;
    const kept = await transform(dir, await parquet(dir, 'p1.parquet', same), old.out.snapshot, 1, 'r2');
    expect(kept.out.counts).toMatchObject({ updated: 0, unchanged: 2 });
    expect(kept.out.hashRule).toBe(1);
    // Why the rule is recorded: hashing the old snapshot's rows under rule 2 would version every key.
    const switched = await transform(dir, await parquet(dir, 'p2.parquet', same), old.out.snapshot, 2, 'r3');
    expect(switched.out.counts.updated).toBe(2);
  });

  it('the committed snapshot names the rule: recorded, 1 when absent (an older tidemark), none on a first load', () => {
    const m = { kind: 'snapshot' as const, version: 1 as const, pipeline: 'p', runId: 'r', layers: [{ name: 'l', rows: 1, md5: '0'.repeat(32) }], current: 1, createdAt: '' };
    expect(hashRuleOf(undefined)).toBeUndefined();
    expect(hashRuleOf({ manifest: undefined })).toBe(1);
    expect(hashRuleOf({ manifest: m })).toBe(1);
    expect(hashRuleOf({ manifest: { ...m, hashRule: 2 } })).toBe(2);
    expect(hashRuleOf({ manifest: { ...m, hashRule: 3 } })).toBe(3);
    expect(hashRuleOf({ manifest: { ...m, hashRule: 4 } })).toBe(4);
    // A changes manifest names the rule its file was written under; one from before it was
    // recorded holds hex hashes (a merge queued across the upgrade).
    expect(changesHashRule({})).toBe(3);
    expect(changesHashRule({ hashRule: 4 })).toBe(4);
    expect(changesHashRule({ hashRule: 1 })).toBe(1);
  });

  // Lists (#14 point 8): rule 3 lands and hashes them as lists; a rule 2 target keeps the list
  // text in its hash and in its changes (its warehouse column is text), so nothing re-versions.
  const LISTS = (day: string, second: string) => `SELECT * FROM (VALUES (1, ['a', 'b, c']::VARCHAR[], [1, 2]::INTEGER[], TIMESTAMP '2026-01-0${day} 00:00:00'),
    (2, ${second}, CAST(NULL AS INTEGER[]), TIMESTAMP '2026-01-0${day} 00:00:00')) t(id, tags, n, modified_at)`;
  const changesTypes = async (dir: string, file: string) =>
    duckQuery<{ column_name: string; column_type: string }>(join(dir, 'types.duckdb'), `SELECT column_name, column_type FROM (DESCRIBE SELECT tags, n FROM read_parquet('${file}'))`);

  it('lists under rule 3 and on: list columns in the changes; a touched row with the same lists opens nothing, a changed element does', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tidemark-hashrule-'));
    dirs.push(dir);
    const first = await transform(dir, await parquet(dir, 'p0.parquet', LISTS('1', "[]::VARCHAR[]")), undefined, undefined, 'r1');
    expect(await changesTypes(dir, first.out.changesFile)).toEqual([
      { column_name: 'tags', column_type: 'VARCHAR[]' },
      { column_name: 'n', column_type: 'INTEGER[]' },
    ]);
    const touched = await transform(dir, await parquet(dir, 'p1.parquet', LISTS('2', "[]::VARCHAR[]")), first.out.snapshot, 4, 'r2');
    expect(touched.out.counts).toMatchObject({ updated: 0, unchanged: 2 });
    // [] → NULL and [] → [NULL] are changes: the empty list, a NULL list and a NULL element differ.
    for (const [i, second] of ['CAST(NULL AS VARCHAR[])', '[NULL]::VARCHAR[]'].entries()) {
      const r = await transform(dir, await parquet(dir, `p${i + 2}.parquet`, LISTS('2', second)), first.out.snapshot, 4, `r${i + 3}`);
      expect(r.ops).toEqual([{ id: 2, _tm_op: 'update' }]);
    }
  });

  it('lists under rule 2 (a target from before #14 point 8): the same rows open nothing and land as list text', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tidemark-hashrule-'));
    dirs.push(dir);
    const old = await transform(dir, await parquet(dir, 'p0.parquet', LISTS('1', "['x']::VARCHAR[]")), undefined, 2, 'r1');
    // The snapshot holds keys and hashes only; the rule 2 hash is the list text's, as before.
    const listSnapshot = old.out.snapshot;
    const kept = await transform(dir, await parquet(dir, 'p1.parquet', LISTS('2', "['x']::VARCHAR[]")), listSnapshot, 2, 'r2');
    expect(kept.out.counts).toMatchObject({ updated: 0, unchanged: 2 });
    expect(kept.out.hashRule).toBe(2);
    const changed = await transform(dir, await parquet(dir, 'p2.parquet', LISTS('2', "['x', 'it''s']::VARCHAR[]")), listSnapshot, 2, 'r3');
    expect(changed.ops).toEqual([{ id: 2, _tm_op: 'update' }]);
    expect(await changesTypes(dir, changed.out.changesFile)).toEqual([
      { column_name: 'tags', column_type: 'VARCHAR' },
      { column_name: 'n', column_type: 'VARCHAR' },
    ]);
    const text = await duckQuery<{ tags: string }>(join(dir, 'text.duckdb'), `SELECT tags FROM read_parquet('${changed.out.changesFile}')`);
    expect(text).toEqual([{ tags: "[x, 'it\\'s']" }]);
    // Why the rule is kept: the same rows hashed under rule 3 would version both keys.
    const switched = await transform(dir, await parquet(dir, 'p3.parquet', LISTS('2', "['x']::VARCHAR[]")), listSnapshot, 3, 'r4');
    expect(switched.out.counts.updated).toBe(2);
  });
});
