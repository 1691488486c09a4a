import { describe, expect, it } from 'vitest';
import { postgresRollbackStyle, synapseRollbackStyle } from '../../../shared/rollback/styles.js';
import { checksumStatement, formatChecksum } from '../../../shared/validate/canonical-sql.js';

const COLS = [
  { name: 'AccountId', type: { kind: 'integer', bits: 32 } as const },
  { name: 'Email', type: { kind: 'text' } as const },
];

/** No Synapse here (docs/design.md §15): the T-SQL is pinned exactly. The same figure as DuckDB/PostgreSQL is by construction (see canonical-sql.ts). */
describe('checksum SQL golden', () => {
  it('synapse: UTF-8 md5, first 60 bits as BIGINT, summed as DECIMAL(38,0); LEN with a sentinel', () => {
    expect(checksumStatement('synapse', synapseRollbackStyle, COLS, '[dw].[t]').sql).toBe(
      "SELECT COUNT_BIG(*) AS n, COALESCE(SUM(CAST(CONVERT(BIGINT, CONVERT(VARBINARY(8), '0' + LEFT(CONVERT(VARCHAR(32), HASHBYTES('MD5', CAST((concat_ws('|', CASE WHEN [AccountId] IS NULL THEN NULL ELSE 'AccountId=' + CAST(LEN(CAST([AccountId] AS VARCHAR(60)) + N'.') - 1 AS VARCHAR(20)) + ':' + CAST([AccountId] AS VARCHAR(60)) END, CASE WHEN [Email] IS NULL THEN NULL ELSE 'Email=' + CAST(LEN(CAST([Email] AS NVARCHAR(MAX)) + N'.') - 1 AS VARCHAR(20)) + ':' + CAST([Email] AS NVARCHAR(MAX)) END)) COLLATE Latin1_General_100_BIN2_UTF8 AS VARCHAR(MAX))), 2), 15), 2)) AS DECIMAL(38, 0))), 0) AS s FROM [dw].[t]",
    );
  });

  it('synapse: a timestamp prints microseconds and Z like DuckDB', () => {
    const sql = checksumStatement('synapse', synapseRollbackStyle, [{ name: 'At', type: { kind: 'timestamp' } }], 'x').sql;
    expect(sql).toContain("CONVERT(VARCHAR(19), [At], 126) + '.' + RIGHT('000000' + CAST(DATEPART(MICROSECOND, [At]) AS VARCHAR(6)), 6) + 'Z'");
  });

  it('synapse: refuses a float column, naming it and the fix', () => {
    expect(() => checksumStatement('synapse', synapseRollbackStyle, [{ name: 'Ratio', type: { kind: 'float', bits: 64 } }], 'x')).toThrow(
      /column Ratio \(float\) cannot be checksummed or sampled on synapse.*validation\.checksumColumns/,
    );
  });

  it('postgres: md5 bits through BIT(64), numeric sum', () => {
    expect(checksumStatement('postgres', postgresRollbackStyle, COLS, 't').sql).toBe(
      `SELECT count(*) AS n, coalesce(sum(CAST(CAST(CAST('x' || lpad(substr(md5(concat_ws('|', CASE WHEN "AccountId" IS NULL THEN NULL ELSE 'AccountId=' || CAST(length(CAST("AccountId" AS TEXT)) AS VARCHAR) || ':' || CAST("AccountId" AS TEXT) END, CASE WHEN "Email" IS NULL THEN NULL ELSE 'Email=' || CAST(length(CAST("Email" AS TEXT)) AS VARCHAR) || ':' || CAST("Email" AS TEXT) END)), 1, 15), 16, '0') AS BIT(64)) AS BIGINT) AS NUMERIC)), 0) AS s FROM t`,
    );
  });

  it('formats what drivers return the same way', () => {
    expect(formatChecksum({ n: 3n, s: 12345n })).toBe('3:12345');
    expect(formatChecksum({ n: '3', s: '12345' })).toBe('3:12345');
    expect(formatChecksum({ n: 3, s: '12345.0' })).toBe('3:12345');
    expect(formatChecksum(undefined)).toBe('0:0');
  });
});
