import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { MergePlan } from '../../../shared/merge/plan.js';
import { TSQL_FEATURES, oversizeChecks, tsqlColumnTypes, tsqlDialect, tsqlStageStatements, type TsqlProduct } from '../../../shared/merge/synapse/dialect.js';
import { MssqlWarehouse, SynapseWarehouse, oversizeQuery, type TsqlDriver } from '../../../shared/merge/synapse/warehouse.js';
import { duckExec, duckQuery } from '../../support/project.js';
import { plan as basePlan, RecordingDriver } from './fixtures.js';

/**
 * Which text and binary columns are bounded on each T-SQL product, as exact SQL: keys (the HASH
 * distribution column is the first) always, every column on Synapse (its columnstore target
 * holds no LOB column), and how targets created with the older types keep working.
 * FAKE DRIVER for the warehouse cases: no Synapse runs here; it records what would be sent.
 */
const plan = (over: Partial<MergePlan> = {}): MergePlan =>
  basePlan({
    keys: ['code'],
    columns: [
      { name: 'code', type: { kind: 'text' } },
      { name: 'note', type: { kind: 'text' } },
      { name: 'doc', type: { kind: 'binary' } },
    ],
    type1Columns: [],
    ...over,
  });
const SCD = ['_tm_valid_from', '_tm_valid_to', '_tm_is_current', '_tm_is_deleted', '_tm_row_hash', '_tm_run_id', '_tm_version_key'].map((n) => ({ name: n, type: 'x' }));
const products: TsqlProduct[] = ['synapse', 'mssql'];

describe('the capability flags behind the bounded types', () => {
  it('records per product whether LOB columns may sit in the target, the distribution and a primary key', () => {
    expect(products.map((p) => [p, TSQL_FEATURES[p].lobInTarget, TSQL_FEATURES[p].lobInDistribution, TSQL_FEATURES[p].lobInPrimaryKey])).toEqual([
      ['synapse', false, false, false],
      ['mssql', true, false, false],
    ]);
  });
});

describe('CREATE TABLE with a text key', () => {
  it('synapse: every text and binary column bounded, the HASH column included', () => {
    const create = tsqlDialect('synapse', 'hash').ensureTarget(plan(), []).find((s) => s.sql.includes('CREATE TABLE [dw].[dim_account]'))!;
    expect(create.sql).toBe(
      "IF OBJECT_ID(N'[dw].[dim_account]', N'U') IS NULL CREATE TABLE [dw].[dim_account] ([code] nvarchar(4000) NULL, [note] nvarchar(4000) NULL, [doc] varbinary(8000) NULL, [_tm_valid_from] datetime2(6) NULL, [_tm_valid_to] datetime2(6) NULL, [_tm_is_current] bit NULL, [_tm_is_deleted] bit NULL, [_tm_row_hash] varchar(64) NULL, [_tm_run_id] varchar(64) NULL, [_tm_version_key] varchar(64) NOT NULL, CONSTRAINT [pk_dim_account] PRIMARY KEY NONCLUSTERED ([_tm_version_key]) NOT ENFORCED) WITH (DISTRIBUTION = HASH([code]), CLUSTERED COLUMNSTORE INDEX)",
    );
  });

  it('mssql: the key bounded, max only for the other text and binary columns', () => {
    const create = tsqlDialect('mssql').ensureTarget(plan(), []).find((s) => s.sql.includes('CREATE TABLE [dw].[dim_account]'))!;
    expect(create.sql).toBe(
      "IF OBJECT_ID(N'[dw].[dim_account]', N'U') IS NULL CREATE TABLE [dw].[dim_account] ([code] nvarchar(4000) NULL, [note] nvarchar(max) NULL, [doc] varbinary(max) NULL, [_tm_valid_from] datetime2(6) NULL, [_tm_valid_to] datetime2(6) NULL, [_tm_is_current] bit NULL, [_tm_is_deleted] bit NULL, [_tm_row_hash] varchar(64) NULL, [_tm_run_id] varchar(64) NULL, [_tm_version_key] varchar(64) NOT NULL, CONSTRAINT [pk_dim_account] PRIMARY KEY ([_tm_version_key]))",
    );
  });

  it('the stage takes the target\'s types, so it holds what the target holds', () => {
    const cols = [...plan().columns, { name: '_tm_op', type: { kind: 'text' as const } }];
    const legacy = tsqlColumnTypes('mssql', plan(), [{ name: 'code', type: 'nvarchar(max)' }, ...SCD]);
    expect(tsqlStageStatements('mssql', { schema: 'dw', name: 's' }, cols, ['code'], 'round_robin', legacy)[1]!.sql).toBe(
      'CREATE TABLE [dw].[s] ([code] nvarchar(max) NULL, [note] nvarchar(max) NULL, [doc] varbinary(max) NULL, [_tm_op] nvarchar(max) NULL)',
    );
    expect(tsqlStageStatements('synapse', { schema: 'dw', name: 's' }, cols, ['code'], 'hash')[1]!.sql).toBe(
      'CREATE TABLE [dw].[s] ([code] nvarchar(4000) NULL, [note] nvarchar(4000) NULL, [doc] varbinary(8000) NULL, [_tm_op] nvarchar(4000) NULL) WITH (DISTRIBUTION = HASH([code]), HEAP)',
    );
  });
});

describe.each(products)('%s: targets created with the older types keep working', (product) => {
  const d = tsqlDialect(product, 'hash');
  const evolve = (existing: Array<{ name: string; type: string }>, over: Partial<MergePlan> = {}) =>
    d.ensureTarget(plan(over), [...existing, ...SCD]).filter((s) => s.sql.startsWith('ALTER TABLE [dw].[dim_account]')).map((s) => s.sql);

  it('a key created as nvarchar(max) is kept as it is, never narrowed', () => {
    const existing = [{ name: 'code', type: 'nvarchar(max)' }, { name: 'note', type: 'nvarchar(max)' }, { name: 'doc', type: 'varbinary(max)' }];
    expect(evolve(existing)).toEqual([]);
    expect(evolve(existing, { allowTypeWidening: true })).toEqual([]);
    expect(Object.fromEntries(tsqlColumnTypes(product, plan(), [...existing, ...SCD]))).toEqual({ code: 'nvarchar(max)', note: 'nvarchar(max)', doc: 'varbinary(max)' });
  });

  it('columns created as nvarchar(4000) / varbinary(8000) are kept; widened only where the role allows max and the pipeline allows widening', () => {
    const existing = [{ name: 'code', type: 'nvarchar(4000)' }, { name: 'note', type: 'nvarchar(4000)' }, { name: 'doc', type: 'varbinary(8000)' }];
    expect(evolve(existing)).toEqual([]);
    const nullable = product === 'mssql' ? '' : ' NULL';
    expect(evolve(existing, { allowTypeWidening: true })).toEqual(
      product === 'mssql' ? [`ALTER TABLE [dw].[dim_account] ALTER COLUMN [note] nvarchar(max)${nullable}`, `ALTER TABLE [dw].[dim_account] ALTER COLUMN [doc] varbinary(max)${nullable}`] : [],
    );
  });

  it('a text column that became a number still fails with both types named', () => {
    expect(() => evolve([{ name: 'code', type: 'int' }])).toThrow(/type change in dw\.dim_account\.code: target has INT, source now gives NVARCHAR\(4000\)/);
  });
});

/** The recording fake (fixtures.ts), answering the describe query with `existing`. */
const recording = (existing: Array<{ name: string; type: string }> = []) => new RecordingDriver((st) => (st.sql.startsWith('SELECT c.[name]') ? existing : []));

const duck = { memoryLimit: '128MB', threads: 1, tempDir: join(tmpdir(), 'tidemark-test-spill') };
const blob = { container: 'changes', name: 'accounts/r/changes.parquet' };
let dir: string;
async function changes(name: string, code: string, note: string, doc = "'\\x01'::BLOB"): Promise<string> {
  const file = join(dir, `${name}.parquet`);
  await duckExec(
    ':memory:',
    `COPY (SELECT ${code} AS code, ${note} AS note, ${doc} AS doc, md5('x') AS _tm_row_hash, CAST(NULL AS VARCHAR) AS _tm_t1_hash, TIMESTAMP '2026-01-01 00:00:00' AS _tm_valid_from, md5('y') AS _tm_version_key, 'insert' AS _tm_op) TO '${file}' (FORMAT parquet)`,
  );
  return file;
}
const mergePlan = (): Omit<MergePlan, 'stage'> => {
  const { stage: _s, ...rest } = plan();
  return rest;
};
const synapse = (d: TsqlDriver) => new SynapseWarehouse(d, { stagingUrl: 'https://acct.dfs.core.windows.net', credential: { kind: 'managedIdentity' }, distribution: 'hash', duck });

describe('a value longer than its bounded column is refused before the merge (golden Synapse SQL)', () => {
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'tidemark-bounded-'));
  });

  it('a 4001-character key: the error names pipeline, column, length and fix; only the describe query ran', async () => {
    const d = recording();
    const file = await changes('key4001', "repeat('k', 4001)", "'n'");
    const err = await synapse(d).merge(mergePlan(), file, blob).catch((e: Error) => e);
    expect((err as Error).message).toBe(
      'pipeline accounts: key column code has a value of 4001 characters (UTF-16 code units), longer than its synapse type nvarchar(4000) holds; key columns are bounded on synapse: a primary key or index column cannot be nvarchar(max) or varbinary(max), nor can the HASH distribution column. Nothing was merged and no value was cut: key the pipeline on a shorter column, or on a hash of this one computed in transform.sql (e.g. md5(code) AS code_key), then run the pipeline again.',
    );
    expect(d.log).toHaveLength(1);
    expect(d.log[0]).toMatch(/^SELECT c\.\[name\]/);
  });

  it('a 4000-unit key passes; a non-key value of 3999 characters and one emoji (4001 UTF-16 units) is refused with its key', async () => {
    const ok = recording();
    expect(await synapse(ok).merge(mergePlan(), await changes('key4000', "repeat('k', 4000)", "'n'"), blob)).toBe('merged');
    expect(ok.log.some((s) => s.startsWith('COPY INTO'))).toBe(true);
    const d = recording();
    const err = await synapse(d).merge(mergePlan(), await changes('note4001', "'K1'", "repeat('n', 3999) || '😀'"), blob).catch((e: Error) => e);
    expect((err as Error).message).toBe(
      "pipeline accounts: column note has a value of 4001 characters (UTF-16 code units) (key K1), longer than its synapse type nvarchar(4000) holds; synapse's clustered columnstore tables hold no nvarchar(max) or varbinary(max), so text is nvarchar(4000) and binary varbinary(8000). Nothing was merged and no value was cut: shorten or split note in transform.sql (e.g. left(note, 4000)), then run the pipeline again.",
    );
    expect(d.log).toHaveLength(1);
  });

  it('binary is measured in bytes: 8001 bytes refused on Synapse', async () => {
    const d = recording();
    const err = await synapse(d).merge(mergePlan(), await changes('doc8001', "'K2'", "'n'", "repeat('\\x01'::BLOB, 8001)"), blob).catch((e: Error) => e);
    expect((err as Error).message).toMatch(/^pipeline accounts: column doc has a value of 8001 bytes \(key K2\), longer than its synapse type varbinary\(8000\) holds;/);
  });

  it('mssql: a long non-key value is no concern, a legacy nvarchar(max) key takes a 4001-character key, a legacy nvarchar(4000) column names allowTypeWidening', async () => {
    const long = await changes('mssql', "repeat('k', 4001)", "repeat('n', 9001)");
    const fresh = recording();
    await expect(new MssqlWarehouse(fresh, duck).merge(mergePlan(), long)).rejects.toThrow(/key column code has a value of 4001 characters/);
    const legacy = recording([{ name: 'code', type: 'nvarchar(max)' }, { name: 'note', type: 'nvarchar(max)' }, { name: 'doc', type: 'varbinary(max)' }, ...SCD]);
    expect(await new MssqlWarehouse(legacy, duck).merge(mergePlan(), long)).toBe('merged');
    const old = recording([{ name: 'code', type: 'nvarchar(max)' }, { name: 'note', type: 'nvarchar(4000)' }, { name: 'doc', type: 'varbinary(max)' }, ...SCD]);
    await expect(new MssqlWarehouse(old, duck).merge(mergePlan(), long)).rejects.toThrow(
      /column note has a value of 9001 characters \(UTF-16 code units\) \(key k+…\), longer than its mssql type nvarchar\(4000\) holds; the target column was created as nvarchar\(4000\); set target\.allowTypeWidening: true/,
    );
  });
});

describe('a list column is measured as the JSON text it is staged as', () => {
  it("1000 one-letter elements: DuckDB's list text has 3000 characters, the staged JSON 4001, and 4001 is what is refused", async () => {
    const d = mkdtempSync(join(tmpdir(), 'tidemark-bounded-list-'));
    const file = join(d, 'list.parquet');
    await duckExec(':memory:', `COPY (SELECT 'K' AS code, list_transform(range(1000), x -> 'a') AS tags) TO '${file}' (FORMAT parquet)`);
    const plan = { keys: ['code'], columns: [{ name: 'code', type: { kind: 'text' as const } }, { name: 'tags', type: { kind: 'list' as const, element: { kind: 'text' as const } } }] };
    const checks = oversizeChecks(plan, new Map([['code', 'nvarchar(4000)'], ['tags', 'nvarchar(4000)']]));
    expect(checks.map((c) => [c.column, c.listType ?? null])).toEqual([['code', null], ['tags', 'VARCHAR[]']]);
    const [row] = await duckQuery<{ i: number; len: bigint; k: string }>(':memory:', oversizeQuery(checks, ['code'], file));
    expect({ i: Number(row!.i), len: Number(row!.len), k: row!.k }).toEqual({ i: 1, len: 4001, k: 'K' });
  });
});
