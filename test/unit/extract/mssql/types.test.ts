import { describe, expect, it } from 'vitest';
import { DuckDBInstance } from '@duckdb/node-api';
import { describedColumn, mssqlColumnPlan } from '../../../../shared/extract/mssql/types.js';

/**
 * Each SQL Server type: the T-SQL that renders it as text, the DuckDB type, and (run on a real
 * DuckDB) that the text SQL Server produces in that style casts back without loss. The sample
 * texts are what SQL Server returns for these CONVERT styles (documented formats).
 */
const cases: Array<{ type: string; select: string; duck: string; text: string; back: string }> = [
  { type: 'datetime2(7)', select: 'CONVERT(varchar(27), [c], 126)', duck: 'TIMESTAMP_NS', text: '2026-03-01T10:20:30.1234567', back: '2026-03-01 10:20:30.1234567' },
  { type: 'datetime2(3)', select: 'CONVERT(varchar(27), [c], 126)', duck: 'TIMESTAMP', text: '2026-03-01T10:20:30.123', back: '2026-03-01 10:20:30.123' },
  { type: 'datetime', select: 'CONVERT(varchar(27), [c], 126)', duck: 'TIMESTAMP', text: '2026-03-01T10:20:30.997', back: '2026-03-01 10:20:30.997' },
  {
    type: 'datetimeoffset(7)',
    select: "CONVERT(varchar(27), CAST(SWITCHOFFSET([c], '+00:00') AS datetime2(7)), 126)",
    duck: 'TIMESTAMP_NS',
    text: '2026-03-01T08:20:30.1234567',
    back: '2026-03-01 08:20:30.1234567',
  },
  {
    type: 'datetimeoffset(3)',
    select: "CONVERT(varchar(27), CAST(SWITCHOFFSET([c], '+00:00') AS datetime2(7)), 126)",
    duck: 'TIMESTAMPTZ',
    text: '2026-03-01T08:20:30.1230000',
    back: '2026-03-01 08:20:30.123+00',
  },
  { type: 'date', select: 'CONVERT(char(10), [c], 23)', duck: 'DATE', text: '0001-01-01', back: '0001-01-01' },
  { type: 'time(7)', select: 'CAST([c] AS varchar(16))', duck: 'TIME_NS', text: '23:59:59.9999999', back: '23:59:59.9999999' },
  { type: 'time(0)', select: 'CAST([c] AS varchar(16))', duck: 'TIME', text: '07:00:00', back: '07:00:00' },
  { type: 'decimal(38,10)', select: 'CAST([c] AS varchar(41))', duck: 'DECIMAL(38,10)', text: '1234567890123456789012345678.0123456789', back: '1234567890123456789012345678.0123456789' },
  { type: 'numeric(9,2)', select: 'CAST([c] AS varchar(41))', duck: 'DECIMAL(9,2)', text: '-0.10', back: '-0.10' },
  { type: 'money', select: 'CONVERT(varchar(30), [c], 2)', duck: 'DECIMAL(19,4)', text: '922337203685477.5807', back: '922337203685477.5807' },
  { type: 'smallmoney', select: 'CONVERT(varchar(30), [c], 2)', duck: 'DECIMAL(10,4)', text: '-214748.3648', back: '-214748.3648' },
  { type: 'bit', select: 'CAST([c] AS varchar(1))', duck: 'BOOLEAN', text: '1', back: 'true' },
  { type: 'tinyint', select: 'CAST([c] AS varchar(3))', duck: 'UTINYINT', text: '255', back: '255' },
  { type: 'bigint', select: 'CAST([c] AS varchar(20))', duck: 'BIGINT', text: '-9223372036854775808', back: '-9223372036854775808' },
  { type: 'float', select: 'CONVERT(varchar(30), [c], 3)', duck: 'DOUBLE', text: '0.10000000000000001', back: '0.1' },
  { type: 'real', select: 'CONVERT(varchar(30), [c], 3)', duck: 'FLOAT', text: '3.4028235E+38', back: '3.4028235e+38' },
  { type: 'uniqueidentifier', select: 'CAST([c] AS varchar(36))', duck: 'UUID', text: '6F9619FF-8B86-D011-B42D-00C04FC964FF', back: '6f9619ff-8b86-d011-b42d-00c04fc964ff' },
  { type: 'varbinary(max)', select: 'CONVERT(varchar(max), CAST([c] AS varbinary(max)), 2)', duck: 'BLOB', text: '00FF7F80', back: '\\x00\\xFF\\x7F\\x80' },
  { type: 'timestamp', select: 'CONVERT(varchar(max), CAST([c] AS varbinary(max)), 2)', duck: 'BLOB', text: '00000000000007D1', back: '\\x00\\x00\\x00\\x00\\x00\\x00\\x07\\xD1' },
  { type: 'nvarchar(max)', select: '[c]', duck: 'VARCHAR', text: 'Zürich 東京 ✓', back: 'Zürich 東京 ✓' },
  { type: 'varchar(20)', select: '[c]', duck: 'VARCHAR', text: 'plain', back: 'plain' },
  { type: 'xml', select: 'CAST([c] AS nvarchar(max))', duck: 'VARCHAR', text: '<a b="1"/>', back: '<a b="1"/>' },
];

describe('SQL Server type mapping', () => {
  it.each(cases)('$type → $duck', async (c) => {
    const plan = mssqlColumnPlan({ name: 'c', system_type_name: c.type });
    expect(plan.select('[c]')).toBe(c.select);
    expect(plan.duckType).toBe(c.duck);
    const inst = await DuckDBInstance.create(':memory:');
    const conn = await inst.connect();
    try {
      await conn.run(`SET TimeZone = 'UTC'`);
      const r = await conn.runAndReadAll(`SELECT CAST(${plan.fromText('x')} AS VARCHAR) AS v, typeof(${plan.fromText('x')}) AS t FROM (SELECT $1::VARCHAR AS x)`, [c.text]);
      const row = r.getRowObjectsJS()[0] as { v: string; t: string };
      expect(row.v).toBe(c.back);
      expect(row.t).toBe(c.duck === 'TIMESTAMPTZ' ? 'TIMESTAMP WITH TIME ZONE' : c.duck);
    } finally {
      conn.closeSync();
      inst.closeSync();
    }
  });

  it('refuses types it cannot carry exactly, naming the column and the fix', () => {
    expect(() => mssqlColumnPlan({ name: 'Shape', system_type_name: 'geography' })).toThrow(
      /column Shape has SQL Server type geography.*convert it in source.query \(e.g. CAST\(\[Shape\] AS nvarchar\(max\)\)\)/,
    );
    expect(() => mssqlColumnPlan({ name: 'V', system_type_name: 'sql_variant' })).toThrow(/sql_variant/);
  });
});

describe('the described type comes from sp_describe_first_result_set’s own columns', () => {
  // Babelfish prints system_type_name without arguments; SQL Server prints them. Both fill
  // precision / scale / max_length, so the type is built from those.
  const row = (system_type_name: string, precision: number, scale: number, max_length: number) => ({ name: 'c', system_type_name, precision, scale, max_length });
  it.each([
    [row('decimal', 12, 2, 9), 'decimal(12,2)'],
    [row('decimal(12,2)', 12, 2, 9), 'decimal(12,2)'],
    [row('datetime2', 27, 7, 8), 'datetime2(7)'],
    [row('datetimeoffset', 34, 3, 10), 'datetimeoffset(3)'],
    [row('time', 16, 6, 5), 'time(6)'],
    [row('nvarchar', 0, 0, 100), 'nvarchar(50)'],
    [row('nvarchar', 0, 0, -1), 'nvarchar(max)'],
    [row('varbinary', 0, 0, 16), 'varbinary(16)'],
    [row('float', 53, 0, 8), 'float(53)'],
    [row('int', 10, 0, 4), 'int'],
  ])('%o → %s', (r, want) => {
    expect(describedColumn(r).system_type_name).toBe(want);
  });
  it('keeps system_type_name when the row has no such columns (older fakes, other drivers)', () => {
    expect(describedColumn({ name: 'c', system_type_name: 'decimal(9,3)' })).toEqual({ name: 'c', system_type_name: 'decimal(9,3)' });
  });
});
