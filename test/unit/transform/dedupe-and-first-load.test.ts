import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { pipelineSchema } from '../../../shared/config/schema.js';
import { classificationSql, resolveShape } from '../../../shared/transform/classify.js';
import { DuckSession } from '../../../shared/duckdb/session.js';
import { runTransform, type SnapshotOutput } from '../../../shared/transform/run-transform.js';
import { changesRelation } from '../../../shared/merge/changes-relation.js';
import { duckExec, duckQuery } from '../../support/project.js';

// The performance paths of the transform (issue #8): the window dedupe runs only when a key
// repeats, a first load classifies through a view, and the version key is computed for changed
// rows only. These run real DuckDB on real Parquet and check the outputs, not the SQL text.
const pipeline = pipelineSchema.parse({
  name: 'accounts',
  source: { connection: 'SRC', table: 'crm.accounts', changeDetection: { mode: 'timestamp', column: 'modified_at' } },
  key: ['id'],
  target: { warehouse: 'WH', table: 'dw.dim_account', trackedColumns: ['city'] },
  validation: { rowCount: 'none' },
});

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function parquet(dir: string, name: string, rows: string): Promise<string> {
  const file = join(dir, name);
  await duckExec(
    join(dir, `${name}.duckdb`),
    `COPY (SELECT * FROM (VALUES ${rows}) t(id, city, modified_at)) TO '${file}' (FORMAT parquet)`,
  );
  return file;
}

async function transform(dir: string, parts: string[], previous: SnapshotOutput | undefined, outName: string, warehouseKind?: 'synapse' | 'duckdb') {
  const outDir = join(dir, outName);
  mkdirSync(outDir);
  const out = await runTransform({
    pipeline,
    parts,
    schema: [],
    snapshot: previous?.file ? { layers: [{ file: previous.file, rows: previous.rows }], current: previous.current } : undefined,
    fullRead: previous === undefined,
    boundary: '2026-11-24T00:00:00.000Z',
    sourceRowCount: null,
    outDir,
    duck: { memoryLimit: '256MB', threads: 1, tempDir: join(dir, 'spill') },
    ...(warehouseKind ? { warehouseKind } : {}),
  });
  // The version key as hex: 16 bytes (BLOB) under the current hash rule. Read as a merge reads
  // the file: computed from the typed keys where the file does not hold it.
  const relation = changesRelation(out.changesFile, out.versionKey === 'merge' ? { keys: out.schema.filter((c) => c.name === 'id'), rule: out.hashRule } : undefined);
  const changes = await duckQuery<{ id: number; city: string; _tm_op: string; _tm_version_key: string | null; key_type: string }>(
    join(dir, `${outName}-read.duckdb`),
    `SELECT id, city, _tm_op, lower(hex(_tm_version_key)) AS _tm_version_key, typeof(_tm_version_key) AS key_type FROM ${relation} ORDER BY id`,
  );
  return { out, changes };
}

describe('transform performance paths keep the results', () => {
  it('a first load with unique keys inserts every row, each with its version key, and writes the snapshot', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tidemark-perf-'));
    dirs.push(dir);
    const part = await parquet(dir, 'p0.parquet', `(1, 'Oslo', TIMESTAMP '2026-01-01 00:00:00'), (2, 'Rome', TIMESTAMP '2026-01-01 00:00:00')`);
    const { out, changes } = await transform(dir, [part], undefined, 'first');
    expect(out.counts).toMatchObject({ inserted: 2, updated: 0, unchanged: 0 });
    expect(out.snapshot).toMatchObject({ kind: 'base', rows: 2, current: 2 });
    expect(changes.map((c) => [c.id, c._tm_op])).toEqual([
      [1, 'insert'],
      [2, 'insert'],
    ]);
    expect(changes.every((c) => /^[0-9a-f]{32}$/.test(c._tm_version_key ?? '') && c.key_type === 'BLOB')).toBe(true);
    expect(new Set(changes.map((c) => c._tm_version_key)).size).toBe(2);
  });

  it('a first load reads the extract once and writes two files: the changes (which the merge reads) and the snapshot base', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tidemark-perf-'));
    dirs.push(dir);
    const part = await parquet(dir, 'p0.parquet', `(1, 'Oslo', TIMESTAMP '2026-01-01 00:00:00'), (2, 'Rome', TIMESTAMP '2026-01-01 00:00:00')`);
    // Every statement the transform runs, to count the passes over the extract and the files written.
    const statements: string[] = [];
    const spies = (['run', 'rows'] as const).map((m) => {
      const original = DuckSession.prototype[m] as (...a: unknown[]) => Promise<unknown>;
      return vi.spyOn(DuckSession.prototype, m).mockImplementation(function (this: DuckSession, sql: string, ...rest: unknown[]) {
        statements.push(sql);
        return original.call(this, sql, ...rest) as never;
      });
    });
    try {
      await transform(dir, [part], undefined, 'first');
    } finally {
      for (const spy of spies) spy.mockRestore();
    }
    // The views over the parts (_tm_parts → extract → transformed → good) are read by executed
    // statements only; a view definition reads nothing, nor does a `WHERE false` shape.
    const readsExtract = statements.filter((st) => !/^CREATE (TEMP )?VIEW/.test(st) && /\bFROM (good|transformed|extract|_tm_parts)\b/.test(st) && !/WHERE false/.test(st));
    const writes = statements.flatMap((st) => [...st.matchAll(/\bTO '([^']+)'/g)].map((m) => m[1]!.slice(join(dir, 'first').length + 1)));
    // Its shape (no rows), the key-only NULL check, and the one whole-row pass that writes the changes.
    expect(readsExtract.map((st) => st.slice(0, 48))).toEqual([
      'DESCRIBE SELECT * FROM transformed',
      'SELECT count(*) AS n FROM transformed WHERE "id" IS NULL',
      "COPY (SELECT *, 'insert' AS _tm_op, unhex(md5(concat_ws(",
    ].map((x) => x.slice(0, 48)));
    expect(writes).toEqual(['changes.parquet', 'snapshot.parquet']);
    // The repeat check runs once both files are written (while they upload), not between them.
    const repeatCheck = statements.findIndex((st) => /GROUP BY hash\("id"\) HAVING count\(\*\) > 1/.test(st));
    const snapshotWrite = statements.findIndex((st) => /^COPY .* TO '[^']*snapshot\.parquet'/s.test(st));
    expect(snapshotWrite).toBeGreaterThan(-1);
    expect(repeatCheck).toBeGreaterThan(snapshotWrite);
  });

  it('a first load where a key repeats writes the latest row only, in the changes and the snapshot', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tidemark-perf-'));
    dirs.push(dir);
    const part = await parquet(
      dir,
      'p0.parquet',
      `(1, 'Oslo', TIMESTAMP '2026-01-01 00:00:00'), (1, 'Lima', TIMESTAMP '2026-01-03 00:00:00'), (1, 'Rome', TIMESTAMP '2026-01-02 00:00:00'), (2, 'Kyiv', TIMESTAMP '2026-01-01 00:00:00')`,
    );
    const { out, changes } = await transform(dir, [part], undefined, 'first');
    expect(out.counts).toMatchObject({ inserted: 2 });
    expect(out.changesRows).toBe(2);
    expect(out.snapshot).toMatchObject({ kind: 'base', rows: 2, current: 2 });
    // Both files are written again under new names (the first ones may be uploading).
    expect(out.changesFile.endsWith('changes-deduped.parquet')).toBe(true);
    expect(out.snapshot.file?.endsWith('snapshot-deduped.parquet')).toBe(true);
    const snap = await duckQuery<{ id: number; n: bigint }>(join(dir, 'snap-read.duckdb'), `SELECT id, count(*) AS n FROM read_parquet('${out.snapshot.file}') GROUP BY id ORDER BY id`);
    expect(snap.map((r) => [r.id, Number(r.n)])).toEqual([
      [1, 1],
      [2, 1],
    ]);
    expect(changes.map((c) => [c.id, c.city, c._tm_op])).toEqual([
      [1, 'Lima', 'insert'],
      [2, 'Kyiv', 'insert'],
    ]);
  });

  it('a composite key repeats only as the whole tuple: swapped values are distinct keys, a repeated pair is deduped', async () => {
    // The repeat check groups by a hash of the key columns together; an order-blind hash would
    // take (1, 2) and (2, 1) for one key and rewrite the changes file of every such load.
    const composite = pipelineSchema.parse({ ...pipeline, key: ['region', 'id'] });
    const firstLoad = async (name: string, rows: string) => {
      const dir = mkdtempSync(join(tmpdir(), 'tidemark-perf-'));
      dirs.push(dir);
      const part = join(dir, 'p0.parquet');
      await duckExec(join(dir, 'p0.duckdb'), `COPY (SELECT * FROM (VALUES ${rows}) t(region, id, city, modified_at)) TO '${part}' (FORMAT parquet)`);
      const outDir = join(dir, name);
      mkdirSync(outDir);
      return runTransform({
        pipeline: composite,
        parts: [part],
        schema: [],
        snapshot: undefined,
        fullRead: true,
        boundary: '2026-11-24T00:00:00.000Z',
        sourceRowCount: null,
        outDir,
        duck: { memoryLimit: '256MB', threads: 1, tempDir: join(dir, 'spill') },
      });
    };
    const t = `TIMESTAMP '2026-01-01 00:00:00'`;
    const swapped = await firstLoad('swapped', `(1, 2, 'Oslo', ${t}), (2, 1, 'Rome', ${t}), (1, 1, 'Lima', ${t}), (2, 2, 'Kyiv', ${t})`);
    expect(swapped.changesFile.endsWith('changes.parquet')).toBe(true);
    expect(swapped.counts.inserted).toBe(4);
    const repeated = await firstLoad('repeated', `(1, 2, 'Oslo', ${t}), (1, 2, 'Bergen', TIMESTAMP '2026-01-02 00:00:00'), (2, 1, 'Rome', ${t})`);
    expect(repeated.changesFile.endsWith('changes-deduped.parquet')).toBe(true);
    expect(repeated.counts.inserted).toBe(2);
    expect(repeated.changesRows).toBe(2);
  });

  it('dedupes to the latest row when a key repeats, and classifies against the snapshot', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tidemark-perf-'));
    dirs.push(dir);
    const first = await transform(
      dir,
      [await parquet(dir, 'p0.parquet', `(1, 'Oslo', TIMESTAMP '2026-01-01 00:00:00'), (2, 'Rome', TIMESTAMP '2026-01-01 00:00:00')`)],
      undefined,
      'first',
    );
    // Key 1 twice (the later row wins: Bergen), key 2 touched with the same city, key 3 new.
    const part = await parquet(
      dir,
      'p1.parquet',
      `(1, 'Lima', TIMESTAMP '2026-01-02 00:00:00'), (1, 'Bergen', TIMESTAMP '2026-01-03 00:00:00'), (2, 'Rome', TIMESTAMP '2026-01-02 00:00:00'), (3, 'Kyiv', TIMESTAMP '2026-01-02 00:00:00')`,
    );
    const { out, changes } = await transform(dir, [part], first.out.snapshot, 'second');
    expect(out.counts).toMatchObject({ inserted: 1, updated: 1, unchanged: 1 });
    expect(changes.map((c) => [c.id, c.city, c._tm_op])).toEqual([
      [1, 'Bergen', 'update'],
      [3, 'Kyiv', 'insert'],
    ]);
    // Two keys changed against a base of two: more than the default bound, so a new base.
    expect(out.snapshot).toMatchObject({ kind: 'base', rows: 3, current: 3 });
  });

  it('plans the window dedupe only when asked, and a view for a first load', () => {
    const shape = resolveShape(pipeline, [
      { name: 'id', type: 'INTEGER' },
      { name: 'city', type: 'VARCHAR' },
      { name: 'modified_at', type: 'TIMESTAMP' },
    ]);
    expect(classificationSql(shape, { fullRead: true, deletes: 'retire' }).batch).toContain('QUALIFY row_number()');
    expect(classificationSql(shape, { fullRead: true, deletes: 'retire', dedupe: false }).batch).not.toContain('QUALIFY');
    expect(classificationSql(shape, { fullRead: true, deletes: 'retire', firstLoad: true }).classified).toMatch(/^CREATE TEMP VIEW classified/);
    expect(classificationSql(shape, { fullRead: false, deletes: 'retire' }).classified).toMatch(/^CREATE TEMP TABLE classified/);
  });
});

describe('the changes file is written in a codec its warehouse reads', () => {
  // "COPY INTO (Transact-SQL)": Parquet must be Snappy or GZIP; the files only DuckDB reads are zstd.
  const codecs = async (dir: string, file: string) =>
    (await duckQuery<{ c: string }>(join(dir, `codec-${Date.now()}.duckdb`), `SELECT DISTINCT compression AS c FROM parquet_metadata('${file}') ORDER BY 1`)).map((r) => r.c);
  // Parquet format version 2's encodings (the DELTA_* family) only in the files DuckDB alone
  // reads; a Synapse target's changes file stays version 1, which COPY INTO is documented for.
  const usesV2 = async (dir: string, file: string) =>
    (await duckQuery<{ n: bigint }>(join(dir, `enc-${Date.now()}.duckdb`), `SELECT count(*) AS n FROM parquet_metadata('${file}') WHERE encodings LIKE '%DELTA%' OR encodings LIKE '%BYTE_STREAM_SPLIT%'`))[0]!.n > 0n;

  const columnsOf = async (dir: string, file: string) =>
    (await duckQuery<{ n: string }>(join(dir, `cols-${Date.now()}.duckdb`), `SELECT name AS n FROM parquet_schema('${file}')`)).map((r) => r.n);

  for (const [warehouseKind, codec] of [
    ['synapse', 'SNAPPY'],
    [undefined, 'SNAPPY'],
    ['duckdb', 'ZSTD'],
  ] as const) {
    it(`${codec.toLowerCase()} for the first-load changes, its deduped rewrite and an incremental changes file of a ${warehouseKind ?? 'unnamed'} target; zstd and format version 2 for the snapshot`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'tidemark-codec-'));
      dirs.push(dir);
      const first = await transform(dir, [await parquet(dir, 'p0.parquet', `(1, 'Oslo', TIMESTAMP '2026-01-01 00:00:00'), (1, 'Lima', TIMESTAMP '2026-01-02 00:00:00')`)], undefined, 'first', warehouseKind);
      expect(first.out.changesFile).toMatch(/changes-deduped\.parquet$/);
      expect(await codecs(dir, first.out.changesFile)).toEqual([codec]);
      expect(await usesV2(dir, first.out.changesFile)).toBe(codec === 'ZSTD');
      expect(await codecs(dir, first.out.snapshot.file!)).toEqual(['ZSTD']);
      expect(await usesV2(dir, first.out.snapshot.file!)).toBe(true);
      const next = await transform(dir, [await parquet(dir, 'p1.parquet', `(1, 'Bergen', TIMESTAMP '2026-01-03 00:00:00')`)], first.out.snapshot, 'next', warehouseKind);
      expect(next.changes.map((c) => [c.id, c.city, c._tm_op])).toEqual([[1, 'Bergen', 'update']]);
      expect(await codecs(dir, next.out.changesFile)).toEqual([codec]);
      expect(await usesV2(dir, next.out.changesFile)).toBe(codec === 'ZSTD');
      // The DuckDB merge computes the version key as it reads; a file Synapse reads holds it.
      const holdsKey = warehouseKind !== 'duckdb';
      for (const t of [first, next]) {
        expect(t.out.versionKey).toBe(holdsKey ? 'file' : 'merge');
        const columns = await columnsOf(dir, t.out.changesFile);
        expect(columns).toContain('_tm_row_hash');
        expect(columns.includes('_tm_version_key')).toBe(holdsKey);
      }
    });
  }
});
