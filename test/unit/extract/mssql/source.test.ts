import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DuckDBInstance } from '@duckdb/node-api';
import { pipelineSchema, type PipelineInput } from '../../../../shared/config/schema.js';
import { MssqlSource } from '../../../../shared/extract/mssql/source.js';
import type { WindowInput } from '../../../../shared/extract/window.js';
import { TerminalError } from '../../../../shared/errors.js';
import { FakeMssql, type FakeAnswer } from '../../../support/fake-mssql.js';

// Runs the real MssqlSource against FakeMssql (see its header: no SQL Server here).

const describeRows = [
  { is_hidden: false, name: 'AccountId', system_type_name: 'int' },
  { is_hidden: false, name: 'Balance', system_type_name: 'money' },
  { is_hidden: false, name: 'ModifiedAt', system_type_name: 'datetime2(7)' },
];
const row = (i: number, op?: string) => ({
  AccountId: String(i),
  Balance: `${i}.1234`,
  ModifiedAt: `2026-01-01T00:00:${String(i % 60).padStart(2, '0')}.1234567`,
  ...(op ? { _tm_source_op: op } : {}),
});

function pipeline(cd: NonNullable<PipelineInput['source']['changeDetection']>) {
  return pipelineSchema.parse({
    name: 'accounts',
    source: { connection: 'CRM', table: 'dbo.Accounts', changeDetection: cd, partRows: 1000 },
    key: ['AccountId'],
    target: { warehouse: 'DW', table: 'dw.dim_account' },
  });
}

const duck = () => ({ memoryLimit: '256MB', threads: 1, tempDir: join(tmpdir(), 'tidemark-test-spill') });

/** Capture instances as cdc.change_tables ⋈ cdc.captured_columns answers, newest first. */
const instanceRows = (...instances: Array<{ name: string; start: string; created: string; columns: string[] }>) =>
  instances.flatMap((i) => i.columns.map((c) => ({ capture_instance: i.name, start_lsn: i.start, created: i.created, column_name: c })));
const oneInstance = instanceRows({ name: 'dbo_Accounts', start: '0x00000001000000000001', created: '2025-01-01T00:00:00', columns: ['AccountId', 'Balance', 'ModifiedAt'] });

function route(capture: Record<string, unknown>, data: FakeAnswer, count = '0', instances = oneInstance) {
  return (sql: string): FakeAnswer => {
    if (sql.startsWith('EXEC sys.sp_describe_first_result_set')) return { rows: describeRows };
    if (sql.includes('FROM cdc.change_tables')) return { rows: instances };
    if (sql.includes('AS upper') || sql.includes('AS max_lsn') || sql.includes('AS current_version')) return { rows: [capture] };
    if (sql.startsWith('SELECT COUNT_BIG')) return { rows: [{ n: count }] };
    return data;
  };
}

async function extract(fake: FakeMssql, cd: NonNullable<PipelineInput['source']['changeDetection']>, w: Partial<WindowInput>, partRows = 1000) {
  const src = new MssqlSource(async () => fake.connector(), pipeline(cd), duck());
  const out = mkdtempSync(join(tmpdir(), 'tidemark-mssql-'));
  return src.extract({
    window: { mode: cd.mode, lagMs: 0, saved: null, runMode: 'incremental', ...(cd.column ? { column: cd.column } : {}), ...w },
    outDir: join(out, 'parts'),
    partRows,
    partBytes: '128MB',
    countSource: true,
  });
}

async function readParts(files: string[]) {
  const inst = await DuckDBInstance.create(':memory:');
  const c = await inst.connect();
  try {
    const list = `[${files.map((f) => `'${f}'`).join(', ')}]`;
    const rows = (await c.runAndReadAll(`SELECT * REPLACE (CAST(Balance AS VARCHAR) AS Balance, CAST(ModifiedAt AS VARCHAR) AS ModifiedAt) FROM read_parquet(${list}) ORDER BY AccountId`)).getRowObjectsJS();
    const types = (await c.runAndReadAll(`DESCRIBE SELECT * FROM read_parquet(${list})`)).getRowObjectsJS().map((r) => `${r.column_name} ${r.column_type}`);
    return { rows, types };
  } finally {
    c.closeSync();
    inst.closeSync();
  }
}

describe('MssqlSource over the driver event shapes (fake SQL Server)', () => {
  it('streams with back-pressure into bounded parts: pauses per part, keeps rows delivered after pause, loses nothing', async () => {
    const rows = Array.from({ length: 2500 }, (_, i) => row(i + 1));
    const fake = new FakeMssql(route({}, { rows }), 5);
    const r = await extract(fake, { mode: 'full' }, {});
    expect(r.files).toHaveLength(3); // 1000 + 1000 + 500
    expect(fake.pauses).toBe(2);
    expect(fake.resumes).toBe(2);
    expect(fake.maxRowsWhilePaused).toBe(5);
    const { rows: back, types } = await readParts(r.files);
    expect(types).toEqual(['AccountId INTEGER', 'Balance DECIMAL(19,4)', 'ModifiedAt TIMESTAMP_NS']);
    expect(back).toHaveLength(2500);
    expect(back.map((x) => x.AccountId)).toEqual(rows.map((_, i) => i + 1));
    expect(back[41]).toEqual({ AccountId: 42, Balance: '42.1234', ModifiedAt: '2026-01-01 00:00:42.1234567' });
    expect(r.window).toEqual({ mode: 'full', from: null, to: null, next: null });
    expect(fake.sent.at(-1)!.sql).toBe(
      'SELECT CAST(_tm_src.[AccountId] AS varchar(11)) AS [AccountId], CONVERT(varchar(30), _tm_src.[Balance], 2) AS [Balance], CONVERT(varchar(27), _tm_src.[ModifiedAt], 126) AS [ModifiedAt] FROM [dbo].[Accounts] AS _tm_src',
    );
  });

  it('timestamp: first run reads to the captured max; the next reads (saved - lag, new max]', async () => {
    const cd = { mode: 'timestamp' as const, column: 'ModifiedAt', lag: '5m' };
    const fake = new FakeMssql(route({ upper: '2026-01-01T01:00:00.1234567' }, { rows: [row(1)] }, '7'));
    const first = await extract(fake, cd, { runMode: 'full' });
    expect(first.window).toMatchObject({ from: null, to: '2026-01-01T01:00:00.1234567Z', next: '2026-01-01T01:00:00.1234567Z' });
    const fake2 = new FakeMssql(route({ upper: '2026-01-01T02:00:00.0000000' }, { rows: [row(2)] }, '9'));
    const second = await extract(fake2, cd, { saved: first.window.next, lagMs: 300_000 });
    expect(second.window).toMatchObject({ from: '2026-01-01T00:55:00.123Z', to: '2026-01-01T02:00:00.0000000Z', next: '2026-01-01T02:00:00.0000000Z' });
    expect(second.sourceRowCount).toBe(9);
    const read = fake2.sent.find((s) => s.sql.includes('WHERE _tm_src.[ModifiedAt] >'))!;
    expect(read.parameters).toEqual({ from: '2026-01-01T00:55:00.123', to: '2026-01-01T02:00:00.0000000' });
  });

  it('rowversion: checkpoint is the captured MIN_ACTIVE_ROWVERSION; nothing new keeps it', async () => {
    const cd = { mode: 'rowversion' as const, column: 'RowVer' };
    const fake = new FakeMssql(route({ upper: '0x0000000000000800' }, { rows: [row(1)] }, '5'));
    const r = await extract(fake, cd, { saved: '0x00000000000007D1' });
    expect(r.window).toEqual({ mode: 'rowversion', from: '0x00000000000007D1', to: '0x0000000000000800', next: '0x0000000000000800' });
    expect(fake.sent.find((s) => s.sql.includes('[RowVer] >='))!.parameters).toEqual({ from: '0x00000000000007D1', to: '0x0000000000000800' });
    const idle = new FakeMssql(route({ upper: '0x0000000000000800' }, { rows: [] }));
    const r2 = await extract(idle, cd, { saved: '0x0000000000000800' });
    expect(r2.window).toEqual({ mode: 'rowversion', from: '0x0000000000000800', to: null, next: '0x0000000000000800' });
    expect(r2.files).toEqual([]);
    expect(idle.sent.some((s) => s.sql.includes('FROM [dbo].[Accounts] AS _tm_src'))).toBe(false);
  });

  it('cdc: net changes with the operation column; the checkpoint moves to the captured max LSN', async () => {
    const fake = new FakeMssql(
      route({ min_lsn: '0x00000010000000100001', max_lsn: '0x00000020000000200002' }, { rows: [row(1, 'insert'), row(2, 'update'), row(3, 'delete')] }),
    );
    const r = await extract(fake, { mode: 'cdc' }, { saved: '0x00000015000000000001' });
    expect(r.window).toEqual({ mode: 'cdc', from: '0x00000015000000000001', to: '0x00000020000000200002', next: '0x00000020000000200002' });
    expect(r.warnings).toBeUndefined();
    const read = fake.sent.find((s) => s.sql.includes('fn_cdc_get_net_changes_dbo_Accounts'))!;
    expect(read.parameters).toEqual({ from: '0x00000015000000000001', to: '0x00000020000000200002' });
    const { rows, types } = await readParts(r.files);
    expect(types).toContain('_tm_source_op VARCHAR');
    expect(rows.map((x) => x._tm_source_op)).toEqual(['insert', 'update', 'delete']);
  });

  // Point 4 of issue #14. CDC cannot run on the T-SQL engine: FakeMssql, with the exact SQL.
  it('cdc: the select list is the capture instance\'s columns; a table column it lacks is reported as drift with how to roll a second instance', async () => {
    const fake = new FakeMssql(
      route(
        { min_lsn: '0x00000010000000100001', max_lsn: '0x00000020000000200002' },
        { rows: [{ AccountId: '1', Balance: '1.5000', _tm_source_op: 'insert' }] },
        '0',
        instanceRows({ name: 'dbo_Accounts', start: '0x00000001000000000001', created: '2025-01-01T00:00:00', columns: ['AccountId', 'Balance'] }),
      ),
    );
    const r = await extract(fake, { mode: 'cdc' }, { saved: '0x00000015000000000001' });
    expect(fake.sent.find((s) => s.sql.includes('FROM cdc.change_tables'))).toEqual({
      sql:
        'SELECT ct.capture_instance AS capture_instance, CONVERT(varchar(22), ct.start_lsn, 1) AS start_lsn, CONVERT(varchar(27), ct.create_date, 126) AS created, cc.column_name AS column_name ' +
        'FROM cdc.change_tables AS ct JOIN cdc.captured_columns AS cc ON cc.object_id = ct.object_id ' +
        'WHERE ct.source_object_id = OBJECT_ID(@table) ORDER BY ct.create_date DESC, ct.capture_instance, cc.column_ordinal',
      parameters: { table: '[dbo].[Accounts]' },
      transaction: null,
    });
    expect(fake.sent.find((s) => s.sql.includes('fn_cdc_get_net_changes'))!.sql).toBe(
      `SELECT CAST(ct.[AccountId] AS varchar(11)) AS [AccountId], CONVERT(varchar(30), ct.[Balance], 2) AS [Balance], CASE ct.[__$operation] WHEN 1 THEN 'delete' WHEN 2 THEN 'insert' WHEN 4 THEN 'update' END AS [_tm_source_op] ` +
        `FROM cdc.[fn_cdc_get_net_changes_dbo_Accounts](sys.fn_cdc_increment_lsn(CONVERT(binary(10), @from, 1)), CONVERT(binary(10), @to, 1), N'all') AS ct`,
    );
    expect(r.warnings).toEqual([
      {
        event: 'CaptureDrift',
        message:
          "accounts: column(s) ModifiedAt of dbo.Accounts are not captured by capture instance dbo_Accounts (added after it was created), so they are not read. " +
          "To read them, roll a second capture instance: EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'Accounts', @role_name = NULL, @capture_instance = N'dbo_Accounts_v2'; " +
          'tidemark switches to it once the saved LSN passes its start (or set source.changeDetection.captureInstance: dbo_Accounts_v2); ' +
          "then EXEC sys.sp_cdc_disable_table @source_schema = N'dbo', @source_name = N'Accounts', @capture_instance = N'dbo_Accounts'",
      },
    ]);
    expect(r.schema.map((c) => `${c.name} ${c.type}`)).toEqual(['AccountId INTEGER', 'Balance DECIMAL(19,4)', '_tm_source_op VARCHAR']);
  });

  it('cdc: of two capture instances, the newest that covers the pipeline and reaches back to the saved LSN, and it says so', async () => {
    const two = instanceRows(
      { name: 'dbo_Accounts_v2', start: '0x00000018000000000001', created: '2026-01-02T00:00:00', columns: ['AccountId', 'Balance', 'ModifiedAt'] },
      { name: 'dbo_Accounts', start: '0x00000001000000000001', created: '2025-01-01T00:00:00', columns: ['AccountId', 'Balance'] },
    );
    const lsns = { min_lsn: '0x00000001000000000001', max_lsn: '0x00000020000000200002' };
    const read = async (saved: string) => {
      const fake = new FakeMssql(route(lsns, { rows: [] }, '0', two));
      const r = await extract(fake, { mode: 'cdc' }, { saved });
      return { r, fn: fake.sent.find((s) => s.sql.includes('fn_cdc_get_net_changes'))!.sql, min: fake.sent.find((s) => s.sql.includes('AS max_lsn'))!.parameters };
    };
    // The new instance starts after the saved LSN: reading it would skip changes, so the old one.
    const before = await read('0x00000015000000000001');
    expect(before.fn).toContain('cdc.[fn_cdc_get_net_changes_dbo_Accounts](');
    expect(before.fn).not.toContain('[ModifiedAt]');
    expect(before.min).toEqual({ capture: 'dbo_Accounts' });
    expect(before.r.warnings?.map((w) => w.event)).toEqual(['CaptureInstance', 'CaptureDrift']);
    expect(before.r.warnings?.[0]?.message).toBe(
      'accounts: dbo.Accounts has capture instances dbo_Accounts_v2, dbo_Accounts; reading dbo_Accounts, the newest that covers the pipeline whose changes reach back to the saved LSN 0x00000015000000000001',
    );
    // Past its start: the new one, with every column, and no drift.
    const after = await read('0x00000019000000000001');
    expect(after.fn).toContain('cdc.[fn_cdc_get_net_changes_dbo_Accounts_v2](');
    expect(after.fn).toContain('AS [ModifiedAt]');
    expect(after.min).toEqual({ capture: 'dbo_Accounts_v2' });
    expect(after.r.warnings?.map((w) => w.event)).toEqual(['CaptureInstance']);
  });

  it('cdc: a configured capture instance must exist; none at all names sp_cdc_enable_table', async () => {
    const lsns = { min_lsn: '0x00000001000000000001', max_lsn: '0x00000020000000200002' };
    await expect(extract(new FakeMssql(route(lsns, { rows: [] })), { mode: 'cdc', captureInstance: 'dbo_Accounts_v9' }, { saved: '0x00000015000000000001' })).rejects.toThrow(
      'pipelines/accounts.yaml: source.changeDetection.captureInstance dbo_Accounts_v9 is not a capture instance of dbo.Accounts (it has: dbo_Accounts)',
    );
    await expect(extract(new FakeMssql(route(lsns, { rows: [] }, '0', [])), { mode: 'cdc' }, { saved: '0x00000015000000000001' })).rejects.toThrow(
      /CDC is not enabled on table dbo.Accounts: it has no capture instance in cdc.change_tables; run EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'Accounts'/,
    );
  });

  it('cdc cleanup gap: saved LSN older than the min LSN → full re-snapshot and a SnapshotGap warning, never a change read', async () => {
    const fake = new FakeMssql(route({ min_lsn: '0x00000030000000000001', max_lsn: '0x00000040000000000001' }, { rows: [row(1), row(2)] }));
    const r = await extract(fake, { mode: 'cdc' }, { saved: '0x00000015000000000001' });
    expect(fake.sent.some((s) => s.sql.includes('fn_cdc_get_net_changes'))).toBe(false);
    expect(fake.sent.at(-1)!.sql).toMatch(/FROM \[dbo\]\.\[Accounts\] AS _tm_src$/);
    // from = null makes the transform treat it as a full read: deletes come from absent keys.
    expect(r.window).toEqual({ mode: 'cdc', from: null, to: '0x00000040000000000001', next: '0x00000040000000000001' });
    expect(r.warnings).toEqual([{ event: 'SnapshotGap', message: expect.stringMatching(/saved LSN 0x00000015000000000001 is older than .*0x00000030000000000001.*full re-snapshot/) }]);
    const { types } = await readParts(r.files);
    expect(types).not.toContain('_tm_source_op VARCHAR');
  });

  it('cdc first run: snapshot with the max LSN captured before reading', async () => {
    const fake = new FakeMssql(route({ min_lsn: '0x00000001000000000001', max_lsn: '0x00000002000000000001' }, { rows: [row(1)] }));
    const r = await extract(fake, { mode: 'cdc' }, { saved: null, runMode: 'full' });
    expect(r.window.next).toBe('0x00000002000000000001');
    const capture = fake.sent.findIndex((s) => s.sql.includes('max_lsn'));
    const read = fake.sent.findIndex((s) => s.sql.includes('FROM [dbo].[Accounts] AS _tm_src'));
    expect(capture).toBeGreaterThanOrEqual(0);
    expect(read).toBeGreaterThan(capture);
  });

  it('changeTracking: versions compared as integers; min valid version gap re-snapshots', async () => {
    const ok = new FakeMssql(route({ current_version: '1000', min_valid: '90' }, { rows: [row(1, 'delete')] }));
    const r = await extract(ok, { mode: 'changeTracking' }, { saved: '999' });
    expect(r.window).toEqual({ mode: 'changeTracking', from: '999', to: '1000', next: '1000' });
    expect(ok.sent.find((s) => s.sql.includes('CHANGETABLE'))!.parameters).toEqual({ from: '999', to: '1000' });
    const gap = new FakeMssql(route({ current_version: '1000', min_valid: '500' }, { rows: [row(1)] }));
    const g = await extract(gap, { mode: 'changeTracking' }, { saved: '99' });
    expect(g.window.from).toBeNull();
    expect(g.warnings?.[0]?.event).toBe('SnapshotGap');
    expect(gap.sent.some((s) => s.sql.includes('CHANGETABLE'))).toBe(false);
    const off = new FakeMssql(route({ current_version: '1000', min_valid: null }, { rows: [] }));
    await expect(extract(off, { mode: 'changeTracking' }, { saved: '99' })).rejects.toThrow(/Change Tracking is not enabled on table dbo.Accounts/);
  });

  it('changeTracking: versions and CHANGETABLE are read in one SNAPSHOT transaction, committed; other modes use the pool', async () => {
    const ok = new FakeMssql(route({ current_version: '1000', min_valid: '90' }, { rows: [row(1, 'delete')] }));
    await extract(ok, { mode: 'changeTracking' }, { saved: '999' });
    expect(ok.transactions).toEqual([{ isolation: 'SNAPSHOT', end: 'commit' }]);
    expect(ok.sent.map((s) => [s.transaction, s.sql.slice(0, 60)])).toEqual([
      [0, 'EXEC sys.sp_describe_first_result_set @tsql = @tsql, @params'],
      // The result set's own column names (engines that describe them lower-cased).
      [0, 'SELECT TOP 0 * FROM [dbo].[Accounts]'],
      [0, 'SELECT CAST(CHANGE_TRACKING_CURRENT_VERSION() AS varchar(20)'],
      [0, expect.stringMatching(/^SELECT CAST\(ct\.\[AccountId\]/)],
    ]);
    expect(ok.sent[2]).toEqual({
      sql: 'SELECT CAST(CHANGE_TRACKING_CURRENT_VERSION() AS varchar(20)) AS current_version, CAST(CHANGE_TRACKING_MIN_VALID_VERSION(OBJECT_ID(@table)) AS varchar(20)) AS min_valid',
      parameters: { table: '[dbo].[Accounts]' },
      transaction: 0,
    });
    expect(ok.sent[3]!.sql).toContain('FROM CHANGETABLE(CHANGES [dbo].[Accounts], CAST(@from AS bigint))');
    // A gap re-snapshot reads the table in the same snapshot as the min valid version it checked.
    const gap = new FakeMssql(route({ current_version: '1000', min_valid: '500' }, { rows: [row(1)] }));
    await extract(gap, { mode: 'changeTracking' }, { saved: '99' });
    expect(gap.transactions).toEqual([{ isolation: 'SNAPSHOT', end: 'commit' }]);
    expect(gap.sent.map((s) => s.transaction)).toEqual([0, 0, 0, 0]);
    expect(gap.sent[3]!.sql).toMatch(/FROM \[dbo\]\.\[Accounts\] AS _tm_src$/);
    const ts = new FakeMssql(route({ upper: '2026-01-01T01:00:00.0000000' }, { rows: [row(1)] }));
    await extract(ts, { mode: 'timestamp', column: 'ModifiedAt' }, { runMode: 'full' });
    expect(ts.transactions).toEqual([]);
    expect(ts.sent.every((s) => s.transaction === null)).toBe(true);
  });

  it('changeTracking: an error mid-read rolls the transaction back; snapshot isolation not allowed is terminal with the fix', async () => {
    const transient = Object.assign(new Error('Database is not currently available'), { number: 40613 });
    const mid = new FakeMssql(route({ current_version: '1000', min_valid: '90' }, { rows: [row(1), row(2)], errorAfter: { rows: 1, error: transient } }));
    expect(await extract(mid, { mode: 'changeTracking' }, { saved: '999' }).catch((e: unknown) => e)).toBe(transient);
    expect(mid.transactions).toEqual([{ isolation: 'SNAPSHOT', end: 'rollback' }]);
    expect(mid.closed).toBe(1);
    const msg =
      'source CRM (pipeline accounts): Change Tracking is read in a SNAPSHOT isolation transaction, which the database of dbo.Accounts does not allow; run ALTER DATABASE <database> SET ALLOW_SNAPSHOT_ISOLATION ON';
    const denied = Object.assign(new Error("Snapshot isolation transaction failed accessing database 'crm' because snapshot isolation is not allowed in this database."), { number: 3952 });
    // SQL Server raises it at the first statement inside the transaction ...
    const first = new FakeMssql((sql) => (sql.startsWith('EXEC') ? { rows: [], errorAfter: { rows: 0, error: denied } } : { rows: [] }));
    const e1 = await extract(first, { mode: 'changeTracking' }, { saved: '999' }).catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(TerminalError);
    expect((e1 as Error).message).toBe(msg);
    expect((e1 as Error).cause).toBe(denied);
    expect(first.transactions).toEqual([{ isolation: 'SNAPSHOT', end: 'rollback' }]);
    // ... or, on some drivers, at BEGIN.
    const atBegin = new FakeMssql(route({}, { rows: [] }));
    atBegin.beginError = denied;
    const e2 = await extract(atBegin, { mode: 'changeTracking' }, { saved: '999' }).catch((e: unknown) => e);
    expect((e2 as Error).message).toBe(msg);
    expect(atBegin.sent).toEqual([]);
  });

  it('errors: a transient error number mid-stream is retryable, a wrong object is terminal with the server text', async () => {
    const rows = Array.from({ length: 50 }, (_, i) => row(i + 1));
    const transient = Object.assign(new Error('Database is not currently available'), { number: 40613 });
    const t = new FakeMssql(route({}, { rows, errorAfter: { rows: 20, error: transient } }));
    const e1 = await extract(t, { mode: 'full' }, {}).catch((e: unknown) => e);
    expect(e1).toBe(transient);
    expect(e1).not.toBeInstanceOf(TerminalError);
    expect(t.closed).toBe(1);
    const bad = Object.assign(new Error("Invalid object name 'dbo.Accounts'."), { number: 208 });
    const b = new FakeMssql(() => ({ rows: [], errorAfter: { rows: 0, error: bad } }));
    const e2 = await extract(b, { mode: 'full' }, {}).catch((e: unknown) => e);
    expect(e2).toBeInstanceOf(TerminalError);
    expect((e2 as Error).message).toMatch(/source CRM \(pipeline accounts\): SQL Server error 208: Invalid object name 'dbo.Accounts'/);
  });

  it('backfill in a version mode is refused with the fix', async () => {
    const fake = new FakeMssql(route({ upper: '0x01' }, { rows: [] }));
    await expect(extract(fake, { mode: 'rowversion', column: 'RowVer' }, { runMode: 'backfill', saved: '0x01' })).rejects.toThrow(/needs changeDetection.mode: timestamp/);
  });
});

describe('MssqlSource partitions (fake SQL Server)', () => {
  it('keyStats captures the snapshot window once (cdc: max LSN) and the key range; a partition reads its range', async () => {
    const fake = new FakeMssql((sql) => {
      if (sql.includes('AS max_lsn')) return { rows: [{ min_lsn: '0x00000001000000000001', max_lsn: '0x00000009000000000001' }] };
      if (sql.includes('MIN([AccountId])')) return { rows: [{ mn: '1', mx: '50000000', n: '49999000' }] };
      if (sql.startsWith('EXEC')) return { rows: describeRows };
      if (sql.includes('FROM cdc.change_tables')) return { rows: oneInstance };
      return { rows: [row(7)] };
    });
    const src = new MssqlSource(async () => fake.connector(), pipeline({ mode: 'cdc' }), duck());
    const win = { mode: 'cdc' as const, lagMs: 0, saved: null, runMode: 'full' as const };
    const stats = await src.keyStats({ window: win, column: 'AccountId' });
    expect(stats).toEqual({ window: { mode: 'cdc', from: null, to: '0x00000009000000000001', next: '0x00000009000000000001' }, min: '1', max: '50000000', rows: 49999000 });
    const out = join(mkdtempSync(join(tmpdir(), 'tidemark-mssql-')), 'parts');
    const r = await src.extract({ window: win, outDir: out, partRows: 1000, partBytes: '1MB', countSource: false, range: { column: 'AccountId', lo: '1', hi: '12500001', last: false } });
    expect(r.files).toHaveLength(1);
    expect(fake.sent.at(-1)!.parameters).toEqual({ lo: '1', hi: '12500001' });
    expect(fake.sent.at(-1)!.sql).toMatch(/WHERE _tm_src\.\[AccountId\] >= CAST\(@lo AS decimal\(38,0\)\) AND _tm_src\.\[AccountId\] < CAST\(@hi AS decimal\(38,0\)\)$/);
  });
});
