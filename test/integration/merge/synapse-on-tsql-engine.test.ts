import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Statement } from '../../../shared/merge/dialect.js';
import { DuckDbWarehouse } from '../../../shared/merge/duckdb/warehouse.js';
import type { MergePlan, PlanColumn } from '../../../shared/merge/plan.js';
import { tsqlCreateTarget, tsqlInsertRows } from '../../../shared/merge/synapse/dialect.js';
import { MssqlDriver, MssqlWarehouse, SynapseWarehouse, type TsqlDriver } from '../../../shared/merge/synapse/warehouse.js';
import type { Warehouse } from '../../../shared/merge/warehouse.js';
import { renderBackup, renderRestore, renderUndoRun } from '../../../shared/rollback/sql.js';
import { duckRollbackStyle, mssqlRollbackStyle, synapseRollbackStyle } from '../../../shared/rollback/styles.js';
import { DuckSession } from '../../../shared/duckdb/session.js';
import { duckExec, duckQuery } from '../../support/project.js';
import { freshTsqlDatabase, tsqlEngine } from '../../support/tsql-engine.js';

/**
 * The synapse dialect's statements executed on a real T-SQL engine (test/support/tsql-engine.ts)
 * through the real `mssql` driver, inside the same transactions the Synapse warehouse opens.
 * No Synapse runs here: the Synapse-only statements are replaced by their closest portable form
 * at the driver, each by a named rule below, and every other statement runs verbatim. The same
 * merges on the mssql warehouse (same engine) and on DuckDB must give the same tables.
 */
const engine = await tsqlEngine();

/** Synapse-only constructs (and the one SQL Server construct the engine lacks) → portable form. */
const RULES: Array<{ name: string; test: RegExp; rewrite: (sql: string) => string }> = [
  {
    name: 'CTAS: CREATE TABLE … WITH (DISTRIBUTION …) AS SELECT → SELECT * INTO',
    test: /^CREATE TABLE (\S+) WITH \([^)]*\) AS SELECT \* FROM (\S+)$/,
    rewrite: (s) => s.replace(/^CREATE TABLE (\S+) WITH \([^)]*\) AS SELECT \* FROM (\S+)$/, 'SELECT * INTO $1 FROM $2'),
  },
  {
    name: 'CREATE TABLE … WITH (DISTRIBUTION = …, CLUSTERED COLUMNSTORE INDEX | HEAP) → no table options; PRIMARY KEY NONCLUSTERED … NOT ENFORCED → PRIMARY KEY',
    test: /CREATE TABLE .* WITH \((DISTRIBUTION|CLUSTERED|HEAP)[^)]*(\([^)]*\))?[^)]*\)$/,
    rewrite: (s) => s.replace(/ WITH \((DISTRIBUTION|CLUSTERED|HEAP)[^()]*(\([^)]*\))?[^()]*\)$/, '').replace(/PRIMARY KEY NONCLUSTERED (\([^)]*\)) NOT ENFORCED/, 'PRIMARY KEY $1'),
  },
  {
    name: 'ALTER COLUMN … NULL → ALTER COLUMN (engine gap, not Synapse-only: README of the engine)',
    test: /^ALTER TABLE .* ALTER COLUMN .* NULL$/,
    rewrite: (s) => s.replace(/ NULL$/, ''),
  },
];

/** The engine driver with the rules applied; COPY INTO becomes bound inserts from the local file. */
class PortableDriver implements TsqlDriver {
  readonly applied = new Map<string, number>();
  verbatim = 0;
  failOn?: RegExp;
  constructor(
    private readonly inner: MssqlDriver,
    private readonly localFileOf: (url: string) => string,
  ) {}
  private count(rule: string) {
    this.applied.set(rule, (this.applied.get(rule) ?? 0) + 1);
  }
  async query(st: Statement): Promise<Record<string, unknown>[]> {
    if (this.failOn?.test(st.sql)) throw new Error('fault injected before this statement');
    const copy = /^COPY INTO (\S+) FROM '([^']+)' WITH \(FILE_TYPE = 'PARQUET'/.exec(st.sql);
    if (copy) {
      this.count('COPY INTO → bound multi-row INSERT … VALUES from the same Parquet file (the mssql staging)');
      const s = await DuckSession.open(':memory:', { memoryLimit: '128MB', threads: 1, tempDir: join(tmpdir(), 'tm-syn-engine') });
      try {
        const file = this.localFileOf(copy[2]!);
        const cols = (await s.rows<{ column_name: string }>(`DESCRIBE SELECT * FROM read_parquet('${file}')`)).map((r) => r.column_name);
        const rows = await s.rows<Record<string, unknown>>(`SELECT ${cols.map((c) => `CAST("${c}" AS VARCHAR) AS "${c}"`).join(', ')} FROM read_parquet('${file}')`);
        if (rows.length) await this.inner.query(tsqlInsertRows('mssql', copy[1]!, cols, rows.map((r) => cols.map((c) => r[c]))));
      } finally {
        await s.close();
      }
      return [];
    }
    for (const r of RULES) {
      if (r.test.test(st.sql)) {
        this.count(r.name);
        return this.inner.query({ ...st, sql: r.rewrite(st.sql) });
      }
    }
    this.verbatim += 1;
    return this.inner.query(st);
  }
  begin = () => this.inner.begin();
  commit = () => this.inner.commit();
  rollback = () => this.inner.rollback();
  close = () => this.inner.close();
}

const COLUMNS: PlanColumn[] = [
  { name: 'id', type: { kind: 'integer', bits: 32 } },
  { name: 'name', type: { kind: 'text' } },
  { name: 'amount', type: { kind: 'decimal', precision: 38, scale: 4 } },
  { name: 'seen_at', type: { kind: 'timestamp' } },
];
// The longest text a Synapse column holds: nvarchar(4000), 4 000 UTF-16 code units (a Synapse
// columnstore table takes no nvarchar(max): TsqlFeatures.lobInTarget). Longer is refused (below).
const LONG = 'x'.repeat(3_999) + 'é';
type Op = [number, string | null, string | null, string | null, 'insert' | 'update' | 'delete'];
const RUNS: Array<{ runId: string; boundary: string; rows: Op[] }> = [
  {
    runId: '20260101T000000Z-0001',
    boundary: '2026-01-01T00:00:00.000Z',
    rows: [
      [1, 'Ann', '12345678901234567890123456789012.3456', '2026-01-01 00:00:00.123456', 'insert'],
      [2, 'Björk', '-0.5000', null, 'insert'],
      [3, LONG, '0.0000', '2025-12-31 23:59:59', 'insert'],
    ],
  },
  {
    runId: '20260101T010000Z-0002',
    boundary: '2026-01-01T01:00:00.000Z',
    rows: [
      [1, 'Ann B', '1.0000', '2026-01-01 00:30:00', 'update'],
      [3, null, null, null, 'delete'],
      [4, 'Dee', null, '2026-01-01 00:45:00', 'insert'],
    ],
  },
  {
    runId: '20260101T020000Z-0003',
    boundary: '2026-01-01T02:00:00.000Z',
    rows: [
      [3, LONG, '7.0000', '2026-01-01 01:30:00', 'insert'],
      [2, null, null, null, 'delete'],
    ],
  },
];

let dir: string;
const EXTRA = { runId: '20260101T030000Z-0004', boundary: '2026-01-01T03:00:00.000Z', rows: [[4, 'Dee 2', '2.0000', '2026-01-01 02:30:00', 'update'], [5, 'Eve', null, null, 'insert']] as Op[] };
async function changesFile(i: number, r = RUNS[i]!): Promise<string> {
  const vf = r.boundary.replace('T', ' ').replace('Z', '');
  const lit = (v: string | null) => (v === null ? 'NULL' : `'${v.replace(/'/g, "''")}'`);
  const values = r.rows
    .map(([id, name, amount, seen, op]) => `(${id}, ${lit(name)}, CAST(${lit(amount)} AS DECIMAL(38,4)), CAST(${lit(seen)} AS TIMESTAMP), md5('${id}${name}${amount}'), CAST(NULL AS VARCHAR), TIMESTAMP '${vf}', md5('${id}@${vf}'), '${op}')`)
    .join(', ');
  const file = join(dir, `changes-${i}.parquet`);
  await duckExec(
    ':memory:',
    `COPY (SELECT * FROM (VALUES ${values}) t(id, name, amount, seen_at, _tm_row_hash, _tm_t1_hash, _tm_valid_from, _tm_version_key, _tm_op)) TO '${file}' (FORMAT parquet, COMPRESSION snappy)`,
  );
  return file;
}

function plan(i: number, schema: string, r = RUNS[i]!): Omit<MergePlan, 'stage'> {
  const n = (op: string) => r.rows.filter((x) => x[4] === op).length;
  return {
    pipeline: 'p',
    runId: r.runId,
    boundary: r.boundary,
    target: { schema, name: 'dim' },
    keys: ['id'],
    columns: COLUMNS,
    type1Columns: [],
    deletes: 'mark',
    scd: 2,
    counts: { inserted: n('insert'), updated: n('update'), deleted: n('delete'), type1: 0 },
    // Each run is computed against the one before it (the commit check of the ledger).
    commit: { baseRunId: i === 0 ? null : RUNS[i - 1]!.runId, runSeq: i + 1, readTo: null, snapshot: `p/${r.runId}.json` },
  };
}

const duck = { memoryLimit: '256MB', threads: 1, tempDir: join(tmpdir(), 'tm-syn-engine') };
const canon = (rows: Array<Record<string, unknown>>) =>
  rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v === null || v === undefined ? null : String(v)])));

/** The whole dimension as text, the same on both engines. */
async function tsqlTable(w: Warehouse, schema: string) {
  const ts = (c: string) => `STUFF(CONVERT(varchar(19), ${c}, 120), 11, 1, 'T') + '.' + RIGHT('000000' + CAST(DATEPART(MICROSECOND, ${c}) AS varchar(6)), 6)`;
  return canon(
    await w.sql!.query({
      sql: `SELECT id, name, CAST(amount AS varchar(60)) AS amount, ${ts('seen_at')} AS seen_at, ${ts('_tm_valid_from')} AS vf, ${ts('_tm_valid_to')} AS vt, CASE WHEN _tm_is_current = 1 THEN 'true' ELSE 'false' END AS cur, CASE WHEN _tm_is_deleted = 1 THEN 'true' ELSE 'false' END AS del, _tm_run_id AS run, _tm_version_key AS vk FROM [${schema}].[dim] ORDER BY id, _tm_valid_from, _tm_is_deleted`,
      parameters: [],
    }),
  );
}
async function duckTable(file: string) {
  return canon(
    await duckQuery(
      file,
      `SELECT id, name, CAST(amount AS VARCHAR) AS amount, strftime(seen_at, '%Y-%m-%dT%H:%M:%S.%f') AS seen_at, strftime(_tm_valid_from, '%Y-%m-%dT%H:%M:%S.%f') AS vf, strftime(_tm_valid_to, '%Y-%m-%dT%H:%M:%S.%f') AS vt, CAST(_tm_is_current AS VARCHAR) AS cur, CAST(_tm_is_deleted AS VARCHAR) AS del, _tm_run_id AS run, _tm_version_key AS vk FROM dw.dim ORDER BY id, _tm_valid_from, _tm_is_deleted`,
    ),
  );
}

describe.skipIf(!('url' in engine))('the synapse dialect on the T-SQL engine, beside the mssql warehouse and DuckDB', () => {
  let db: { url: string; drop(): Promise<void> };
  let syn: SynapseWarehouse;
  let portable: PortableDriver;
  let ms: MssqlWarehouse;
  let dk: DuckDbWarehouse;
  const files: string[] = [];
  const after: Array<Awaited<ReturnType<typeof duckTable>>> = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tm-syn-engine-'));
    db = await freshTsqlDatabase((engine as { url: string }).url, 'tm_syn');
    for (let i = 0; i < RUNS.length; i++) files.push(await changesFile(i));
    portable = new PortableDriver(new MssqlDriver(db.url, 60_000), (url) => files[Number(/changes-(\d)\.parquet$/.exec(url)![1])]!);
    syn = new SynapseWarehouse(portable, { stagingUrl: 'https://acct.dfs.core.windows.net', credential: { kind: 'managedIdentity' }, distribution: 'hash', duck });
    ms = new MssqlWarehouse(new MssqlDriver(db.url, 60_000), duck);
    dk = new DuckDbWarehouse(join(dir, 'wh.duckdb'), duck);
  });
  afterAll(async () => {
    await syn?.close();
    await ms?.close();
    await dk?.close();
    await db?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('merges three runs (insert, update, mark delete, re-insert, a 4 000-character text, a 38-digit decimal) to the same tables', async () => {
    for (let i = 0; i < RUNS.length; i++) {
      const blob = { container: 'changes', name: `p/${RUNS[i]!.runId}/changes-${i}.parquet` };
      expect(await syn.merge(plan(i, 'syn'), files[i]!, blob)).toBe('merged');
      expect(await ms.merge(plan(i, 'ms'), files[i]!)).toBe('merged');
      expect(await dk.merge(plan(i, 'dw'), files[i]!)).toBe('merged');
      const d = await duckTable(join(dir, 'wh.duckdb'));
      after.push(d);
      expect(await tsqlTable(syn, 'syn')).toEqual(d);
      expect(await tsqlTable(ms, 'ms')).toEqual(d);
    }
    const last = after.at(-1)!;
    expect(last.filter((r) => r.id === '3' && r.cur === 'true')[0]!.name).toBe(LONG);
    expect(last.find((r) => r.id === '1')!.amount).toBe('12345678901234567890123456789012.3456');
    // Which Synapse-only statements were replaced, and that the rest ran as they are.
    expect([...portable.applied.keys()].sort()).toEqual([
      'COPY INTO → bound multi-row INSERT … VALUES from the same Parquet file (the mssql staging)',
      'CREATE TABLE … WITH (DISTRIBUTION = …, CLUSTERED COLUMNSTORE INDEX | HEAP) → no table options; PRIMARY KEY NONCLUSTERED … NOT ENFORCED → PRIMARY KEY',
    ]);
    expect(portable.applied.get('COPY INTO → bound multi-row INSERT … VALUES from the same Parquet file (the mssql staging)')).toBe(3);
    expect(portable.verbatim).toBeGreaterThan(30);
  });

  it('a redelivered merge is a no-op on both T-SQL warehouses', async () => {
    const blob = { container: 'changes', name: `p/${RUNS[2]!.runId}/changes-2.parquet` };
    expect(await syn.merge(plan(2, 'syn'), files[2]!, blob)).toBe('already-merged');
    expect(await ms.merge(plan(2, 'ms'), files[2]!)).toBe('already-merged');
    expect(await tsqlTable(syn, 'syn')).toEqual(after.at(-1));
  });

  it('a statement failing inside the merge transaction rolls all of it back on the engine (no ledger row, no step applied)', async () => {
    const file = await changesFile(3, EXTRA);
    files.push(file);
    // The fault hits the last statement (the ledger row), after every SCD step has run.
    portable.failOn = /^INSERT INTO \[syn\]\.\[_tm_ledger\]/;
    try {
      await expect(syn.merge(plan(3, 'syn', EXTRA), file, { container: 'changes', name: 'p/x/changes-3.parquet' })).rejects.toThrow(/fault injected/);
    } finally {
      portable.failOn = undefined;
    }
    expect(await tsqlTable(syn, 'syn')).toEqual(after.at(-1));
    const ledger = await syn.sql!.query<{ run_id: string }>({ sql: 'SELECT run_id FROM [syn].[_tm_ledger] ORDER BY run_id', parameters: [] });
    expect(ledger.map((r) => r.run_id)).toEqual(RUNS.map((r) => r.runId));
    // The stage was dropped outside the transaction, as after a success.
    expect(await syn.sql!.query({ sql: "SELECT 1 AS x WHERE OBJECT_ID(N'[syn].[_tm_stage_p]', N'U') IS NOT NULL", parameters: [] })).toEqual([]);
  });

  it('checksums (text with é and 4 000 characters, a 38-digit decimal, timestamps) equal DuckDB’s, the sum as text', async () => {
    const cols = ['id', 'name', 'amount', 'seen_at'];
    const expected = await dk.checksum({ schema: 'dw', name: 'dim' }, cols, ['id'], 'table');
    expect(await syn.checksum({ schema: 'syn', name: 'dim' }, cols, ['id'], 'table')).toBe(expected);
    expect(await ms.checksum({ schema: 'ms', name: 'dim' }, cols, ['id'], 'table')).toBe(expected);
    const scoped = await dk.checksum({ schema: 'dw', name: 'dim' }, cols, ['id'], { changesFile: files[1]! });
    expect(await syn.checksum({ schema: 'syn', name: 'dim' }, cols, ['id'], { changesFile: files[1]! })).toBe(scoped);
    expect(await ms.checksum({ schema: 'ms', name: 'dim' }, cols, ['id'], { changesFile: files[1]! })).toBe(scoped);
    expect(expected.split(':')[1]!.length).toBeGreaterThan(17);
  });

  it('reads as of an instant like DuckDB', async () => {
    for (const at of ['2026-01-01T00:30:00Z', '2026-01-01T01:00:00Z', '2026-01-01T02:30:00Z']) {
      const want = canon(await dk.asOf({ schema: 'dw', name: 'dim' }, COLUMNS.slice(0, 2), at)).sort((a, b) => Number(a.id) - Number(b.id));
      const got = canon(await syn.asOf({ schema: 'syn', name: 'dim' }, COLUMNS.slice(0, 2), at)).sort((a, b) => Number(a.id) - Number(b.id));
      expect(got).toEqual(want);
    }
  });

  it("reads one key's history like DuckDB: every version, the one valid at the instant marked, the 38-digit decimal as text", async () => {
    const cols: PlanColumn[] = [...COLUMNS.slice(0, 3), { name: '_tm_is_deleted', type: { kind: 'boolean' } }, { name: '_tm_run_id', type: { kind: 'text' } }];
    const history = (w: Warehouse, schema: string, id: string, at: string) => w.sql!.query(w.dialect.keyHistory({ schema, name: 'dim' }, cols, [{ name: 'id', value: id }], at));
    for (const [id, versions] of [['1', 2], ['3', 2]] as const) {
      for (const at of ['2026-01-01T00:30:00Z', '2026-01-01T02:30:00Z']) {
        const want = canon(await history(dk, 'dw', id, at));
        expect(canon(await history(syn, 'syn', id, at))).toEqual(want);
        expect(want.length).toBeGreaterThanOrEqual(versions);
        expect(want.filter((r) => r._tm_at === '1').length).toBeLessThanOrEqual(1);
      }
    }
    const ann = canon(await history(syn, 'syn', '1', '2026-01-01T00:30:00Z'));
    expect(ann.map((r) => [r.name, r.amount, r._tm_at])).toEqual([
      ['Ann', '12345678901234567890123456789012.3456', '1'],
      ['Ann B', '1.0000', '0'],
    ]);
    expect(await history(syn, 'syn', "1' OR 1=1 --", '2026-01-01T00:30:00Z')).toEqual([]);
  });

  it('undoes the newest run, backs up and restores, with the rollback SQL in one transaction', async () => {
    const input = (schema: string) => ({ target: { schema, name: 'dim' }, keys: ['id'], pipeline: 'p', runId: RUNS[2]!.runId, boundary: '2026-01-01 02:00:00.000' });
    await syn.sql!.transaction(renderUndoRun(synapseRollbackStyle, input('syn')));
    await dk.sql!.transaction(renderUndoRun(duckRollbackStyle, input('dw')));
    expect(await tsqlTable(syn, 'syn')).toEqual(after[1]);
    expect(await duckTable(join(dir, 'wh.duckdb'))).toEqual(after[1]);

    const bk = { schema: 'syn', name: 'dim__tm_bk_1' };
    await syn.sql!.execute(renderBackup(synapseRollbackStyle, { schema: 'syn', name: 'dim' }, bk));
    expect(portable.applied.get('CTAS: CREATE TABLE … WITH (DISTRIBUTION …) AS SELECT → SELECT * INTO')).toBe(1);
    await syn.sql!.transaction([{ sql: 'DELETE FROM [syn].[dim] WHERE [id] = 1', parameters: [] }]);
    const cols = ['id', 'name', 'amount', 'seen_at', '_tm_valid_from', '_tm_valid_to', '_tm_is_current', '_tm_is_deleted', '_tm_row_hash', '_tm_run_id', '_tm_version_key'];
    await syn.sql!.transaction(renderRestore(synapseRollbackStyle, { target: { schema: 'syn', name: 'dim' }, backup: bk, columns: cols, pipeline: 'p', dropRunIds: [] }));
    expect(await tsqlTable(syn, 'syn')).toEqual(after[1]);
    // The mssql warehouse's own backup form (SELECT … INTO) runs verbatim.
    await ms.sql!.execute(renderBackup(mssqlRollbackStyle, { schema: 'ms', name: 'dim' }, { schema: 'ms', name: 'dim__tm_bk_1' }));
    expect((await ms.sql!.query<{ n: number }>({ sql: 'SELECT COUNT(*) AS n FROM [ms].[dim__tm_bk_1]', parameters: [] }))[0]!.n).toBe(after[2]!.length);
  });
  it('mssql on the engine: a 4 001-character key is refused before anything is created, a 9 001-character non-key value lands whole, a legacy nvarchar(max) key keeps working', async () => {
    const textPlan = (schema: string, runId: string): Omit<MergePlan, 'stage'> => ({
      ...plan(0, schema),
      pipeline: 'codes',
      runId,
      keys: ['code'],
      columns: [
        { name: 'code', type: { kind: 'text' } },
        { name: 'note', type: { kind: 'text' } },
      ],
      counts: { inserted: 1, updated: 0, deleted: 0, type1: 0 },
      commit: { baseRunId: null, runSeq: 1, readTo: null, snapshot: `codes/${runId}.json` },
    });
    const file = async (name: string, code: number, note: number) => {
      const f = join(dir, `${name}.parquet`);
      await duckExec(
        ':memory:',
        `COPY (SELECT repeat('k', ${code}) AS code, repeat('n', ${note - 1}) || 'é' AS note, md5('h') AS _tm_row_hash, CAST(NULL AS VARCHAR) AS _tm_t1_hash, TIMESTAMP '2026-01-01 00:00:00' AS _tm_valid_from, md5('${name}') AS _tm_version_key, 'insert' AS _tm_op) TO '${f}' (FORMAT parquet, COMPRESSION snappy)`,
      );
      return f;
    };
    const lengths = (schema: string) =>
      ms.sql!.query<{ code: number; note: number }>({ sql: `SELECT LEN([code]) AS code, LEN([note]) AS note FROM [${schema}].[dim]`, parameters: [] });
    const tooLong = await file('k4001', 4001, 10);
    await expect(ms.merge(textPlan('ml', '20260101T000000Z-0001'), tooLong)).rejects.toThrow(
      /^pipeline codes: key column code has a value of 4001 characters \(UTF-16 code units\), longer than its mssql type nvarchar\(4000\) holds; .* Nothing was merged and no value was cut: key the pipeline on a shorter column, or on a hash of this one computed in transform\.sql \(e\.g\. md5\(code\) AS code_key\), then run the pipeline again\.$/,
    );
    expect(await ms.sql!.query({ sql: "SELECT 1 AS x WHERE OBJECT_ID(N'[ml].[dim]', N'U') IS NOT NULL", parameters: [] })).toEqual([]);
    expect(await ms.merge(textPlan('ml', '20260101T000000Z-0002'), await file('k4000', 4000, 9001))).toBe('merged');
    expect(await lengths('ml')).toEqual([{ code: 4000, note: 9001 }]);
    // A target an older tidemark created with nvarchar(max) keys takes the longer key as before.
    await ms.sql!.execute([
      { sql: "IF SCHEMA_ID(N'mlold') IS NULL EXEC(N'CREATE SCHEMA [mlold]')", parameters: [] },
      { sql: tsqlCreateTarget('mssql', { ...textPlan('mlold', 'x'), stage: { name: 's' } }, 'round_robin').replace('[code] nvarchar(4000)', '[code] nvarchar(max)'), parameters: [] },
    ]);
    expect(await ms.merge(textPlan('mlold', '20260101T000000Z-0003'), tooLong)).toBe('merged');
    expect(await lengths('mlold')).toEqual([{ code: 4001, note: 10 }]);
    expect(await ms.describe({ schema: 'mlold', name: 'dim' })).toContainEqual({ name: 'code', type: 'nvarchar(max)' });
  });
});
