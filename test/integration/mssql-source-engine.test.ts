import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AzuriteHandle } from '../../shared/local/azurite.js';
import { openLocalStack, runOnce, type LocalStack } from '../../shared/local/stack.js';
import { withAzurite } from '../support/azurite.js';
import { duckExec, duckQuery, makeProject } from '../support/project.js';
import { readDimension } from '../support/scd-harness.js';
import { freshTsqlDatabase, tsqlEngine } from '../support/tsql-engine.js';
import { tsqlQuery } from '../support/tsql-sql.js';

/**
 * The mssql source on a real T-SQL engine (test/support/tsql-engine.ts), `full` and
 * `timestamp`, through the whole chain (Azurite, transform, merge into DuckDB, validation),
 * against the same data in a DuckDB source: both dimensions must be identical, with the types
 * right (read from sp_describe_first_result_set's precision / scale / max_length columns, which
 * the engine fills correctly while printing type names without arguments).
 *
 * Not run here, and kept by their exact-SQL tests (test/unit/extract/mssql) and the real-SQL
 * Server test (mssql-source.test.ts, TIDEMARK_TEST_MSSQL_URL): CDC and Change Tracking (the
 * engine has neither), rowversion (the engine stores none without an escape hatch and has no
 * MIN_ACTIVE_ROWVERSION), and binary columns (their hex text needs CONVERT style 2, which the
 * engine ignores).
 */
const engine = await tsqlEngine();

const PIPE = (name: string, conn: string, table: string, mode: 'full' | 'timestamp') => `name: ${name}
source:
  connection: ${conn}
  table: ${table}
  changeDetection: ${mode === 'full' ? '{ mode: full }' : '{ mode: timestamp, column: ModifiedAt }'}
key: [Id]
target:
  warehouse: WH
  table: dw.${name}
  deletes: ${mode === 'full' ? 'retire' : 'ignore'}
validation:
  rowCount: ${mode === 'full' ? 'exact' : 'none'}
  checksumColumns: [Id, Name, Amount, Big, ModifiedAt]
  sample: 10
`;
const COLUMNS = ['Id', 'Name', 'Amount', 'Big', 'Active', 'Born', 'ModifiedAt', 'Uid'];

describe.skipIf(!('url' in engine))('mssql source on the T-SQL engine loads the same dimensions as a DuckDB source', () => {
  let az: AzuriteHandle;
  let db: { url: string; drop(): Promise<void> };
  let stack: LocalStack;
  let dir: string;
  const clock = { t: Date.parse('2026-02-01T00:00:00Z') };
  const both = async (tsql: string, duck: string) => {
    await tsqlQuery(db.url, tsql);
    await duckExec(join(dir, 'source.duckdb'), duck);
  };

  beforeAll(async () => {
    az = await withAzurite();
    db = await freshTsqlDatabase((engine as { url: string }).url, 'tm_src');
    dir = makeProject({
      tidemark: `storage: AzureWebJobsStorage
connections:
  MS: { kind: mssql, setting: TIDEMARK_TEST_SRC }
  DK: { kind: duckdb, path: source.duckdb }
warehouses:
  WH: { kind: duckdb, path: warehouse.duckdb }
duckdb: { memoryLimit: 256MB, threads: 1 }
`,
      pipelines: {
        ms_full: PIPE('ms_full', 'MS', 'crm.Accounts', 'full'),
        dk_full: PIPE('dk_full', 'DK', 'crm.Accounts', 'full'),
        ms_ts: PIPE('ms_ts', 'MS', 'crm.Accounts', 'timestamp'),
        dk_ts: PIPE('dk_ts', 'DK', 'crm.Accounts', 'timestamp'),
        ms_rec: PIPE('ms_rec', 'MS', 'crm.Accounts', 'timestamp').replace('deletes: ignore', 'deletes: retire'),
      },
    });
    await tsqlQuery(db.url, 'CREATE SCHEMA crm');
    await duckExec(join(dir, 'source.duckdb'), 'CREATE SCHEMA crm');
    const long = 'y'.repeat(5000);
    await both(
      `CREATE TABLE crm.Accounts (Id int PRIMARY KEY, Name nvarchar(max), Amount decimal(12,2), Big decimal(38,0), Active bit, Born date, ModifiedAt datetime2(6), Uid uniqueidentifier)`,
      `CREATE TABLE crm.Accounts (Id INTEGER, Name VARCHAR, Amount DECIMAL(12,2), Big DECIMAL(38,0), Active BOOLEAN, Born DATE, ModifiedAt TIMESTAMP, Uid UUID)`,
    );
    const rows = `(1, 'Ann', 1.50, 12345678901234567890123456789012345678, 1, '1990-01-02', '2026-01-01 10:00:00.123456', '6f9619ff-8b86-d011-b42d-00c04fc964ff'),
      (2, 'Bob', -0.25, 0, 0, NULL, '2026-01-01 11:00:00', NULL),
      (3, '${long}', NULL, NULL, NULL, '2000-02-29', '2026-01-01 12:00:00', NULL)`;
    await both(`INSERT INTO crm.Accounts VALUES ${rows}`, `INSERT INTO crm.Accounts VALUES ${rows}`);
    stack = await openLocalStack({ projectDir: dir, connectionString: az.connectionString, env: { ...process.env, TIDEMARK_TEST_SRC: db.url }, now: () => new Date(clock.t) });
  });
  afterAll(async () => {
    await stack?.close();
    await db?.drop();
    await az?.stop();
  });

  const dim = async (name: string, runIds: string[]) =>
    (await readDimension('duckdb', join(dir, 'warehouse.duckdb'), `dw.${name}`, COLUMNS, ['Id'])).map((r): Record<string, string | null> => ({ ...r, run: r.run ? `r${runIds.indexOf(r.run) + 1}` : null }));

  it('full and timestamp: first load, an update, an insert and (full) a delete give identical dimensions and column types', async () => {
    const runs: Record<string, string[]> = { ms_full: [], dk_full: [], ms_ts: [], dk_ts: [] };
    const runAll = async () => {
      for (const p of Object.keys(runs)) {
        const r = await runOnce(stack, { pipeline: p }, 60_000);
        expect({ p, status: r.status, error: r.error, failed: r.validations.filter((v) => !v.passed) }).toEqual({ p, status: 'succeeded', error: undefined, failed: [] });
        runs[p]!.push(r.runId);
      }
    };
    await runAll();
    clock.t += 3_600_000;
    await both(
      `UPDATE crm.Accounts SET Name = N'Bobby', Amount = 99.99, ModifiedAt = '2026-01-02 09:00:00.5' WHERE Id = 2; INSERT INTO crm.Accounts VALUES (4, N'Dee', 0.01, 1, 1, NULL, '2026-01-02 10:00:00', NULL)`,
      `UPDATE crm.Accounts SET Name = 'Bobby', Amount = 99.99, ModifiedAt = '2026-01-02 09:00:00.5' WHERE Id = 2; INSERT INTO crm.Accounts VALUES (4, 'Dee', 0.01, 1, true, NULL, '2026-01-02 10:00:00', NULL)`,
    );
    await runAll();
    clock.t += 3_600_000;
    await both('DELETE FROM crm.Accounts WHERE Id = 1', 'DELETE FROM crm.Accounts WHERE Id = 1');
    await runAll();

    const msFull = await dim('ms_full', runs.ms_full!);
    expect(msFull).toEqual(await dim('dk_full', runs.dk_full!));
    expect(await dim('ms_ts', runs.ms_ts!)).toEqual(await dim('dk_ts', runs.dk_ts!));
    expect(msFull.filter((r) => r.cur === 'true').map((r) => r.Id)).toEqual(['2', '3', '4']);
    expect(msFull.find((r) => r.Id === '3')!.Name).toHaveLength(5000);
    expect(msFull.find((r) => r.Id === '1')!.Big).toBe('12345678901234567890123456789012345678');

    const types = async (t: string) =>
      (await duckQuery<{ column_name: string; data_type: string }>(join(dir, 'warehouse.duckdb'), `SELECT column_name, data_type FROM information_schema.columns WHERE table_name = '${t}' AND column_name NOT LIKE '_tm_%' ORDER BY ordinal_position`)).map(
        (r) => `${r.column_name} ${r.data_type}`,
      );
    expect(await types('ms_full')).toEqual(await types('dk_full'));
    expect(await types('ms_full')).toEqual(['Id INTEGER', 'Name VARCHAR', 'Amount DECIMAL(12,2)', 'Big DECIMAL(38,0)', 'Active BOOLEAN', 'Born DATE', 'ModifiedAt TIMESTAMP', 'Uid UUID']);
  });

  it('reconcile --deletes reads the key column alone and retires the keys the source lost', async () => {
    const first = await runOnce(stack, { pipeline: 'ms_rec' }, 60_000);
    expect(first.status, first.error).toBe('succeeded');
    await both('DELETE FROM crm.Accounts WHERE Id = 3', 'DELETE FROM crm.Accounts WHERE Id = 3');
    clock.t += 3_600_000;
    const rec = await runOnce(stack, { pipeline: 'ms_rec', mode: 'reconcile', reconcile: { deletes: true, allowEmpty: false } }, 60_000);
    expect(rec.status, rec.error).toBe('succeeded');
    expect(rec.counts).toMatchObject({ extracted: 2, deleted: 1 });
    const rows = await readDimension('duckdb', join(dir, 'warehouse.duckdb'), 'dw.ms_rec', ['Id'], ['Id']);
    expect(rows.filter((r) => r.cur === 'true').map((r) => r.Id)).toEqual(['2', '4']);
  });
});
