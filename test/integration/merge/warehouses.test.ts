import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DuckDbWarehouse, planColumnsFromDuck } from '../../../shared/merge/duckdb/warehouse.js';
import type { MergePlan } from '../../../shared/merge/plan.js';
import { PostgresWarehouse, stagingBatchRows } from '../../../shared/merge/postgres/warehouse.js';
import type { Warehouse } from '../../../shared/merge/warehouse.js';
import { checksumSql } from '../../../shared/canonical/row-hash.js';
import { DuckSession, duckLiteral } from '../../../shared/duckdb/session.js';
import { startPostgres, type PostgresHandle } from '../../support/postgres.js';
import { pgExec } from '../../support/scd-harness.js';

/**
 * The two executing warehouses on the same changes file: a real PostgreSQL (PGlite over TCP,
 * or TIDEMARK_TEST_PG_URL) and DuckDB. The checksum must be the same `count:sum` figure DuckDB
 * computes in the transform, for every type, or validation would fail on PostgreSQL.
 */
const dir = mkdtempSync(join(tmpdir(), 'tidemark-wh-'));
const duck = { memoryLimit: '256MB', threads: 1, tempDir: join(dir, 'spill') };
const DATA = `SELECT * FROM (VALUES
  (1, 10::BIGINT, 1234.50::DECIMAL(12,2), 0.1::DOUBLE, 0.1::FLOAT, true, DATE '1990-05-17', TIMESTAMP '2026-01-02 03:04:05.123456', TIMESTAMPTZ '2026-01-02 03:04:05+02', '\\x00\\xFF'::BLOB, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::UUID, 'Ünïcode ✓'),
  (2, -5::BIGINT, -0.01::DECIMAL(12,2), 3.0::DOUBLE, 100.0::FLOAT, false, DATE '2026-12-31', TIMESTAMP '2026-01-02 00:00:00', TIMESTAMPTZ '2026-07-01 23:30:00-04:30', ''::BLOB, NULL, ''),
  (3, NULL, NULL, 1e15::DOUBLE, 1e7::FLOAT, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (4, 9223372036854775807::BIGINT, 99999999.99::DECIMAL(12,2), 1e20::DOUBLE, 1.5e-5::FLOAT, true, DATE '2000-02-29', TIMESTAMP '1970-01-01 00:00:00', TIMESTAMPTZ '2000-01-01 00:00:00+00', '\\x41'::BLOB, NULL, 'NULL'),
  (5, 0::BIGINT, 0::DECIMAL(12,2), -2.5e-7::DOUBLE, 123456.0::FLOAT, false, DATE '2026-01-01', TIMESTAMP '2026-01-01 12:00:00', TIMESTAMPTZ '2026-01-01 12:00:00+00', NULL, NULL, 'a|b=1:c'),
  (6, 1::BIGINT, 1::DECIMAL(12,2), 1e16::DOUBLE, 16777216::FLOAT, true, DATE '2026-01-01', TIMESTAMP '2026-01-01 12:00:00', TIMESTAMPTZ '2026-01-01 12:00:00+00', NULL, NULL, 'x')
) t(id, big, amount, score, ratio, active, born, seen, seen_tz, photo, uid, note)`;
const COLS = ['id', 'big', 'amount', 'score', 'ratio', 'active', 'born', 'seen', 'seen_tz', 'photo', 'uid', 'note'];

let pgh: PostgresHandle;
let changes: string;
let expectedChecksum: string;
let columns: MergePlan['columns'];

async function writeChanges(file: string, select: string, runBoundary: string): Promise<void> {
  const s = await DuckSession.open(':memory:', duck);
  try {
    await s.run(`SET TimeZone = 'UTC'`);
    await s.run(
      `COPY (SELECT *, md5(CAST(id AS VARCHAR) || coalesce(note, '')) AS _tm_row_hash, CAST(NULL AS VARCHAR) AS _tm_t1_hash,
        TIMESTAMP '${runBoundary}' AS _tm_valid_from, md5(CAST(id AS VARCHAR) || '${runBoundary}') AS _tm_version_key, 'insert' AS _tm_op FROM (${select}))
       TO ${duckLiteral(file)} (FORMAT parquet)`,
    );
  } finally {
    await s.close();
  }
}

const FIRST = '20260101T000000Z-0001';
const plan = (runId: string, boundary: string, baseRunId: string | null = runId === FIRST ? null : FIRST): Omit<MergePlan, 'stage'> => ({
  pipeline: 'types',
  runId,
  boundary,
  target: { schema: 'dw', name: 'dim_types' },
  keys: ['id'],
  columns,
  type1Columns: [],
  deletes: 'retire',
  scd: 2,
  counts: { inserted: 6, updated: 0, deleted: 0, type1: 0 },
  commit: { baseRunId, runSeq: null, readTo: `wm-${runId}`, snapshot: `state/types/${runId}.json` },
});

beforeAll(async () => {
  pgh = await startPostgres();
  // A server from TIDEMARK_TEST_PG_URL outlives test runs: start from no table.
  await pgExec(pgh.url, 'DROP TABLE IF EXISTS dw.dim_types');
  changes = join(dir, 'changes.parquet');
  await writeChanges(changes, DATA, '2026-01-01 00:00:00');
  const s = await DuckSession.open(':memory:', duck);
  try {
    const schema = await s.rows<{ column_name: string; column_type: string }>(`DESCRIBE SELECT * FROM read_parquet(${duckLiteral(changes)})`);
    columns = planColumnsFromDuck(schema.map((r) => ({ name: r.column_name, type: r.column_type })));
    const typed = COLS.map((c) => ({ name: c, type: schema.find((r) => r.column_name === c)!.column_type }));
    const r = await s.one<{ n: bigint; s: bigint }>(checksumSql(typed, `read_parquet(${duckLiteral(changes)})`));
    expectedChecksum = `${r!.n}:${r!.s}`;
  } finally {
    await s.close();
  }
});
afterAll(async () => {
  await pgh?.stop();
});

describe.each([
  ['postgres', () => new PostgresWarehouse(pgh.url, duck, 2)],
  ['duckdb', () => new DuckDbWarehouse(join(dir, 'warehouse.duckdb'), duck)],
  // The close a target bigger than the memory limit gets (closed copies and a delete), pinned.
  ['duckdb closing by copy', () => new DuckDbWarehouse(join(dir, 'warehouse-copy.duckdb'), duck, undefined, 'copy')],
] as const)('%s warehouse', (name, make) => {
  let wh: Warehouse;
  beforeAll(() => {
    wh = make();
  });
  afterAll(async () => wh?.close());

  it('merges, creating the target with the SCD2 columns', async () => {
    expect(await wh.merge(plan('20260101T000000Z-0001', '2026-01-01T00:00:00.000Z'), changes)).toBe('merged');
    const described = (await wh.describe({ schema: 'dw', name: 'dim_types' })).map((c) => c.name);
    expect(described).toEqual([...COLS, '_tm_valid_from', '_tm_valid_to', '_tm_is_current', '_tm_is_deleted', '_tm_row_hash', '_tm_run_id', '_tm_version_key']);
    expect(await wh.currentRowCount({ schema: 'dw', name: 'dim_types' })).toBe(6);
    // PostgreSQL loads in bounded batches: 6 rows, 2 per INSERT here; a first load (inserts
    // only, empty target) straight into the target, with no stage table in between.
    if (wh instanceof PostgresWarehouse) expect(wh.lastStage).toEqual({ rows: 6, batches: 3, into: 'target' });
    const rows = await wh.sql!.query<Record<string, unknown>>({
      sql: `SELECT count(*) AS n, count(*) FILTER (WHERE _tm_is_current AND NOT _tm_is_deleted AND _tm_valid_to IS NULL AND _tm_run_id = '20260101T000000Z-0001' AND _tm_valid_from = TIMESTAMP '2026-01-01 00:00:00' AND _tm_row_hash IS NOT NULL AND _tm_version_key IS NOT NULL) AS ok FROM dw.dim_types`,
      parameters: [],
    });
    expect(rows.map((r) => [Number(r.n), Number(r.ok)])).toEqual([[6, 6]]);
  });

  it('gives the same checksum as DuckDB computes over the changes file, for every type', async () => {
    expect(await wh.checksum({ schema: 'dw', name: 'dim_types' }, COLS, ['id'], 'table')).toBe(expectedChecksum);
    expect(await wh.checksum({ schema: 'dw', name: 'dim_types' }, COLS, ['id'], { changesFile: changes })).toBe(expectedChecksum);
  });

  it('applies the same run twice as a no-op', async () => {
    expect(await wh.merge(plan('20260101T000000Z-0001', '2026-01-01T00:00:00.000Z'), changes)).toBe('already-merged');
    expect(await wh.currentRowCount({ schema: 'dw', name: 'dim_types' })).toBe(6);
  });

  it('reads the dimension as of a timestamp', async () => {
    const second = join(dir, `changes-2-${name}.parquet`);
    await writeChanges(second, `SELECT * REPLACE ('changed' AS note) FROM (${DATA}) WHERE id = 1`, '2026-01-01 06:00:00');
    const p = { ...plan('20260101T060000Z-0002', '2026-01-01T06:00:00.000Z'), counts: { inserted: 0, updated: 1, deleted: 0, type1: 0 } };
    // Classified as an update: rewrite _tm_op in a copy of the file.
    const upd = join(dir, `changes-2u-${name}.parquet`);
    const s = await DuckSession.open(':memory:', duck);
    await s.run(`COPY (SELECT * REPLACE ('update' AS _tm_op) FROM read_parquet(${duckLiteral(second)})) TO ${duckLiteral(upd)} (FORMAT parquet)`);
    await s.close();
    expect(await wh.merge(p, upd)).toBe('merged');
    // A run with an update has a version to close: staged, then applied by the SCD2 steps.
    if (wh instanceof PostgresWarehouse) expect(wh.lastStage).toEqual({ rows: 1, batches: 1 });
    const target = { schema: 'dw', name: 'dim_types' };
    const cols = columns.filter((c) => c.name === 'id' || c.name === 'note');
    const at = async (t: string) =>
      (await wh.asOf(target, cols, t)).map((r) => `${String(r.id)}:${String(r.note)}`).sort();
    expect(await at('2025-12-31T23:59:59Z')).toEqual([]);
    expect(await at('2026-01-01T05:59:59Z')).toEqual(['1:Ünïcode ✓', '2:', '3:null', '4:NULL', '5:a|b=1:c', '6:x']);
    expect(await at('2026-01-01T06:00:00Z')).toEqual(['1:changed', '2:', '3:null', '4:NULL', '5:a|b=1:c', '6:x']);
    expect(await wh.currentRowCount(target)).toBe(6);
    if (wh instanceof DuckDbWarehouse) {
      // The closed version keeps every column of the first run, however it was closed.
      const closed = await wh.sql!.query<Record<string, unknown>>({
        sql: `SELECT CAST(big AS VARCHAR) AS big, CAST(amount AS VARCHAR) AS amount, CAST(seen_tz AS VARCHAR) AS seen_tz, hex(photo) AS photo, CAST(uid AS VARCHAR) AS uid, note, _tm_run_id, CAST(_tm_valid_from AS VARCHAR) AS vf, CAST(_tm_valid_to AS VARCHAR) AS vt, _tm_is_current, _tm_is_deleted, _tm_version_key = md5('1' || '2026-01-01 00:00:00') AS key_kept FROM dw.dim_types WHERE id = 1 ORDER BY _tm_valid_from`,
        parameters: [],
      });
      expect(closed).toEqual([
        { big: '10', amount: '1234.50', seen_tz: '2026-01-02 01:04:05+00', photo: '00FF', uid: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', note: 'Ünïcode ✓', _tm_run_id: FIRST, vf: '2026-01-01 00:00:00', vt: '2026-01-01 06:00:00', _tm_is_current: false, _tm_is_deleted: false, key_kept: true },
        { big: '10', amount: '1234.50', seen_tz: '2026-01-02 01:04:05+00', photo: '00FF', uid: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', note: 'changed', _tm_run_id: '20260101T060000Z-0002', vf: '2026-01-01 06:00:00', vt: null, _tm_is_current: true, _tm_is_deleted: false, key_kept: false },
      ]);
    }
  });

  it('records the commit in the ledger and applies nothing on top of a base that is no longer the latest committed run', async () => {
    const target = { schema: 'dw', name: 'dim_types' };
    const head = async () => (await wh.sql!.query<Record<string, unknown>>(wh.dialect.ledgerHead(target, 'types')))[0];
    expect(await head()).toMatchObject({ run_id: '20260101T060000Z-0002', base_run_id: FIRST, read_to: 'wm-20260101T060000Z-0002', snapshot: 'state/types/20260101T060000Z-0002.json' });
    const versions = async () => Number((await wh.sql!.query<{ n: unknown }>({ sql: 'SELECT count(*) AS n FROM dw.dim_types', parameters: [] }))[0]!.n);
    const before = await versions();
    // The doubling bug: a run that read the first run's window again (its checkpoint write was
    // lost) computes the second run's changes a second time, on the first run as its base.
    const stale = { ...plan('20260101T070000Z-0003', '2026-01-01T07:00:00.000Z', FIRST), counts: { inserted: 0, updated: 1, deleted: 0, type1: 0 } };
    const upd = join(dir, `changes-2u-${name}.parquet`);
    expect(await wh.merge(stale, upd)).toBe('base-moved');
    // And a first load computed against nothing, into a pipeline that has committed runs.
    expect(await wh.merge(plan('20260101T080000Z-0004', '2026-01-01T08:00:00.000Z', null), changes)).toBe('base-moved');
    expect(await versions()).toBe(before);
    expect((await head())!.run_id).toBe('20260101T060000Z-0002');
    expect(await wh.sql!.query(wh.dialect.ledgerCheck({ pipeline: 'types', runId: '20260101T070000Z-0003', target }))).toEqual([]);
  });
});

describe('postgres staging', () => {
  it('bounds a batch by rows and by the 65 535 parameter limit', () => {
    expect(stagingBatchRows(17, 65_535)).toBe(1000);
    expect(stagingBatchRows(200, 65_535)).toBe(327);
    expect(stagingBatchRows(70_000, 65_535)).toBe(1);
  });

  it('stages a first load into a target that already has rows, so that their current versions are closed', async () => {
    const wh = new PostgresWarehouse(pgh.url, duck, 2);
    const target = { schema: 'dw', name: 'dim_shared' };
    const first = { ...plan(FIRST, '2026-01-01T00:00:00.000Z'), pipeline: 'one', target };
    expect(await wh.merge(first, changes)).toBe('merged');
    expect(wh.lastStage).toEqual({ rows: 6, batches: 3, into: 'target' });
    // Another pipeline's first load into the same table: inserts only, but not into an empty target.
    const second = { ...plan('20260101T010000Z-0009', '2026-01-01T01:00:00.000Z', null), pipeline: 'two', target };
    const later = join(dir, 'changes-shared.parquet');
    await writeChanges(later, DATA, '2026-01-01 01:00:00');
    expect(await wh.merge(second, later)).toBe('merged');
    expect(wh.lastStage).toEqual({ rows: 6, batches: 3 });
    const r = await wh.sql.query<{ n: unknown; c: unknown }>({ sql: 'SELECT count(*) AS n, count(*) FILTER (WHERE _tm_is_current) AS c FROM dw.dim_shared', parameters: [] });
    expect(r.map((x) => [Number(x.n), Number(x.c)])).toEqual([[12, 6]]);
  });

  it('keeps every version key distinct after two merges', async () => {
    const c = new pg.Client({ connectionString: pgh.url });
    await c.connect();
    try {
      const r = await c.query(`select count(*)::int n, count(distinct _tm_version_key)::int k from dw.dim_types`);
      expect(r.rows[0]).toEqual({ n: 7, k: 7 });
    } finally {
      await c.end();
    }
  });
});

describe('duckdb hash column storage', () => {
  // 200 k versions: enough rows that DuckDB, left to choose, stores part of a 16-byte hash
  // column as FSST (it does at this size on 1.5), so the storage option is what decides.
  const N = 200_000;
  const storage = async (file: string, table: string) => {
    const s = await DuckSession.open(file, duck);
    try {
      const rows = await s.rows<{ c: string; k: string }>(
        `SELECT DISTINCT column_name AS c, compression AS k FROM pragma_storage_info(${duckLiteral(table)}) WHERE column_name IN ('_tm_row_hash', '_tm_version_key', 'note') AND segment_type <> 'VALIDITY' ORDER BY 1, 2`,
      );
      return rows.map((r) => `${r.c} ${r.k}`);
    } finally {
      await s.close();
    }
  };
  const load = async (hashFormat: 'binary' | 'hex', name: string) => {
    const file = join(dir, `storage-${name}.parquet`);
    const hash = (x: string) => (hashFormat === 'binary' ? `unhex(md5(${x}))` : `md5(${x})`);
    const s = await DuckSession.open(':memory:', duck);
    try {
      await s.run(
        `COPY (SELECT i AS id, 'note ' || (i % 7) AS note, ${hash('CAST(i AS VARCHAR)')} AS _tm_row_hash, CAST(NULL AS ${hashFormat === 'binary' ? 'BLOB' : 'VARCHAR'}) AS _tm_t1_hash,
          TIMESTAMP '2026-01-01 00:00:00' AS _tm_valid_from, ${hash(`CAST(i AS VARCHAR) || '@'`)} AS _tm_version_key, 'insert' AS _tm_op FROM range(${N}) t(i))
         TO ${duckLiteral(file)} (FORMAT parquet)`,
      );
      const schema = await s.rows<{ column_name: string; column_type: string }>(`DESCRIBE SELECT * FROM read_parquet(${duckLiteral(file)})`);
      const whFile = join(dir, `storage-${name}.duckdb`);
      const wh = new DuckDbWarehouse(whFile, duck);
      const p: Omit<MergePlan, 'stage'> = {
        ...plan(FIRST, '2026-01-01T00:00:00.000Z'),
        pipeline: name,
        target: { schema: 'dw', name },
        columns: planColumnsFromDuck(schema.map((r) => ({ name: r.column_name, type: r.column_type }))),
        counts: { inserted: N, updated: 0, deleted: 0, type1: 0 },
        hashFormat,
      };
      expect(await wh.merge(p, file)).toBe('merged');
      await wh.close();
      return storage(whFile, `dw.${name}`);
    } finally {
      await s.close();
    }
  };

  it('stores a new target’s 16-byte hashes uncompressed and leaves data columns and hex hashes to DuckDB', async () => {
    const binary = await load('binary', 'dim_store_bin');
    expect(binary.filter((x) => x.startsWith('_tm_'))).toEqual(['_tm_row_hash Uncompressed', '_tm_version_key Uncompressed']);
    // A data column keeps DuckDB's own choice (a 7-value text: not stored uncompressed).
    expect(binary.filter((x) => x.startsWith('note'))).not.toContain('note Uncompressed');
    // Hex text compresses (FSST halves hex): rules 1–3 keep DuckDB's choice.
    const hex = await load('hex', 'dim_store_hex');
    expect(hex.filter((x) => x.startsWith('_tm_row_hash'))).toContain('_tm_row_hash FSST');
  });
});
