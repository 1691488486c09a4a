import { describe, expect, it } from 'vitest';
import { TerminalError } from '../../../../shared/errors.js';
import { pipelineSchema, type PipelineInput } from '../../../../shared/config/schema.js';
import {
  planCaptureCdc,
  planCaptureChangeTracking,
  planCaptureRowversion,
  planCaptureTimestamp,
  planCdc,
  planChangeTracking,
  planCountRowversion,
  planCountTimestamp,
  planDescribe,
  planFull,
  planRowversion,
  planTimestamp,
} from '../../../../shared/extract/mssql/plan.js';
import { mssqlColumnPlan } from '../../../../shared/extract/mssql/types.js';

// No SQL Server runs here: these pin the exact T-SQL each mode sends (docs/design.md §6).
function pipeline(cd: PipelineInput['source']['changeDetection'], src: Partial<PipelineInput['source']> = {}) {
  return pipelineSchema.parse({
    name: 'accounts',
    source: { connection: 'CRM', table: 'dbo.Accounts', changeDetection: cd, ...src },
    key: ['AccountId'],
    target: { warehouse: 'DW', table: 'dw.dim_account' },
  });
}

const columns = [
  mssqlColumnPlan({ name: 'AccountId', system_type_name: 'int' }),
  mssqlColumnPlan({ name: 'Name', system_type_name: 'nvarchar(200)' }),
  mssqlColumnPlan({ name: 'ModifiedAt', system_type_name: 'datetime2(7)' }),
];
const list = (a: string) =>
  `CAST(${a}.[AccountId] AS varchar(11)) AS [AccountId], ${a}.[Name] AS [Name], CONVERT(varchar(27), ${a}.[ModifiedAt], 126) AS [ModifiedAt]`;

describe('mssql planners: exact SQL per mode', () => {
  it('describes the columns of a table or a query through sp_describe_first_result_set', () => {
    expect(planDescribe(pipeline({ mode: 'full' }))).toEqual({
      sql: 'EXEC sys.sp_describe_first_result_set @tsql = @tsql, @params = NULL, @browse_information_mode = 0',
      parameters: [{ name: 'tsql', value: 'SELECT * FROM [dbo].[Accounts]' }],
    });
    const q = pipeline({ mode: 'full' }, { table: undefined, query: 'select AccountId from dbo.Accounts where Active = 1' });
    expect(planDescribe(q).parameters).toEqual([{ name: 'tsql', value: 'select AccountId from dbo.Accounts where Active = 1' }]);
  });

  it('full: every column rendered as exact text, from the quoted table or the query', () => {
    expect(planFull(pipeline({ mode: 'full' }), columns)).toEqual({ sql: `SELECT ${list('_tm_src')} FROM [dbo].[Accounts] AS _tm_src`, parameters: [] });
    const q = pipeline({ mode: 'full' }, { table: undefined, query: 'select * from dbo.Accounts' });
    expect(planFull(q, columns).sql).toBe(`SELECT ${list('_tm_q')} FROM (select * from dbo.Accounts) AS _tm_q`);
  });

  it('timestamp: upper bound captured first, then (from, to] with the values bound', () => {
    const p = pipeline({ mode: 'timestamp', column: 'ModifiedAt', lag: '5m' });
    expect(planCaptureTimestamp(p, columns)).toEqual({ sql: 'SELECT CONVERT(varchar(27), CAST(MAX([ModifiedAt]) AS datetime2(7)), 126) AS upper FROM [dbo].[Accounts]', parameters: [] });
    expect(planTimestamp(p, columns, { from: '2026-01-01T00:55:00.000Z', to: '2026-01-01T01:00:00.1234567Z' })).toEqual({
      sql: `SELECT ${list('_tm_src')} FROM [dbo].[Accounts] AS _tm_src WHERE _tm_src.[ModifiedAt] > CONVERT(datetime2(7), @from, 126) AND _tm_src.[ModifiedAt] <= CONVERT(datetime2(7), @to, 126)`,
      parameters: [
        { name: 'from', value: '2026-01-01T00:55:00.000' },
        { name: 'to', value: '2026-01-01T01:00:00.1234567' },
      ],
    });
    expect(planTimestamp(p, columns, { from: null, to: '2026-01-01T01:00:00Z' }).sql).toBe(
      `SELECT ${list('_tm_src')} FROM [dbo].[Accounts] AS _tm_src WHERE _tm_src.[ModifiedAt] <= CONVERT(datetime2(7), @to, 126)`,
    );
    expect(planCountTimestamp(p, '2026-01-01T01:00:00Z')).toEqual({
      sql: 'SELECT COUNT_BIG(*) AS n FROM [dbo].[Accounts] WHERE [ModifiedAt] <= CONVERT(datetime2(7), @to, 126)',
      parameters: [{ name: 'to', value: '2026-01-01T01:00:00' }],
    });
  });

  it('timestamp: the upper bound is captured as UTC for each SQL Server time type', () => {
    const p = pipeline({ mode: 'timestamp', column: 'modifiedat' });
    const capture = (type: string) => planCaptureTimestamp(p, [columns[0]!, mssqlColumnPlan({ name: 'ModifiedAt', system_type_name: type })]).sql;
    const from = ' AS upper FROM [dbo].[Accounts]';
    // Wall-clock types are read as UTC; datetime2(7) is what the window compares with.
    expect(capture('datetime')).toBe(`SELECT CONVERT(varchar(27), CAST(MAX([modifiedat]) AS datetime2(7)), 126)${from}`);
    expect(capture('datetime2(3)')).toBe(`SELECT CONVERT(varchar(27), CAST(MAX([modifiedat]) AS datetime2(7)), 126)${from}`);
    expect(capture('smalldatetime')).toBe(`SELECT CONVERT(varchar(27), CAST(MAX([modifiedat]) AS datetime2(7)), 126)${from}`);
    expect(capture('date')).toBe(`SELECT CONVERT(varchar(27), CAST(MAX([modifiedat]) AS datetime2(7)), 126)${from}`);
    // datetimeoffset: switched to +00:00 before its offset is dropped, so 10:00+02:00 is captured as 08:00.
    expect(capture('datetimeoffset(7)')).toBe(`SELECT CONVERT(varchar(27), CAST(SWITCHOFFSET(MAX([modifiedat]), '+00:00') AS datetime2(7)), 126)${from}`);
    expect(capture('datetimeoffset')).toBe(`SELECT CONVERT(varchar(27), CAST(SWITCHOFFSET(MAX([modifiedat]), '+00:00') AS datetime2(7)), 126)${from}`);
    expect(() => capture('int')).toThrow(
      new TerminalError(
        'pipelines/accounts.yaml: timestamp mode needs a date / time change column; modifiedat is int. Use a datetime2, datetime, smalldatetime, datetimeoffset or date column, or rowversion mode for a rowversion column',
      ),
    );
    expect(() => planCaptureTimestamp(pipeline({ mode: 'timestamp', column: 'UpdatedAt' }), columns)).toThrow(
      new TerminalError('pipelines/accounts.yaml: source.changeDetection.column UpdatedAt is not a column of dbo.Accounts (columns: AccountId, Name, ModifiedAt); name one of them'),
    );
  });

  it('rowversion: rv >= saved and rv < MIN_ACTIVE_ROWVERSION() as captured', () => {
    const p = pipeline({ mode: 'rowversion', column: 'RowVer' });
    expect(planCaptureRowversion()).toEqual({ sql: 'SELECT CONVERT(varchar(20), MIN_ACTIVE_ROWVERSION(), 1) AS upper', parameters: [] });
    expect(planRowversion(p, columns, { from: '0x00000000000007D1', to: '0x0000000000000800' })).toEqual({
      sql: `SELECT ${list('_tm_src')} FROM [dbo].[Accounts] AS _tm_src WHERE _tm_src.[RowVer] >= CONVERT(binary(8), @from, 1) AND _tm_src.[RowVer] < CONVERT(binary(8), @to, 1)`,
      parameters: [
        { name: 'from', value: '0x00000000000007D1' },
        { name: 'to', value: '0x0000000000000800' },
      ],
    });
    expect(planCountRowversion(p, '0x0000000000000800')).toEqual({
      sql: 'SELECT COUNT_BIG(*) AS n FROM [dbo].[Accounts] WHERE [RowVer] < CONVERT(binary(8), @to, 1)',
      parameters: [{ name: 'to', value: '0x0000000000000800' }],
    });
    expect(() => planRowversion(pipeline({ mode: 'rowversion' }), columns, { from: null, to: '0x01' })).toThrow(/rowversion mode needs source.changeDetection.column/);
  });

  it('cdc: min/max LSN captured, net changes from increment(saved) to max, __$operation mapped', () => {
    const p = pipeline({ mode: 'cdc' });
    expect(planCaptureCdc(p)).toEqual({
      sql: 'SELECT CONVERT(varchar(22), sys.fn_cdc_get_min_lsn(@capture), 1) AS min_lsn, CONVERT(varchar(22), sys.fn_cdc_get_max_lsn(), 1) AS max_lsn',
      parameters: [{ name: 'capture', value: 'dbo_Accounts' }],
    });
    expect(planCdc(p, columns, { from: '0x0000002A000001F00003', to: '0x0000002B000000100001' })).toEqual({
      sql:
        `SELECT ${list('ct')}, CASE ct.[__$operation] WHEN 1 THEN 'delete' WHEN 2 THEN 'insert' WHEN 4 THEN 'update' END AS [_tm_source_op] ` +
        `FROM cdc.[fn_cdc_get_net_changes_dbo_Accounts](sys.fn_cdc_increment_lsn(CONVERT(binary(10), @from, 1)), CONVERT(binary(10), @to, 1), N'all') AS ct`,
      parameters: [
        { name: 'from', value: '0x0000002A000001F00003' },
        { name: 'to', value: '0x0000002B000000100001' },
      ],
    });
    expect(planCaptureCdc(pipeline({ mode: 'cdc', captureInstance: 'crm_accounts_v2' })).parameters).toEqual([{ name: 'capture', value: 'crm_accounts_v2' }]);
    expect(() => planCdc(pipeline({ mode: 'cdc' }, { table: undefined, query: 'select 1' }), columns, { from: '0x00', to: '0x01' })).toThrow(
      /set source.table instead of source.query/,
    );
  });

  it('changeTracking: current and min valid version captured; CHANGETABLE joined back for current values', () => {
    const p = pipeline({ mode: 'changeTracking' });
    expect(planCaptureChangeTracking(p)).toEqual({
      sql: 'SELECT CAST(CHANGE_TRACKING_CURRENT_VERSION() AS varchar(20)) AS current_version, CAST(CHANGE_TRACKING_MIN_VALID_VERSION(OBJECT_ID(@table)) AS varchar(20)) AS min_valid',
      parameters: [{ name: 'table', value: '[dbo].[Accounts]' }],
    });
    expect(planChangeTracking(p, columns, { from: '41', to: '57' })).toEqual({
      sql:
        `SELECT CAST(ct.[AccountId] AS varchar(11)) AS [AccountId], t.[Name] AS [Name], CONVERT(varchar(27), t.[ModifiedAt], 126) AS [ModifiedAt], ` +
        `CASE ct.SYS_CHANGE_OPERATION WHEN 'D' THEN 'delete' WHEN 'I' THEN 'insert' ELSE 'update' END AS [_tm_source_op] ` +
        `FROM CHANGETABLE(CHANGES [dbo].[Accounts], CAST(@from AS bigint)) AS ct LEFT JOIN [dbo].[Accounts] AS t ON t.[AccountId] = ct.[AccountId] ` +
        `WHERE ct.SYS_CHANGE_VERSION <= CAST(@to AS bigint)`,
      parameters: [
        { name: 'from', value: '41' },
        { name: 'to', value: '57' },
      ],
    });
    const wrongKey = pipelineSchema.parse({ ...p, key: ['Id'] });
    expect(() => planChangeTracking(wrongKey, columns, { from: '1', to: '2' })).toThrow(/key column Id is not a column of dbo.Accounts/);
  });
});

describe('mssql partition queries', () => {
  it('key statistics and a key-range read, bounds bound as parameters', async () => {
    const { planKeyStats } = await import('../../../../shared/extract/mssql/plan.js');
    const p = pipeline({ mode: 'full' });
    expect(planKeyStats(p, 'AccountId')).toEqual({
      sql: 'SELECT CAST(MIN([AccountId]) AS varchar(40)) AS mn, CAST(MAX([AccountId]) AS varchar(40)) AS mx, CAST(COUNT_BIG(*) AS varchar(20)) AS n FROM [dbo].[Accounts]',
      parameters: [],
    });
    expect(planFull(p, columns, { column: 'AccountId', lo: '1', hi: '5000001', last: false })).toEqual({
      sql: `SELECT ${list('_tm_src')} FROM [dbo].[Accounts] AS _tm_src WHERE _tm_src.[AccountId] >= CAST(@lo AS decimal(38,0)) AND _tm_src.[AccountId] < CAST(@hi AS decimal(38,0))`,
      parameters: [
        { name: 'lo', value: '1' },
        { name: 'hi', value: '5000001' },
      ],
    });
    expect(planFull(p, columns, { column: 'AccountId', lo: '5000001', hi: '9999999', last: true }).sql).toMatch(/<= CAST\(@hi AS decimal\(38,0\)\)$/);
  });
});
