import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AzuriteHandle } from '../../shared/local/azurite.js';
import { withAzurite } from './azurite.js';
import { startPostgres, type PostgresHandle } from './postgres.js';
import { freshTsqlDatabase } from './tsql-engine.js';
import type { TsqlConnections } from './tsql-pool.js';
import { tsqlQuery } from './tsql-sql.js';
import { openLocalStack, runOnce, type LocalStack, type RunSummary } from '../../shared/local/stack.js';
import { defaultWarehouseFor } from '../../shared/engine/factories.js';
import { projectPath } from '../../shared/engine/context.js';
import { DuckDbWarehouse } from '../../shared/merge/duckdb/warehouse.js';
import { duckExec, duckQuery, makeProject } from './project.js';

/** mssql: SQL Server / the T-SQL engine of test/support/tsql-engine.ts, its URL passed where PostgreSQL's goes. */
export type WarehouseKind = 'duckdb' | 'postgres' | 'mssql';

export interface Step {
  /** SQL run against the DuckDB source before the run. */
  source: string[];
  /** Minutes the clock advances before this run (the first run starts at 2026-01-01T00:00Z). */
  advanceMinutes?: number;
}

export interface Scenario {
  name: string;
  /** Pipeline YAML lines below `key:` (target, validation …), with WAREHOUSE/TABLE placeholders filled in. */
  pipeline: (p: { name: string; table: string }) => string;
  /** SQL creating and filling the source (schema `app`). */
  setup: string[];
  steps: Step[];
  /** Columns to read back, in order (user columns; SCD columns are added). */
  columns: string[];
  keys: string[];
  /** Runs after the last step, before the table is read (e.g. a duplicate delivery). */
  after?: (stack: LocalStack, runs: RunSummary[], pipeline: string) => Promise<unknown>;
}

export interface Played {
  runs: RunSummary[];
  /** The whole dimension, every value as text, run ids replaced by r1, r2, … */
  table: Array<Record<string, string | null>>;
  after?: unknown;
  /** Versions breaking the interval rules (README, SCD2): empty when every key's intervals are disjoint and valid_from < valid_to. */
  intervals: string[];
}

const START = Date.parse('2026-01-01T00:00:00Z');

/** tidemark.yaml of a test project: a DuckDB source SRC and the warehouse WH of `kind` (its URL in TIDEMARK_TEST_WH). */
export function duckSourceProject(kind: WarehouseKind): string {
  return `storage: AzureWebJobsStorage
connections:
  SRC: { kind: duckdb, path: source.duckdb }
warehouses:
  WH: ${kind === 'duckdb' ? '{ kind: duckdb, path: warehouse.duckdb }' : `{ kind: ${kind}, setting: TIDEMARK_TEST_WH }`}
duckdb: { memoryLimit: 256MB, threads: 1 }
`;
}

/** Options of a played scenario. `duckdbCloseBy`: the DuckDB warehouse's close pinned (by size otherwise). */
export interface PlayOptions {
  duckdbCloseBy?: 'update' | 'copy';
}

/**
 * Runs a scenario through the real chain (Azurite, DuckDB source, the given warehouse). `tsql`:
 * the file's warm connections to the mssql database (tsql-pool.ts), lent to its warehouses.
 */
export async function play(sc: Scenario, kind: WarehouseKind, azuriteCs: string, pgUrl: string, tsql?: TsqlConnections, o: PlayOptions = {}): Promise<Played> {
  const pipelineName = `${sc.name}_${kind === 'duckdb' ? 'dk' : kind === 'postgres' ? 'pg' : 'ms'}`;
  const table = `dw.${sc.name}`;
  const dir = makeProject({
    tidemark: duckSourceProject(kind),
    pipelines: { [pipelineName]: sc.pipeline({ name: pipelineName, table }) },
  });
  await duckExec(join(dir, 'source.duckdb'), 'create schema app', ...sc.setup);
  // A server from TIDEMARK_TEST_PG_URL outlives test runs: start from no table.
  if (kind === 'postgres') await pgExec(pgUrl, `DROP TABLE IF EXISTS "dw"."${sc.name}"`);
  if (kind === 'mssql') await tsqlQuery(pgUrl, `IF OBJECT_ID(N'[dw].[${sc.name}]', N'U') IS NOT NULL DROP TABLE [dw].[${sc.name}]`);
  const clock = { t: START };
  const stack: LocalStack = await openLocalStack({
    projectDir: dir,
    connectionString: azuriteCs,
    env: { ...process.env, TIDEMARK_TEST_WH: pgUrl },
    now: () => new Date(clock.t),
    ...(kind === 'mssql' && tsql ? { warehouseFor: tsql.warehouseFor() } : {}),
    ...(kind === 'duckdb' && o.duckdbCloseBy
      ? {
          warehouseFor: (ctx, wh, p) =>
            wh.kind === 'duckdb' ? new DuckDbWarehouse(projectPath(ctx, wh.path), ctx.duck, undefined, o.duckdbCloseBy) : defaultWarehouseFor(ctx, wh, p),
        }
      : {}),
  });
  const runs: RunSummary[] = [];
  try {
    for (const [i, step] of sc.steps.entries()) {
      if (step.source.length) await duckExec(join(dir, 'source.duckdb'), ...step.source);
      if (i > 0) clock.t += (step.advanceMinutes ?? 60) * 60_000;
      runs.push(await runOnce(stack, { pipeline: pipelineName }, 60_000));
    }
    const after = sc.after ? await sc.after(stack, runs, pipelineName) : undefined;
    const where = kind === 'duckdb' ? join(dir, 'warehouse.duckdb') : pgUrl;
    const rows = await readDimension(kind, where, table, sc.columns, sc.keys);
    const ids = new Map(runs.map((r, i) => [r.runId, `r${i + 1}`]));
    const intervals = (await dimensionExists(kind, where, table)) ? await intervalViolations(kind, where, table, sc.keys) : [];
    return { runs, after, intervals, table: rows.map((r) => ({ ...r, run: r.run == null ? null : (ids.get(r.run) ?? r.run) })) };
  } finally {
    await stack.close();
  }
}

/** The whole dimension as text, ordered by key and valid_from, from either engine. */
export async function readDimension(kind: WarehouseKind, where: string, table: string, columns: string[], keys: string[]): Promise<Array<Record<string, string | null>>> {
  const [schema, name] = table.split('.') as [string, string];
  const order = `${keys.map((k) => `"${k}"`).join(', ')}, _tm_valid_from, _tm_is_deleted`;
  // Hash columns are read as they are and shown as hex (textRow): 16 bytes under hash rule 4,
  // and the T-SQL engine here cannot print binary as hex (CONVERT ignores the style).
  const raw = (c: string) => c === '_tm_row_hash' || c === '_tm_version_key';
  if (kind === 'duckdb') {
    const rows = await duckQuery<Record<string, unknown>>(
      where,
      `select ${columns.map((c) => (raw(c) ? `"${c}"` : `cast("${c}" as varchar) as "${c}"`)).join(', ')},
         strftime(_tm_valid_from, '%Y-%m-%dT%H:%M:%S') vf, strftime(_tm_valid_to, '%Y-%m-%dT%H:%M:%S') vt,
         cast(_tm_is_current as varchar) cur, cast(_tm_is_deleted as varchar) del, _tm_run_id run
       from "${schema}"."${name}" order by ${order}`,
    );
    return rows.map(textRow);
  }
  if (kind === 'mssql') {
    const ts = (c: string) => `STUFF(CONVERT(varchar(19), ${c}, 120), 11, 1, 'T')`;
    const rows = await tsqlQuery(
      where,
      `select ${columns.map((c) => (raw(c) ? `[${c}]` : `cast([${c}] as nvarchar(max)) as [${c}]`)).join(', ')},
         ${ts('_tm_valid_from')} vf, ${ts('_tm_valid_to')} vt,
         case when _tm_is_current = 1 then 'true' else 'false' end cur, case when _tm_is_deleted = 1 then 'true' else 'false' end del, _tm_run_id run
       from [${schema}].[${name}] order by ${keys.map((k) => `[${k}]`).join(', ')}, _tm_valid_from, _tm_is_deleted`,
    );
    return rows.map(textRow);
  }
  const c = new pg.Client({ connectionString: where });
  await c.connect();
  try {
    const r = await c.query(
      `select ${columns.map((col) => (raw(col) ? `"${col}"` : `"${col}"::text as "${col}"`)).join(', ')},
         to_char(_tm_valid_from, 'YYYY-MM-DD"T"HH24:MI:SS') vf, to_char(_tm_valid_to, 'YYYY-MM-DD"T"HH24:MI:SS') vt,
         _tm_is_current::text cur, _tm_is_deleted::text del, _tm_run_id run
       from "${schema}"."${name}" order by ${order}`,
    );
    return r.rows.map(textRow);
  } finally {
    await c.end();
  }
}

/**
 * The interval rules, checked on the warehouse itself (direct SQL, the same on every engine):
 * per key, no version with valid_to at or before its valid_from, no two versions whose
 * half-open intervals [valid_from, valid_to) overlap, and no repeated version key (named by its
 * key columns: the version key itself is binary under hash rule 4).
 */
export async function intervalViolations(kind: WarehouseKind, where: string, table: string, keys: string[]): Promise<string[]> {
  const [schema, name] = table.split('.') as [string, string];
  const q = (c: string) => (kind === 'mssql' ? `[${c}]` : `"${c}"`);
  const T = `${q(schema)}.${q(name)}`;
  const ts = kind === 'mssql' ? 'datetime2(6)' : 'TIMESTAMP';
  const text = (e: string) => (kind === 'mssql' ? `CAST(${e} AS nvarchar(100))` : `CAST(${e} AS VARCHAR)`);
  const key = (a: string) => keys.map((k) => text(`${a}.${q(k)}`)).join(kind === 'mssql' ? " + ',' + " : " || ',' || ");
  const end = (a: string) => `COALESCE(${a}._tm_valid_to, CAST('9999-12-31' AS ${ts}))`;
  const sql = `SELECT 'inverted ' + ${key('a')} AS v FROM ${T} a WHERE a._tm_valid_to IS NOT NULL AND a._tm_valid_to <= a._tm_valid_from
UNION ALL SELECT 'overlap ' + ${key('a')} AS v FROM ${T} a JOIN ${T} b ON ${keys.map((k) => `a.${q(k)} = b.${q(k)}`).join(' AND ')}
  AND a._tm_version_key < b._tm_version_key AND a._tm_valid_from < ${end('b')} AND b._tm_valid_from < ${end('a')}
UNION ALL SELECT 'repeated version key of ' + MIN(${key('a')}) AS v FROM ${T} a GROUP BY a._tm_version_key HAVING COUNT(*) > 1`;
  const portable = kind === 'mssql' ? sql : sql.replaceAll("' + ", "' || ");
  if (kind === 'mssql') return (await tsqlQuery(where, portable)).map((r) => String(r.v));
  if (kind === 'duckdb') return (await duckQuery<{ v: string }>(where, portable)).map((r) => r.v);
  const c = new pg.Client({ connectionString: where });
  await c.connect();
  try {
    return (await c.query<{ v: string }>(portable)).rows.map((r) => r.v);
  } finally {
    await c.end();
  }
}

function textRow(r: Record<string, unknown>): Record<string, string | null> {
  return Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v === null || v === undefined ? null : v instanceof Uint8Array ? Buffer.from(v).toString('hex') : String(v)]));
}

/** Fails with the table when the dimension is missing (run failed before the first merge). */
export async function dimensionExists(kind: WarehouseKind, where: string, table: string): Promise<boolean> {
  const [schema, name] = table.split('.') as [string, string];
  if (kind === 'duckdb') {
    const r = await duckQuery<{ n: bigint }>(where, `select count(*) n from information_schema.tables where table_schema = '${schema}' and table_name = '${name}'`);
    return Number(r[0]?.n ?? 0) > 0;
  }
  if (kind === 'mssql') return (await tsqlQuery(where, `select 1 as x where object_id(N'[${schema}].[${name}]', N'U') is not null`)).length > 0;
  const c = new pg.Client({ connectionString: where });
  await c.connect();
  try {
    return (await c.query(`select 1 from information_schema.tables where table_schema = $1 and table_name = $2`, [schema, name])).rows.length > 0;
  } finally {
    await c.end();
  }
}

export async function pgExec(url: string, sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

export interface ScenarioCase {
  sc: Scenario;
  expectTable: Array<Record<string, string | null>>;
  check?: (p: Played) => void;
  /** Indexes of runs expected not to succeed (their outcome is asserted by `check`). */
  failingRuns?: number[];
}

/**
 * One test per case: played on DuckDB and on PostgreSQL (and on the mssql warehouse where a
 * T-SQL engine runs), every other run must succeed with no failed check, each warehouse must
 * end with `expectTable`, and all played in one file with the same table and counts. `only`
 * plays a subset, so that one engine's cases can sit in a file of their own and run on another
 * vitest worker; each warehouse still ends with the same exact `expectTable`.
 */
export function describeScenarios(
  title: string,
  cases: readonly ScenarioCase[],
  engine?: { url: string } | { skip: string },
  only?: readonly WarehouseKind[],
  o: PlayOptions = {},
): void {
  // The mssql warehouse joins where a T-SQL engine runs (test/support/tsql-engine.ts).
  const tsql = engine && 'url' in engine ? engine.url : undefined;
  const kinds = (['duckdb', 'postgres', ...(tsql ? (['mssql'] as const) : [])] as WarehouseKind[]).filter((k) => !only || only.includes(k));
  // With nothing to play (only mssql asked, no engine), skipped: tsqlEngine() printed why.
  const pinned = o.duckdbCloseBy ? ` (DuckDB closing by ${o.duckdbCloseBy})` : '';
  describe.skipIf(kinds.length === 0)(`${title} on ${kinds.join(', ') || (only ?? []).join(', ')}${pinned}`, () => {
    let az: AzuriteHandle;
    let pgh: PostgresHandle | undefined;
    let ms: { url: string; connections: TsqlConnections; drop(): Promise<void> } | undefined;
    beforeAll(async () => {
      az = await withAzurite();
      if (kinds.includes('postgres')) pgh = await startPostgres();
      if (tsql && kinds.includes('mssql')) ms = await freshTsqlDatabase(tsql, 'tm_scd2');
    });
    afterAll(async () => {
      await ms?.drop();
      await pgh?.stop();
      await az?.stop();
    });
    for (const c of cases) {
      it(c.sc.name, async () => {
        const out = {} as Record<WarehouseKind, Played>;
        for (const kind of kinds) {
          out[kind] = await play(c.sc, kind, az.connectionString, kind === 'mssql' ? ms!.url : (pgh?.url ?? ''), ms?.connections, o);
          const p = out[kind];
          for (const [i, r] of p.runs.entries()) {
            if (c.failingRuns?.includes(i)) continue;
            expect({ kind, run: i + 1, status: r.status, error: r.error, v: r.validations.filter((v) => !v.passed) }).toEqual({ kind, run: i + 1, status: 'succeeded', error: undefined, v: [] });
          }
          expect(p.table, kind).toEqual(c.expectTable);
          expect({ kind, intervals: p.intervals }).toEqual({ kind, intervals: [] });
          c.check?.(p);
        }
        const first = out[kinds[0]!];
        for (const kind of kinds.slice(1)) {
          expect(out[kind].table, kind).toEqual(first.table);
          expect(out[kind].runs.map((r) => r.counts), kind).toEqual(first.runs.map((r) => r.counts));
        }
      });
    }
  });
}
