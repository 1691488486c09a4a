import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mssql from 'mssql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pipelineSchema, type PipelineInput } from '../../shared/config/schema.js';
import { connectMssql, mssqlDriverConfig, type MssqlConnectionConfig } from '../../shared/extract/mssql/driver.js';
import { MssqlSource } from '../../shared/extract/mssql/source.js';
import type { WindowInput } from '../../shared/extract/window.js';
import { duckQuery } from '../support/project.js';

/*
 * Against a real SQL Server, when one is given (none can run on the CI machine):
 *   TIDEMARK_TEST_MSSQL_URL="Server=localhost,1433;Database=tidemark_test;User Id=sa;Password=…;TrustServerCertificate=true"
 *   TIDEMARK_TEST_MSSQL_CDC=1   also runs the CDC test (needs sysadmin and SQL Server Agent running)
 * The database must exist; the tests create and drop schema tm_test. Without the variable
 * the tests are reported as skipped.
 */
const url = process.env.TIDEMARK_TEST_MSSQL_URL;
const cdcToo = process.env.TIDEMARK_TEST_MSSQL_CDC === '1';
const conn: MssqlConnectionConfig = { kind: 'mssql', setting: 'TIDEMARK_TEST_MSSQL_URL', authentication: 'sql', requestTimeout: '2m', pool: { max: 2 } };
const duck = { memoryLimit: '256MB', threads: 1, tempDir: join(tmpdir(), 'tidemark-test-spill') };

function pipeline(table: string, cd: NonNullable<PipelineInput['source']['changeDetection']>) {
  return pipelineSchema.parse({ name: 'mssql_it', source: { connection: 'CRM', table, changeDetection: cd, partRows: 1000 }, key: ['Id'], target: { warehouse: 'W', table: 'dw.t' } });
}

async function extract(table: string, cd: NonNullable<PipelineInput['source']['changeDetection']>, w: Partial<WindowInput>) {
  const src = new MssqlSource(() => connectMssql(conn, url!, process.env), pipeline(table, cd), duck);
  const r = await src.extract({
    window: { mode: cd.mode, lagMs: 0, saved: null, runMode: 'incremental', ...(cd.column ? { column: cd.column } : {}), ...w },
    outDir: join(mkdtempSync(join(tmpdir(), 'tidemark-mssql-it-')), 'parts'),
    partRows: 1000,
    partBytes: '16MB',
    countSource: true,
  });
  const rows = r.files.length
    ? await duckQuery<Record<string, unknown>>(':memory:', `SELECT * FROM read_parquet([${r.files.map((f) => `'${f}'`).join(', ')}]) ORDER BY Id`)
    : [];
  return { ...r, rows };
}

describe.skipIf(!url)('mssql source against a real SQL Server (TIDEMARK_TEST_MSSQL_URL)', () => {
  let pool: mssql.ConnectionPool;
  const exec = (sql: string) => pool.request().batch(sql);

  beforeAll(async () => {
    pool = await new mssql.ConnectionPool(mssqlDriverConfig(conn, url!, process.env)).connect();
    await exec(`IF SCHEMA_ID('tm_test') IS NOT NULL BEGIN
      DECLARE @s nvarchar(max) = N''; SELECT @s += N'DROP TABLE tm_test.' + QUOTENAME(name) + N';' FROM sys.tables WHERE schema_id = SCHEMA_ID('tm_test'); EXEC (@s);
      DROP SCHEMA tm_test; END`);
    await exec('CREATE SCHEMA tm_test');
  });
  afterAll(async () => {
    await pool?.close();
  });

  it('maps every SQL Server type without loss', async () => {
    await exec(`CREATE TABLE tm_test.Types (Id int PRIMARY KEY, D2 datetime2(7), DTO datetimeoffset(7), D date, T time(7), Dec decimal(38,10),
      M money, B bit, U uniqueidentifier, VB varbinary(max), NV nvarchar(max), X xml, RV rowversion)`);
    await exec(`INSERT INTO tm_test.Types (Id, D2, DTO, D, T, Dec, M, B, U, VB, NV, X) VALUES
      (1, '2026-03-01T10:20:30.1234567', '2026-03-01T10:20:30.1234567+02:00', '0001-01-01', '23:59:59.9999999', 1234567890123456789012345678.0123456789,
       922337203685477.5807, 1, '6F9619FF-8B86-D011-B42D-00C04FC964FF', 0x00FF7F80, N'Zürich 東京', '<a b="1"/>'),
      (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`);
    const r = await extract('tm_test.Types', { mode: 'full' }, { runMode: 'full' });
    expect(r.schema.map((c) => `${c.name} ${c.type}`)).toEqual([
      'Id INTEGER', 'D2 TIMESTAMP_NS', 'DTO TIMESTAMP_NS', 'D DATE', 'T TIME_NS', 'Dec DECIMAL(38,10)', 'M DECIMAL(19,4)', 'B BOOLEAN', 'U UUID', 'VB BLOB', 'NV VARCHAR', 'X VARCHAR', 'RV BLOB',
    ]);
    const text = await duckQuery<Record<string, unknown>>(':memory:', `SELECT CAST(COLUMNS(* EXCLUDE (Id, RV)) AS VARCHAR), octet_length(RV) AS rv_len FROM read_parquet('${r.files[0]}') ORDER BY Id`);
    expect(text[0]).toEqual({
      D2: '2026-03-01 10:20:30.1234567', DTO: '2026-03-01 08:20:30.1234567', D: '0001-01-01', T: '23:59:59.9999999', Dec: '1234567890123456789012345678.0123456789',
      M: '922337203685477.5807', B: 'true', U: '6f9619ff-8b86-d011-b42d-00c04fc964ff', VB: '\\x00\\xFF\\x7F\\x80', NV: 'Zürich 東京', X: '<a b="1"/>', rv_len: 8n,
    });
    expect(text[1]).toMatchObject({ D2: null, Dec: null, VB: null });
  });

  it('timestamp and rowversion: incremental windows and checkpoints', async () => {
    await exec(`CREATE TABLE tm_test.Acc (Id int PRIMARY KEY, Name nvarchar(50), ModifiedAt datetime2(7), RV rowversion)`);
    await exec(`INSERT INTO tm_test.Acc (Id, Name, ModifiedAt) VALUES (1, 'a', '2026-01-01T00:00:00'), (2, 'b', '2026-01-01T00:00:01')`);
    const t1 = await extract('tm_test.Acc', { mode: 'timestamp', column: 'ModifiedAt' }, { runMode: 'full' });
    expect(t1.rows).toHaveLength(2);
    expect(t1.window.next).toBe('2026-01-01T00:00:01.0000000Z');
    const r1 = await extract('tm_test.Acc', { mode: 'rowversion', column: 'RV' }, { runMode: 'full' });
    expect(r1.window.next).toMatch(/^0x[0-9A-F]{16}$/);
    await exec(`UPDATE tm_test.Acc SET Name = 'b2', ModifiedAt = '2026-01-02T00:00:00' WHERE Id = 2`);
    const t2 = await extract('tm_test.Acc', { mode: 'timestamp', column: 'ModifiedAt' }, { saved: t1.window.next });
    expect(t2.rows.map((r) => r.Name)).toEqual(['b2']);
    expect(t2.sourceRowCount).toBe(2);
    const r2 = await extract('tm_test.Acc', { mode: 'rowversion', column: 'RV' }, { saved: r1.window.next });
    expect(r2.rows.map((r) => r.Name)).toEqual(['b2']);
    const r3 = await extract('tm_test.Acc', { mode: 'rowversion', column: 'RV' }, { saved: r2.window.next });
    expect(r3.rows).toEqual([]);
  });

  it('change tracking: inserts, updates and deletes with their operation', async () => {
    await exec(`IF NOT EXISTS (SELECT 1 FROM sys.change_tracking_databases WHERE database_id = DB_ID())
      ALTER DATABASE CURRENT SET CHANGE_TRACKING = ON (CHANGE_RETENTION = 2 DAYS, AUTO_CLEANUP = ON)`);
    await exec(`CREATE TABLE tm_test.Ct (Id int PRIMARY KEY, Name nvarchar(50)); ALTER TABLE tm_test.Ct ENABLE CHANGE_TRACKING`);
    await exec(`INSERT INTO tm_test.Ct VALUES (1, 'a'), (2, 'b'), (3, 'c')`);
    const first = await extract('tm_test.Ct', { mode: 'changeTracking' }, { runMode: 'full' });
    expect(first.rows).toHaveLength(3);
    await exec(`UPDATE tm_test.Ct SET Name = 'b2' WHERE Id = 2; DELETE FROM tm_test.Ct WHERE Id = 3; INSERT INTO tm_test.Ct VALUES (4, 'd')`);
    const next = await extract('tm_test.Ct', { mode: 'changeTracking' }, { saved: first.window.next });
    expect(next.rows.map((r) => [r.Id, r._tm_source_op])).toEqual([
      [2, 'update'],
      [3, 'delete'],
      [4, 'insert'],
    ]);
  });

  it.skipIf(!cdcToo)('cdc: net changes between LSNs (TIDEMARK_TEST_MSSQL_CDC=1)', async () => {
    await exec(`IF NOT EXISTS (SELECT 1 FROM sys.databases WHERE database_id = DB_ID() AND is_cdc_enabled = 1) EXEC sys.sp_cdc_enable_db`);
    await exec(`CREATE TABLE tm_test.Cdc (Id int PRIMARY KEY, Name nvarchar(50));
      EXEC sys.sp_cdc_enable_table @source_schema = N'tm_test', @source_name = N'Cdc', @role_name = NULL, @supports_net_changes = 1`);
    await exec(`INSERT INTO tm_test.Cdc VALUES (1, 'a'), (2, 'b')`);
    const first = await extract('tm_test.Cdc', { mode: 'cdc' }, { runMode: 'full' });
    expect(first.rows).toHaveLength(2);
    await exec(`UPDATE tm_test.Cdc SET Name = 'b2' WHERE Id = 2; DELETE FROM tm_test.Cdc WHERE Id = 1; INSERT INTO tm_test.Cdc VALUES (3, 'c')`);
    // The capture job reads the log asynchronously.
    let next = await extract('tm_test.Cdc', { mode: 'cdc' }, { saved: first.window.next });
    for (let i = 0; i < 30 && next.rows.length < 3; i++) {
      await new Promise((r) => setTimeout(r, 1000));
      next = await extract('tm_test.Cdc', { mode: 'cdc' }, { saved: first.window.next });
    }
    expect(next.rows.map((r) => [r.Id, r._tm_source_op])).toEqual([
      [1, 'delete'],
      [2, 'update'],
      [3, 'insert'],
    ]);
  });
});
