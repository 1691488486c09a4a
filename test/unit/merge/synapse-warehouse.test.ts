import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { TerminalError } from '../../../shared/errors.js';
import type { Statement } from '../../../shared/merge/dialect.js';
import type { MergePlan } from '../../../shared/merge/plan.js';
import { copySourceUrl, MssqlDriver, SynapseWarehouse, type TsqlDriver } from '../../../shared/merge/synapse/warehouse.js';
import { pipelineSchema } from '../../../shared/config/schema.js';
import { warehouseSchema } from '../../../shared/config/schema.js';
import { duckExec } from '../../support/project.js';
import { checksumStatement } from '../../../shared/validate/canonical-sql.js';
import { synapseRollbackStyle } from '../../../shared/rollback/styles.js';
import { plan, RecordingDriver } from './fixtures.js';

const duck = { memoryLimit: '128MB', threads: 1, tempDir: join(tmpdir(), 'tidemark-test-spill') };
const blob = { container: 'changes', name: 'accounts/20260101T000000Z-abcd/changes.parquet' };
let changesFile: string;

beforeAll(async () => {
  changesFile = join(mkdtempSync(join(tmpdir(), 'tidemark-syn-')), 'changes.parquet');
  await duckExec(
    ':memory:',
    `COPY (SELECT 1::INTEGER AS id, 'Ann' AS name, 'a@x' AS email, 1.50::DECIMAL(12,2) AS amount, TIMESTAMPTZ '2026-01-01 00:00:00+00' AS seen_at,
      md5('x') AS _tm_row_hash, CAST(NULL AS VARCHAR) AS _tm_t1_hash, TIMESTAMP '2026-01-01 00:00:00' AS _tm_valid_from, md5('y') AS _tm_version_key, 'insert' AS _tm_op)
     TO '${''}${'PLACEHOLDER'}' (FORMAT parquet)`.replace('PLACEHOLDER', changesFile.replace(/'/g, "''")),
  );
});

const mergePlan = (): Omit<MergePlan, 'stage'> => {
  const { stage: _stage, ...rest } = plan();
  return rest;
};

function warehouse(driver: TsqlDriver, credential: { kind: 'managedIdentity' } | { kind: 'sas'; token: string } = { kind: 'managedIdentity' }) {
  return new SynapseWarehouse(driver, { stagingUrl: 'https://acct.dfs.core.windows.net', credential, distribution: 'hash', duck });
}

const kind = (sql: string) =>
  sql.startsWith('IF COL_LENGTH')
    ? 'ledger-column'
    : sql.startsWith('UPDATE [dw].[_tm_ledger]')
      ? 'ledger-lock'
      : sql.startsWith('SELECT TOP 1 [run_id]')
        ? 'ledger-head'
        : sql.startsWith('SELECT COUNT_BIG(*) AS n FROM [dw].[_tm_ledger]')
          ? 'ledger-verify'
          : sql.startsWith('SELECT c.[name]')
    ? 'describe'
    : sql.startsWith('SELECT 1 AS present')
      ? 'ledger-check'
      : sql.startsWith('COPY INTO')
        ? 'copy'
        : sql.includes('CREATE SCHEMA')
          ? 'schema'
          : sql.includes('DROP TABLE')
            ? 'drop-stage'
            : sql.includes('CREATE TABLE [dw].[_tm_stage')
              ? 'create-stage'
              : sql.includes('CREATE TABLE [dw].[_tm_ledger]')
                ? 'create-ledger'
                : sql.includes('CREATE TABLE [dw].[dim_account]')
                  ? 'create-target'
                  : sql.startsWith('INSERT INTO [dw].[_tm_ledger]')
                    ? 'ledger-insert'
                    : sql.startsWith('UPDATE')
                      ? 'update'
                      : sql.startsWith('INSERT')
                        ? 'insert'
                        : sql;

describe('Synapse warehouse through a recording fake driver', () => {
  it('runs DDL and COPY INTO outside the transaction, and the ledger check, steps and ledger insert inside it', async () => {
    const d = new RecordingDriver();
    expect(await warehouse(d).merge(mergePlan(), changesFile, blob)).toBe('merged');
    expect(d.log.map(kind)).toEqual([
      'describe',
      'schema',
      'create-target',
      'create-ledger',
      'ledger-column',
      'ledger-column',
      'ledger-column',
      'ledger-column',
      'ledger-check',
      'drop-stage',
      'create-stage',
      'copy',
      'BEGIN TRANSACTION',
      'ledger-lock',
      'ledger-check',
      'ledger-head',
      'update',
      'update',
      'insert',
      'ledger-insert',
      'ledger-verify',
      'COMMIT',
      'drop-stage',
    ]);
    const copy = d.log.find((s) => s.startsWith('COPY INTO'))!;
    expect(copy).toBe(
      `COPY INTO [dw].[_tm_stage_accounts] FROM 'https://acct.dfs.core.windows.net/changes/accounts/20260101T000000Z-abcd/changes.parquet' WITH (FILE_TYPE = 'PARQUET', CREDENTIAL = (IDENTITY = 'Managed Identity'), AUTO_CREATE_TABLE = 'OFF')`,
    );
    // The stage has the Parquet file's columns, in its order, hashed like the target.
    expect(d.log.find((s) => s.includes('CREATE TABLE [dw].[_tm_stage'))).toBe(
      'CREATE TABLE [dw].[_tm_stage_accounts] ([id] int NULL, [name] nvarchar(4000) NULL, [email] nvarchar(4000) NULL, [amount] decimal(12,2) NULL, [seen_at] datetime2(6) NULL, [_tm_row_hash] nvarchar(4000) NULL, [_tm_t1_hash] nvarchar(4000) NULL, [_tm_valid_from] datetime2(6) NULL, [_tm_version_key] nvarchar(4000) NULL, [_tm_op] nvarchar(4000) NULL) WITH (DISTRIBUTION = HASH([id]), HEAP)',
    );
  });

  it('refuses a list column before writing anything: COPY INTO reads no Parquet list (the fix: JSON text in transform.sql)', async () => {
    const listFile = join(mkdtempSync(join(tmpdir(), 'tidemark-syn-')), 'changes.parquet');
    await duckExec(':memory:', `COPY (SELECT 1::INTEGER AS id, ['a']::VARCHAR[] AS tags, 'insert' AS _tm_op) TO '${listFile.replace(/'/g, "''")}' (FORMAT parquet)`);
    const d = new RecordingDriver();
    await expect(warehouse(d).merge(mergePlan(), listFile, blob)).rejects.toThrow(
      'list column(s) tags cannot be loaded into Synapse by COPY INTO; land them as JSON text in transform.sql (CAST(to_json(tags) AS VARCHAR) AS tags)',
    );
    expect(d.log).toEqual([]);
  });

  it('refuses a changes file written for a warehouse that computes the version key, before writing anything', async () => {
    const d = new RecordingDriver();
    const p = { ...mergePlan(), versionKeyFrom: { keys: [{ name: 'id', type: 'INTEGER' }], rule: 4 as const } };
    const refused = warehouse(d).merge(p, changesFile, blob);
    await expect(refused).rejects.toThrow(
      `the changes of run ${p.runId} of ${p.pipeline} hold no _tm_version_key (written for a DuckDB or PostgreSQL target); nothing was applied. Cancel the run and start a new one: its transform writes the file this warehouse reads`,
    );
    await expect(refused).rejects.toBeInstanceOf(TerminalError);
    expect(d.log).toEqual([]);
  });

  it('is a no-op when the ledger already has the run (checked before staging)', async () => {
    const d = new RecordingDriver((st) => (st.sql.startsWith('SELECT 1 AS present') ? [{ present: 1 }] : []));
    expect(await warehouse(d).merge(mergePlan(), changesFile, blob)).toBe('already-merged');
    expect(d.log.map(kind)).toEqual(['describe', 'schema', 'create-target', 'create-ledger', 'ledger-column', 'ledger-column', 'ledger-column', 'ledger-column', 'ledger-check']);
  });

  it('is a no-op when a duplicate committed between the first check and the transaction', async () => {
    let checks = 0;
    const d = new RecordingDriver((st) => (st.sql.startsWith('SELECT 1 AS present') && ++checks === 2 ? [{ present: 1 }] : []));
    expect(await warehouse(d).merge(mergePlan(), changesFile, blob)).toBe('already-merged');
    expect(d.log.map(kind).slice(-6)).toEqual(['copy', 'BEGIN TRANSACTION', 'ledger-lock', 'ledger-check', 'ROLLBACK', 'drop-stage']);
  });

  it('applies nothing when the pipeline\'s latest committed run is not the base (the lock comes first)', async () => {
    const d = new RecordingDriver(() => [], undefined, [{ run_id: '20260101T000000Z-ffff' }]);
    expect(await warehouse(d).merge(mergePlan(), changesFile, blob)).toBe('base-moved');
    expect(d.log.map(kind).slice(-7)).toEqual(['copy', 'BEGIN TRANSACTION', 'ledger-lock', 'ledger-check', 'ledger-head', 'ROLLBACK', 'drop-stage']);
    expect(d.log.find((s) => s.startsWith('UPDATE [dw].[_tm_ledger]'))).toBe('UPDATE [dw].[_tm_ledger] SET [pipeline] = [pipeline] WHERE [pipeline] = @p1');
  });

  it('rolls back a commit when, after its ledger insert, the base has two rows (a concurrent first load under READ UNCOMMITTED)', async () => {
    const d = new RecordingDriver((st) => (st.sql.startsWith('SELECT COUNT_BIG(*) AS n FROM [dw].[_tm_ledger]') ? [{ n: 2 }] : []));
    expect(await warehouse(d).merge(mergePlan(), changesFile, blob)).toBe('base-moved');
    expect(d.log.map(kind).slice(-4)).toEqual(['ledger-insert', 'ledger-verify', 'ROLLBACK', 'drop-stage']);
    expect(d.log).not.toContain('COMMIT');
  });

  it('rolls back when a step fails, leaves no ledger row, and still drops the stage', async () => {
    const d = new RecordingDriver(() => [], /^INSERT INTO \[dw\]\.\[dim_account\]/);
    await expect(warehouse(d).merge(mergePlan(), changesFile, blob)).rejects.toThrow(/Arithmetic overflow/);
    expect(d.log.map(kind).slice(-7)).toEqual(['ledger-check', 'ledger-head', 'update', 'update', 'insert', 'ROLLBACK', 'drop-stage']);
    expect(d.log.some((s) => s.startsWith('INSERT INTO [dw].[_tm_ledger]'))).toBe(false);
  });

  it('adds new columns outside the transaction when the target exists', async () => {
    const existing = [
      { name: 'id', type: 'int' },
      { name: 'name', type: 'nvarchar(4000)' },
      { name: 'amount', type: 'decimal(12,2)' },
      { name: 'seen_at', type: 'datetime2(6)' },
      ...['_tm_valid_from', '_tm_valid_to', '_tm_is_current', '_tm_is_deleted', '_tm_row_hash', '_tm_run_id', '_tm_version_key'].map((n) => ({ name: n, type: 'x' })),
    ];
    const d = new RecordingDriver((st) => (st.sql.startsWith('SELECT c.[name]') ? existing : []));
    await warehouse(d).merge(mergePlan(), changesFile, blob);
    const begin = d.log.indexOf('BEGIN TRANSACTION');
    const alter = d.log.findIndex((s) => s.startsWith('ALTER TABLE'));
    // nvarchar(4000): a Synapse columnstore table holds no nvarchar(max) (TsqlFeatures.lobInTarget).
    expect(d.log[alter]).toBe('ALTER TABLE [dw].[dim_account] ADD [email] nvarchar(4000) NULL');
    expect(alter).toBeLessThan(begin);
    expect(d.log.filter((s) => /CREATE TABLE \[dw\]\.\[dim_account\]/.test(s))).toEqual([]);
  });

  it('reads with SAS through the .blob endpoint, the token as a COPY INTO literal', async () => {
    const d = new RecordingDriver();
    await warehouse(d, { kind: 'sas', token: "sv=2024&sig=a'b" }).merge(mergePlan(), changesFile, blob);
    expect(d.log.find((s) => s.startsWith('COPY INTO'))).toContain(
      `FROM 'https://acct.blob.core.windows.net/changes/accounts/20260101T000000Z-abcd/changes.parquet' WITH (FILE_TYPE = 'PARQUET', CREDENTIAL = (IDENTITY = 'Shared Access Signature', SECRET = 'sv=2024&sig=a''b'), AUTO_CREATE_TABLE = 'OFF')`,
    );
  });
});

describe('COPY INTO source URL', () => {
  it('refuses a managed identity on the .blob endpoint, naming the fix', () => {
    expect(() => copySourceUrl('https://acct.blob.core.windows.net', { kind: 'managedIdentity' }, blob)).toThrow(
      /managed identity reads ADLS Gen2 through the \.dfs endpoint.*https:\/\/<account>\.dfs\.core\.windows\.net/,
    );
  });
  it('refuses plain http and non-URLs', () => {
    expect(() => copySourceUrl('http://acct.dfs.core.windows.net', { kind: 'managedIdentity' }, blob)).toThrow(/must be https/);
    expect(() => copySourceUrl('acct', { kind: 'managedIdentity' }, blob)).toThrow(/not a URL/);
  });
  it('encodes blob path segments', () => {
    expect(copySourceUrl('https://a.dfs.core.windows.net', { kind: 'managedIdentity' }, { container: 'changes', name: "p/r x/it's.parquet" })).toBe(
      "https://a.dfs.core.windows.net/changes/p/r%20x/it's.parquet",
    );
  });
});

describe('Synapse warehouse from config', () => {
  const p = pipelineSchema.parse({ name: 'accounts', source: { connection: 'SRC', table: 'crm.accounts' }, key: ['id'], target: { warehouse: 'DW', table: 'dw.dim_account' } });
  it('raises the mssql requestTimeout from its 15 s default to the configured value', () => {
    const wh = warehouseSchema.parse({ kind: 'synapse', setting: 'DW_CONN', stagingUrlSetting: 'DW_STAGING' });
    const w = SynapseWarehouse.fromConfig(wh, p, { DW_CONN: 'Server=tcp:x.sql.azuresynapse.net;Database=dw', DW_STAGING: 'https://a.dfs.core.windows.net' }, duck);
    const driver = (w as unknown as { driver: MssqlDriver }).driver;
    expect(driver).toBeInstanceOf(MssqlDriver);
    expect(driver.requestTimeoutMs).toBe(30 * 60_000);
    expect(driver.config()).toMatchObject({ server: 'x.sql.azuresynapse.net', database: 'dw', requestTimeout: 1_800_000, pool: { max: 1 } });
  });
  it('names the missing setting', () => {
    const wh = warehouseSchema.parse({ kind: 'synapse', setting: 'DW_CONN' });
    expect(() => SynapseWarehouse.fromConfig(wh, p, { DW_CONN: 'x' }, duck)).toThrow(/warehouses\.DW\.stagingUrlSetting/);
    const sas = warehouseSchema.parse({ kind: 'synapse', setting: 'DW_CONN', stagingUrlSetting: 'S', credential: 'sas' });
    expect(() => SynapseWarehouse.fromConfig(sas, p, { DW_CONN: 'x', S: 'https://a.dfs.core.windows.net' }, duck)).toThrow(/sasSetting/);
  });
});

describe('Synapse checksum through the fake driver', () => {
  const described = [
    { name: 'id', type: 'int' },
    { name: 'email', type: 'nvarchar(4000)' },
  ];
  const answer = (st: Statement) =>
    st.sql.startsWith('SELECT c.[name]') ? described : st.sql.startsWith('SELECT CAST(COUNT_BIG') ? [{ n: '1', s: '1833556316665636709' }] : [];

  it('over the whole table, with the T-SQL rendering of validate/canonical-sql.ts and the sum as text', async () => {
    const d = new RecordingDriver(answer);
    // A 19-digit sum: through a JavaScript number it would come back as 1833556316665636600.
    expect(await warehouse(d).checksum({ schema: 'dw', name: 'dim_account' }, ['id', 'email'], ['id'], 'table')).toBe('1:1833556316665636709');
    expect(d.log.at(-1)).toBe(
      checksumStatement('synapse', synapseRollbackStyle, [{ name: 'id', type: { kind: 'integer', bits: 32 } }, { name: 'email', type: { kind: 'text' } }], '(SELECT * FROM [dw].[dim_account] WHERE [_tm_is_current] = 1 AND [_tm_is_deleted] = 0) AS _tm_t').sql,
    );
    expect(d.log.at(-1)).toMatch(/^SELECT CAST\(COUNT_BIG\(\*\) AS VARCHAR\(20\)\) AS n, CAST\(COALESCE\(SUM\(CAST\(.* AS DECIMAL\(38, 0\)\)\), 0\) AS VARCHAR\(40\)\) AS s FROM \(SELECT HASHBYTES\('MD5', /);
  });

  it('refuses a sum that reached JavaScript as a number past 2^53', async () => {
    const d = new RecordingDriver((st) => (st.sql.startsWith('SELECT c.[name]') ? described : st.sql.startsWith('SELECT CAST(COUNT_BIG') ? [{ n: 1, s: 1833556316665636600 }] : []));
    await expect(warehouse(d).checksum({ schema: 'dw', name: 'dim_account' }, ['id'], ['id'], 'table')).rejects.toThrow(/past 2\^53/);
  });

  it("over this run's changed keys, bound as parameters into a temp table", async () => {
    const d = new RecordingDriver(answer);
    const params: unknown[][] = [];
    const orig = d.query.bind(d);
    d.query = async (st: Statement) => {
      params.push([...st.parameters]);
      return orig(st);
    };
    await warehouse(d).checksum({ schema: 'dw', name: 'dim_account' }, ['id', 'email'], ['id'], { changesFile });
    expect(d.log.slice(1, 4)).toEqual([
      "IF OBJECT_ID(N'tempdb..#_tm_checksum_keys') IS NOT NULL DROP TABLE #_tm_checksum_keys",
      'CREATE TABLE #_tm_checksum_keys ([id] int NULL) WITH (DISTRIBUTION = ROUND_ROBIN, HEAP)',
      'INSERT INTO #_tm_checksum_keys ([id]) SELECT @p1',
    ]);
    expect(params[3]).toEqual(['1']);
    expect(d.log.at(-1)).toContain(
      'FROM (SELECT t.* FROM (SELECT * FROM [dw].[dim_account] WHERE [_tm_is_current] = 1 AND [_tm_is_deleted] = 0) AS t WHERE EXISTS (SELECT 1 FROM #_tm_checksum_keys AS k WHERE k.[id] = t.[id])) AS _tm_t',
    );
  });

  it('refuses a float checksum column by name', async () => {
    const d = new RecordingDriver((st) => (st.sql.startsWith('SELECT c.[name]') ? [{ name: 'score', type: 'float' }] : []));
    await expect(warehouse(d).checksum({ schema: 'dw', name: 'dim_account' }, ['score'], ['id'], 'table')).rejects.toThrow(/column score \(float\) cannot be checksummed or sampled on a T-SQL warehouse/);
  });
});
