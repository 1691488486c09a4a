import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pipelineSchema } from '../../shared/config/schema.js';
import { PostgresSource, planPgSelect } from '../../shared/extract/postgres-source.js';
import { pgColumnPlan } from '../../shared/extract/postgres-types.js';
import { duckQuery } from '../support/project.js';
import { startPostgres, type PostgresHandle } from '../support/postgres.js';

// Each PostgreSQL type through the real engine (PGlite over TCP, or TIDEMARK_TEST_PG_URL),
// the pg driver and the Parquet writer, read back with DuckDB.
const duck = { memoryLimit: '256MB', threads: 1, tempDir: join(tmpdir(), 'tidemark-test-spill') };

describe('PostgresSource types and windows on a real PostgreSQL', () => {
  let db: PostgresHandle;
  beforeAll(async () => {
    db = await startPostgres();
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    await c.query('DROP SCHEMA IF EXISTS typ CASCADE');
    await c.query('CREATE SCHEMA typ');
    await c.query(`CREATE TABLE typ.t (
      id integer PRIMARY KEY, amount numeric(38,10), free numeric, ts timestamptz, naive timestamp, d date, tm time,
      doc jsonb, u uuid, b bytea, ints integer[], tags text[], flag boolean, big bigint, f8 double precision, note varchar(20), span interval)`);
    await c.query(`INSERT INTO typ.t VALUES
      (1, 1234567890123456789012345678.0123456789, 3.141592653589793238462643383279502884197, '2026-03-01 10:20:30.123456+02', '2026-03-01 10:20:30.654321',
       '0001-01-01', '23:59:59.999999', '{"a": [1, 2.50, "x"], "b": null}', '6f9619ff-8b86-d011-b42d-00c04fc964ff', '\\x00ff7f80',
       '{1,NULL,3}', '{"a,b","c\\"d",NULL}', true, 9223372036854775807, 0.1, 'Zürich 東京', '1 day 02:03:04'),
      (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, false, NULL, NULL, NULL, NULL)`);
    await c.end();
  });
  afterAll(async () => {
    await db?.stop();
  });

  it('maps every type without losing precision', async () => {
    const p = pipelineSchema.parse({ name: 'typ', source: { connection: 'PG', table: 'typ.t' }, key: ['id'], target: { warehouse: 'W', table: 'dw.t' } });
    const src = new PostgresSource({ kind: 'postgres', setting: 'X', requestTimeout: '1m' }, db.url, p, duck);
    const out = join(mkdtempSync(join(tmpdir(), 'tidemark-pg-')), 'parts');
    const r = await src.extract({ window: { mode: 'full', lagMs: 0, saved: null, runMode: 'full' }, outDir: out, partRows: 1000, partBytes: '1MB', countSource: true });
    expect(r.sourceRowCount).toBe(2);
    expect(r.schema.map((c) => `${c.name} ${c.type}`)).toEqual([
      'id INTEGER',
      'amount DECIMAL(38,10)',
      'free VARCHAR',
      'ts TIMESTAMPTZ',
      'naive TIMESTAMP',
      'd DATE',
      'tm TIME',
      'doc JSON',
      'u UUID',
      'b BLOB',
      'ints INTEGER[]',
      'tags VARCHAR[]',
      'flag BOOLEAN',
      'big BIGINT',
      'f8 DOUBLE',
      'note VARCHAR',
      'span VARCHAR',
    ]);
    const rows = await duckQuery<Record<string, unknown>>(
      ':memory:',
      `SELECT CAST(COLUMNS(* EXCLUDE (id, flag)) AS VARCHAR), id, flag FROM read_parquet('${r.files[0]}') ORDER BY id`,
    );
    expect(rows[0]).toEqual({
      id: 1,
      amount: '1234567890123456789012345678.0123456789',
      free: '3.141592653589793238462643383279502884197',
      ts: '2026-03-01 08:20:30.123456+00',
      naive: '2026-03-01 10:20:30.654321',
      d: '0001-01-01',
      tm: '23:59:59.999999',
      doc: '{"a": [1, 2.50, "x"], "b": null}',
      u: '6f9619ff-8b86-d011-b42d-00c04fc964ff',
      b: '\\x00\\xFF\\x7F\\x80',
      ints: '[1, NULL, 3]',
      tags: `['a,b', 'c"d', NULL]`,
      flag: true,
      big: '9223372036854775807',
      f8: '0.1',
      note: 'Zürich 東京',
      span: '1 day 02:03:04',
    });
    expect(rows[1]).toMatchObject({ id: 2, amount: null, ts: null, b: null, ints: null, flag: false });
  });

  it('key-only read (reconcile --deletes): the key columns of every row, NULLs kept, nothing else', async () => {
    const p = pipelineSchema.parse({ name: 'typ', source: { connection: 'PG', table: 'typ.t', changeDetection: { mode: 'timestamp', column: 'ts' } }, key: ['id', 'note'], target: { warehouse: 'W', table: 'dw.t' } });
    const src = new PostgresSource({ kind: 'postgres', setting: 'X', requestTimeout: '1m' }, db.url, p, duck);
    const r = await src.extractKeys({ outDir: join(mkdtempSync(join(tmpdir(), 'tidemark-pg-')), 'keys'), partRows: 1000, partBytes: '1MB' });
    expect(r.schema.map((c) => `${c.name} ${c.type}`)).toEqual(['id INTEGER', 'note VARCHAR']);
    // Row 2 has a NULL change column (ts) and a NULL key part: still read, for reconcile to count.
    expect(await duckQuery(':memory:', `SELECT * FROM read_parquet('${r.files[0]}') ORDER BY id`)).toEqual([
      { id: 1, note: 'Zürich 東京' },
      { id: 2, note: null },
    ]);
  });

  it('partitions: key statistics in one snapshot, then one key range per read', async () => {
    const p = pipelineSchema.parse({ name: 'typ', source: { connection: 'PG', table: 'typ.t', partitions: { count: 2 } }, key: ['id'], target: { warehouse: 'W', table: 'dw.t' } });
    const src = new PostgresSource({ kind: 'postgres', setting: 'X', requestTimeout: '1m' }, db.url, p, duck);
    const win = { mode: 'full' as const, lagMs: 0, saved: null, runMode: 'full' as const };
    expect(await src.keyStats({ window: win, column: 'id' })).toEqual({ window: { mode: 'full', from: null, to: null, next: null }, min: '1', max: '2', rows: 2 });
    const out = join(mkdtempSync(join(tmpdir(), 'tidemark-pg-')), 'parts');
    const r = await src.extract({ window: win, outDir: out, partRows: 1000, partBytes: '1MB', countSource: false, range: { column: 'id', lo: '2', hi: '2', last: true } });
    const ids = await duckQuery<{ id: number }>(':memory:', `SELECT id FROM read_parquet('${r.files[0]}')`);
    expect(ids).toEqual([{ id: 2 }]);
    await expect(src.keyStats({ window: win, column: 'note' })).rejects.toThrow(/partitions.column note of typ is text; partitions split an integer column/);
  });

  it('timestamp window: (from, to] bound as parameters', () => {
    const p = pipelineSchema.parse({
      name: 'acc',
      source: { connection: 'PG', table: 'crm.accounts', changeDetection: { mode: 'timestamp', column: 'modified_at' } },
      key: ['id'],
      target: { warehouse: 'W', table: 'dw.t' },
    });
    const cols = [pgColumnPlan('id', 'integer'), pgColumnPlan('tags', 'text[]'), pgColumnPlan('span', 'interval')];
    expect(planPgSelect(p, cols, { fullRead: false, from: '2026-01-01T00:00:00.000Z', to: '2026-01-02T00:00:00.000000Z' })).toEqual({
      sql: 'SELECT "id" AS "id", array_to_json("tags")::text AS "tags", "span"::text AS "span" FROM "crm"."accounts" WHERE "modified_at" > $1::timestamptz AND "modified_at" <= $2::timestamptz',
      parameters: ['2026-01-01T00:00:00.000Z', '2026-01-02T00:00:00.000000Z'],
    });
  });
});
