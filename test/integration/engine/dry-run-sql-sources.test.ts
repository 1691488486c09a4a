import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dryRun, dryRunReportSchema, type DryRunReport } from '../../../shared/engine/dry-run.js';
import { apiRoutes } from '../../../shared/http/routes.js';
import type { AzuriteHandle } from '../../../shared/local/azurite.js';
import { openLocalStack, runOnce, type LocalStack } from '../../../shared/local/stack.js';
import { getRun } from '../../../shared/state/runs.js';
import { withAzurite } from '../../support/azurite.js';
import { startPostgres, type PostgresHandle } from '../../support/postgres.js';
import { makeProject } from '../../support/project.js';
import { storageState } from '../../support/storage-state.js';
import { freshTsqlDatabase, tsqlEngine } from '../../support/tsql-engine.js';
import { warmWarehouseFor } from '../../support/tsql-pool.js';
import { tsqlQuery } from '../../support/tsql-sql.js';

/**
 * `run --dry-run` for PostgreSQL (PGlite over its socket server) and SQL Server (the T-SQL
 * engine) sources, each loading a warehouse of its own kind in the same database: the report
 * (window, the source SQL, rows, the inserts / updates / deletes / unchanged, the DDL) and the
 * proof that nothing moved: every source and warehouse row and column, and every blob, queue
 * message and table row of storage, are the same after the dry run; the next real run applies
 * exactly what the dry run said.
 */
const engine = await tsqlEngine();

const pipeline = (name: string, conn: string, wh: string, mode: string, table: string, key: string) => `name: ${name}
source:
  connection: ${conn}
  table: ${table}
  changeDetection: ${mode}
key: [${key}]
target: { warehouse: ${wh}, table: dw.${name} }
`;
/** A source and a warehouse in one database, named by one setting. */
const sameDatabase = (kind: 'postgres' | 'mssql', setting: string) => `storage: AzureWebJobsStorage
connections:
  SRC: { kind: ${kind}, setting: ${setting} }
warehouses:
  DW: { kind: ${kind}, setting: ${setting} }
duckdb: { memoryLimit: 256MB, threads: 1 }
`;
const noChanges = { inserted: 0, updated: 0, deleted: 0, unchanged: 0, stale: 0, quarantined: 0, type1: 0 };

/** The counts the run recorded, in the dry run's shape. */
async function applied(stack: LocalStack, name: string): Promise<{ rows: number; changes: DryRunReport['changes'] }> {
  const r = await runOnce(stack, { pipeline: name }, 120_000);
  expect(r.status, r.error).toBe('succeeded');
  const { extracted, ...changes } = (await getRun(stack.ctx.tables, name, r.runId)).counts;
  return { rows: extracted, changes };
}

function noScratchLeft(stack: LocalStack, name: string): void {
  const d = join(stack.ctx.workDir, name);
  expect(existsSync(d) ? readdirSync(d).filter((x) => x.startsWith('dry-run')) : []).toEqual([]);
}

async function viaHttp(stack: LocalStack, name: string): Promise<unknown> {
  const route = apiRoutes.find((x) => x.name === 'startRun')!;
  const http = await route.handle(stack.ctx, { params: { name }, query: new URLSearchParams('dryRun=true'), bodyText: '', baseUrl: 'http://x' } as never);
  expect(http.status).toBe(200);
  // The answer has the shape the OpenAPI document gives (generated from the same schema).
  return dryRunReportSchema.parse(http.jsonBody);
}

describe('run --dry-run on a PostgreSQL source and warehouse', () => {
  let db: PostgresHandle;
  let az: AzuriteHandle;
  let stack: LocalStack;
  const clock = { t: Date.parse('2026-02-01T00:00:00Z') };

  async function sql(...statements: string[]): Promise<Array<Record<string, unknown>>> {
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    try {
      let last: Array<Record<string, unknown>> = [];
      for (const s of statements) last = (await c.query(s)).rows;
      return last;
    } finally {
      await c.end();
    }
  }

  /** Every user table's columns and rows (as text, sorted), source and warehouse alike. */
  async function pgState(): Promise<string> {
    const cols = await sql(
      `SELECT table_schema, table_name, column_name, data_type FROM information_schema.columns WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2, 3`,
    );
    const tables = [...new Set(cols.map((c) => `"${String(c.table_schema)}"."${String(c.table_name)}"`))];
    const rows: string[] = [];
    for (const t of tables) rows.push(`${t}: ${JSON.stringify((await sql(`SELECT t::text AS r FROM ${t} t ORDER BY 1`)).map((r) => r.r))}`);
    return JSON.stringify(cols) + rows.join('\n');
  }

  beforeAll(async () => {
    db = await startPostgres();
    az = await withAzurite();
    await sql(
      'DROP SCHEMA IF EXISTS crm CASCADE',
      'DROP SCHEMA IF EXISTS dw CASCADE',
      'CREATE SCHEMA crm',
      'CREATE TABLE crm.accounts (id integer PRIMARY KEY, name text, modified_at timestamptz)',
      `INSERT INTO crm.accounts SELECT i, 'a' || i, timestamptz '2026-01-01 00:00:00+00' + i * interval '1 second' FROM generate_series(1, 20) i`,
      'CREATE TABLE crm.reads (id integer)',
      // A function that writes: read inside the source's READ ONLY transaction it must fail.
      `CREATE FUNCTION crm.note_read(i integer) RETURNS integer LANGUAGE plpgsql AS $$ BEGIN INSERT INTO crm.reads VALUES (i); RETURN i; END $$`,
    );
    const dir = makeProject({
      tidemark: sameDatabase('postgres', 'TEST_PG_URL'),
      pipelines: {
        acc_ts: pipeline('acc_ts', 'SRC', 'DW', '{ mode: timestamp, column: modified_at }', 'crm.accounts', 'id'),
        acc_full: pipeline('acc_full', 'SRC', 'DW', '{ mode: full }', 'crm.accounts', 'id'),
        acc_trap: `name: acc_trap
source:
  connection: SRC
  query: SELECT id, crm.note_read(id) AS noted FROM crm.accounts
  changeDetection: { mode: full }
key: [id]
target: { warehouse: DW, table: dw.acc_trap }
`,
      },
    });
    stack = await openLocalStack({ projectDir: dir, connectionString: az.connectionString, env: { ...process.env, TEST_PG_URL: db.url }, now: () => new Date(clock.t) });
  });
  afterAll(async () => {
    await stack?.close();
    await az?.stop();
    await db?.stop();
  });

  it('before the first run: a full read, every row an insert, the CREATE TABLE; nothing written anywhere', async () => {
    const before = { pg: await pgState(), storage: await storageState(az.connectionString) };
    const r = await dryRun(stack.ctx, { pipeline: 'acc_full' });
    expect(r).toMatchObject({ mode: 'full', estimatedRows: 20, window: { mode: 'full', fullRead: true }, target: { table: 'dw.acc_full', exists: false }, writes: 'none' });
    expect(r.source).toEqual({ sql: 'SELECT "id" AS "id", "name" AS "name", "modified_at" AS "modified_at" FROM "crm"."accounts"', parameters: [] });
    expect(r.changes).toEqual({ ...noChanges, inserted: 20 });
    expect(r.target.ddl.map((s) => s.sql)).toEqual([
      'CREATE SCHEMA IF NOT EXISTS "dw"',
      'CREATE TABLE IF NOT EXISTS "dw"."acc_full" ("id" integer, "name" text, "modified_at" timestamp with time zone, "_tm_valid_from" timestamp without time zone, "_tm_valid_to" timestamp without time zone, "_tm_is_current" boolean, "_tm_is_deleted" boolean, "_tm_row_hash" bytea, "_tm_run_id" text, "_tm_version_key" bytea, PRIMARY KEY ("_tm_version_key"))',
      'CREATE INDEX IF NOT EXISTS "acc_full_tm_current" ON "dw"."acc_full" ("id") WHERE "_tm_is_current"',
    ]);
    expect({ pg: await pgState(), storage: await storageState(az.connectionString) }).toEqual(before);
    noScratchLeft(stack, 'acc_full');
  });

  it('after runs and source changes: the window, its rows, updates / inserts / deletes / unchanged; source, warehouse and storage unchanged; the runs then apply exactly that', async () => {
    for (const name of ['acc_ts', 'acc_full']) expect((await applied(stack, name)).changes.inserted).toBe(20);
    await sql(
      `UPDATE crm.accounts SET name = 'renamed', modified_at = timestamptz '2026-01-02 00:00:00+00' + id * interval '1 ms' WHERE id <= 3`,
      `UPDATE crm.accounts SET modified_at = timestamptz '2026-01-02 00:00:01+00' WHERE id = 4`, // touched, unchanged
      'DELETE FROM crm.accounts WHERE id IN (5, 6)',
      `INSERT INTO crm.accounts VALUES (21, 'new', timestamptz '2026-01-02 00:00:02+00')`,
    );
    clock.t += 3_600_000;
    const before = { pg: await pgState(), storage: await storageState(az.connectionString) };

    const ts = await dryRun(stack.ctx, { pipeline: 'acc_ts' });
    expect(ts.mode).toBe('incremental');
    expect(ts.window).toMatchObject({ mode: 'timestamp', column: 'modified_at', from: '2026-01-01T00:00:20.000000Z', to: '2026-01-02T00:00:02.000000Z', fullRead: false });
    expect(ts.source).toEqual({
      sql: 'SELECT "id" AS "id", "name" AS "name", "modified_at" AS "modified_at" FROM "crm"."accounts" WHERE "modified_at" > $1::timestamptz AND "modified_at" <= $2::timestamptz',
      parameters: ['2026-01-01T00:00:20.000000Z', '2026-01-02T00:00:02.000000Z'],
    });
    expect(ts.estimatedRows).toBe(5);
    // A timestamp window does not see the two hard deletes.
    expect(ts.changes).toEqual({ ...noChanges, updated: 3, inserted: 1, unchanged: 1 });
    expect(ts.target).toEqual({ table: 'dw.acc_ts', exists: true, ddl: [] });

    const full = await dryRun(stack.ctx, { pipeline: 'acc_full' });
    expect(full).toMatchObject({ mode: 'incremental', estimatedRows: 19, window: { mode: 'full', fullRead: true } });
    // A full read has no change column: the touched row 4 is an update here.
    expect(full.changes).toEqual({ ...noChanges, updated: 4, inserted: 1, deleted: 2, unchanged: 14 });
    expect(await viaHttp(stack, 'acc_full')).toEqual(JSON.parse(JSON.stringify(full)));

    expect({ pg: await pgState(), storage: await storageState(az.connectionString) }).toEqual(before);
    noScratchLeft(stack, 'acc_ts');
    noScratchLeft(stack, 'acc_full');
    expect(await applied(stack, 'acc_ts')).toEqual({ rows: ts.estimatedRows, changes: ts.changes });
    expect(await applied(stack, 'acc_full')).toEqual({ rows: full.estimatedRows, changes: full.changes });
  });

  it('reads in a READ ONLY transaction: a source query that would write fails, and writes nothing', async () => {
    const before = await pgState();
    await expect(dryRun(stack.ctx, { pipeline: 'acc_trap' })).rejects.toThrow(/read-only transaction/);
    expect(await sql('SELECT count(*)::int AS n FROM crm.reads')).toEqual([{ n: 0 }]);
    expect(await pgState()).toBe(before);
    noScratchLeft(stack, 'acc_trap');
  });
});

describe.skipIf(!('url' in engine))('run --dry-run on a SQL Server source and warehouse (T-SQL engine)', () => {
  let az: AzuriteHandle;
  let db: { url: string; drop(): Promise<void> };
  let stack: LocalStack;
  const clock = { t: Date.parse('2026-02-01T00:00:00Z') };

  /** Every user table's columns and rows (as JSON, sorted), source and warehouse alike. */
  async function tsqlState(): Promise<string> {
    const cols = await tsqlQuery(
      db.url,
      `SELECT s.name AS s, t.name AS t, c.name AS c, ty.name AS ty FROM sys.tables t JOIN sys.schemas s ON s.schema_id = t.schema_id
       JOIN sys.columns c ON c.object_id = t.object_id JOIN sys.types ty ON ty.user_type_id = c.user_type_id ORDER BY s.name, t.name, c.name`,
    );
    const tables = [...new Set(cols.map((c) => `[${String(c.s)}].[${String(c.t)}]`))];
    const rows: string[] = [];
    for (const t of tables) rows.push(`${t}: ${(await tsqlQuery(db.url, `SELECT * FROM ${t}`)).map((r) => JSON.stringify(r)).sort().join(',')}`);
    return JSON.stringify(cols) + rows.join('\n');
  }

  beforeAll(async () => {
    az = await withAzurite();
    db = await freshTsqlDatabase((engine as { url: string }).url, 'tm_dry');
    await tsqlQuery(db.url, 'CREATE SCHEMA crm');
    await tsqlQuery(db.url, 'CREATE TABLE crm.Accounts (Id int PRIMARY KEY, Name nvarchar(100), ModifiedAt datetime2(6))');
    await tsqlQuery(
      db.url,
      `INSERT INTO crm.Accounts VALUES ${Array.from({ length: 12 }, (_, i) => `(${i + 1}, N'a${i + 1}', '2026-01-01 00:00:${String(i + 1).padStart(2, '0')}')`).join(', ')}`,
    );
    const dir = makeProject({
      tidemark: sameDatabase('mssql', 'TEST_MS_URL'),
      pipelines: {
        ms_ts: pipeline('ms_ts', 'SRC', 'DW', '{ mode: timestamp, column: ModifiedAt }', 'crm.Accounts', 'Id'),
        ms_full: pipeline('ms_full', 'SRC', 'DW', '{ mode: full }', 'crm.Accounts', 'Id'),
      },
    });
    stack = await openLocalStack({ projectDir: dir, connectionString: az.connectionString, env: { ...process.env, TEST_MS_URL: db.url }, now: () => new Date(clock.t), warehouseFor: warmWarehouseFor });
  });
  afterAll(async () => {
    await stack?.close();
    await db?.drop();
    await az?.stop();
  });

  it('first load, then updates / an insert / deletes: the report, nothing moved, and the runs apply what it said', async () => {
    let before = { ms: await tsqlState(), storage: await storageState(az.connectionString) };
    const first = await dryRun(stack.ctx, { pipeline: 'ms_full' });
    expect(first).toMatchObject({ mode: 'full', estimatedRows: 12, window: { fullRead: true }, target: { table: 'dw.ms_full', exists: false }, writes: 'none' });
    expect(first.changes).toEqual({ ...noChanges, inserted: 12 });
    const list = 'CAST(_tm_src.[Id] AS varchar(11)) AS [Id], _tm_src.[Name] AS [Name], CONVERT(varchar(27), _tm_src.[ModifiedAt], 126) AS [ModifiedAt]';
    expect(first.source).toEqual({ sql: `SELECT ${list} FROM [crm].[Accounts] AS _tm_src`, parameters: [] });
    expect(first.target.ddl.map((s) => s.sql).join('\n')).toMatch(/CREATE TABLE \[dw\]\.\[ms_full\]/);
    expect({ ms: await tsqlState(), storage: await storageState(az.connectionString) }).toEqual(before);

    for (const name of ['ms_ts', 'ms_full']) expect((await applied(stack, name)).changes.inserted).toBe(12);
    await tsqlQuery(db.url, `UPDATE crm.Accounts SET Name = N'renamed', ModifiedAt = '2026-01-02 00:00:00' WHERE Id <= 2`);
    await tsqlQuery(db.url, 'DELETE FROM crm.Accounts WHERE Id = 12');
    await tsqlQuery(db.url, `INSERT INTO crm.Accounts VALUES (13, N'new', '2026-01-02 00:00:01')`);
    clock.t += 3_600_000;
    before = { ms: await tsqlState(), storage: await storageState(az.connectionString) };

    const ts = await dryRun(stack.ctx, { pipeline: 'ms_ts' });
    // The bounds as the engine renders them (CONVERT style 126; Babelfish writes a space for the T).
    const at = (day: string, time: string, z: string) => expect.stringMatching(new RegExp(`^2026-01-${day}[T ]${time}(\\.0+)?${z}$`));
    expect(ts.window).toMatchObject({ mode: 'timestamp', column: 'ModifiedAt', from: at('01', '00:00:12', 'Z'), to: at('02', '00:00:01', 'Z'), fullRead: false });
    expect(ts.source).toEqual({
      sql: `SELECT ${list} FROM [crm].[Accounts] AS _tm_src WHERE _tm_src.[ModifiedAt] > CONVERT(datetime2(7), @from, 126) AND _tm_src.[ModifiedAt] <= CONVERT(datetime2(7), @to, 126)`,
      parameters: [
        { name: 'from', value: at('01', '00:00:12', '') },
        { name: 'to', value: at('02', '00:00:01', '') },
      ],
    });
    expect(ts.estimatedRows).toBe(3);
    expect(ts.changes).toEqual({ ...noChanges, updated: 2, inserted: 1 });
    expect(ts.target).toEqual({ table: 'dw.ms_ts', exists: true, ddl: [] });

    const full = await dryRun(stack.ctx, { pipeline: 'ms_full' });
    expect(full).toMatchObject({ estimatedRows: 12, window: { fullRead: true } });
    expect(full.changes).toEqual({ ...noChanges, updated: 2, inserted: 1, deleted: 1, unchanged: 9 });

    expect({ ms: await tsqlState(), storage: await storageState(az.connectionString) }).toEqual(before);
    noScratchLeft(stack, 'ms_full');
    expect(await applied(stack, 'ms_ts')).toEqual({ rows: ts.estimatedRows, changes: ts.changes });
    expect(await applied(stack, 'ms_full')).toEqual({ rows: full.estimatedRows, changes: full.changes });
  }, 600_000); // four runs merge into the T-SQL warehouse: slow on a loaded machine
});
