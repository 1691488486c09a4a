import { describe, expect, it } from 'vitest';
import { duckRollbackStyle, postgresRollbackStyle, synapseRollbackStyle } from '../../../shared/rollback/styles.js';
import { canonicalTextSql, checksumStatement, formatChecksum, type EngineName } from '../../../shared/validate/canonical-sql.js';
import type { LogicalType } from '../../../shared/merge/plan.js';

const COLS = [
  { name: 'AccountId', type: { kind: 'integer', bits: 32 } as const },
  { name: 'Email', type: { kind: 'text' } as const },
];

/** No Synapse here (docs/design.md §15): the T-SQL is pinned exactly. The same figure as DuckDB/PostgreSQL is by construction (see canonical-sql.ts). */
describe('checksum SQL golden', () => {
  it('synapse and mssql: UTF-8 md5, first 60 bits by binary SUBSTRING and bigint arithmetic, summed as DECIMAL(38,0) and returned as text; LEN with a sentinel', () => {
    const want =
      "SELECT CAST(COUNT_BIG(*) AS VARCHAR(20)) AS n, CAST(COALESCE(SUM(CAST(CAST(SUBSTRING(_tm_h, 1, 7) AS BIGINT) * 16 + CAST(SUBSTRING(_tm_h, 8, 1) AS INT) / 16 AS DECIMAL(38, 0))), 0) AS VARCHAR(40)) AS s FROM (SELECT HASHBYTES('MD5', CAST((concat_ws('|', CASE WHEN [AccountId] IS NULL THEN NULL ELSE 'AccountId=' + CAST(LEN(CAST([AccountId] AS VARCHAR(60)) + N'.') - 1 AS VARCHAR(20)) + ':' + CAST([AccountId] AS VARCHAR(60)) END, CASE WHEN [Email] IS NULL THEN NULL ELSE 'Email=' + CAST(LEN(CAST([Email] AS NVARCHAR(MAX)) + N'.') - 1 AS VARCHAR(20)) + ':' + CAST([Email] AS NVARCHAR(MAX)) END)) COLLATE Latin1_General_100_BIN2_UTF8 AS VARCHAR(MAX))) AS _tm_h FROM [dw].[t]) AS _tm_m";
    expect(checksumStatement('synapse', synapseRollbackStyle, COLS, '[dw].[t]').sql).toBe(want);
    expect(checksumStatement('mssql', synapseRollbackStyle, COLS, '[dw].[t]').sql).toBe(want);
  });

  it('synapse: a timestamp prints microseconds and Z like DuckDB, through style 120 (the form SQL Server and the test engine both print)', () => {
    const sql = checksumStatement('synapse', synapseRollbackStyle, [{ name: 'At', type: { kind: 'timestamp' } }], 'x').sql;
    expect(sql).toContain("STUFF(CONVERT(VARCHAR(19), [At], 120), 11, 1, 'T') + '.' + RIGHT('000000' + CAST(DATEPART(MICROSECOND, [At]) AS VARCHAR(6)), 6) + 'Z'");
  });

  it.each(['float', 'time', 'json'] as const)('synapse: refuses a %s column, naming it and the fix', (kind) => {
    const type = (kind === 'float' ? { kind, bits: 64 } : { kind }) as LogicalType;
    expect(() => checksumStatement('synapse', synapseRollbackStyle, [{ name: 'Ratio', type }], 'x')).toThrow(
      new RegExp(`column Ratio \\(${kind}\\) cannot be checksummed or sampled on a T-SQL warehouse.*validation\\.checksumColumns`),
    );
  });

  it('refuses a sum that reached JavaScript as a number past 2^53 instead of comparing lost digits', () => {
    expect(() => formatChecksum({ n: 3, s: 1833556316665636600 })).toThrow(/past 2\^53/);
    expect(formatChecksum({ n: '3', s: '1833556316665636709' })).toBe('3:1833556316665636709');
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
    // Sums travel as text end to end (#14): big ones keep every digit, a lossy number is refused.
    expect(formatChecksum({ n: '2', s: '1833556316665636709' })).toBe('2:1833556316665636709');
    expect(formatChecksum({ n: 2n, s: 1833556316665636709n })).toBe('2:1833556316665636709');
    expect(() => formatChecksum({ n: 2, s: 1833556316665636709 })).toThrow(/past 2\^53, where a JavaScript number loses digits/);
    expect(() => formatChecksum({ n: 2, s: 'abc' })).toThrow(/not an integer/);
    expect(formatChecksum(undefined)).toBe('0:0');
  });
});

/** Hash rule 3's list text (row-hash.ts) in each engine's SQL; equal values on the engines: test/integration/validate/lists.test.ts. */
describe('list canonical text', () => {
  const tags = { name: 'tags', type: { kind: 'list', element: { kind: 'text' } } } as const;
  const amounts = { name: 'amounts', type: { kind: 'list', element: { kind: 'decimal', precision: 12, scale: 3 } } } as const;
  const styles = { duckdb: duckRollbackStyle, postgres: postgresRollbackStyle, synapse: synapseRollbackStyle, mssql: synapseRollbackStyle };
  const want: Record<EngineName, [string, string]> = {
    duckdb: [
      `'[' || array_to_string(list_transform("tags", _tm_e -> CASE WHEN _tm_e IS NULL THEN 'null' ELSE CAST(to_json(_tm_e) AS VARCHAR) END), ',') || ']'`,
      `'[' || array_to_string(list_transform("amounts", _tm_e -> CASE WHEN _tm_e IS NULL THEN 'null' ELSE CASE WHEN strpos(CAST(_tm_e AS VARCHAR), '.') > 0 THEN rtrim(rtrim(CAST(_tm_e AS VARCHAR), '0'), '.') ELSE CAST(_tm_e AS VARCHAR) END END), ',') || ']'`,
    ],
    postgres: [
      `CASE WHEN "tags" IS NULL THEN NULL ELSE '[' || array_to_string(ARRAY(SELECT CASE WHEN _tm_e IS NULL THEN 'null' ELSE CAST(to_json(CAST(_tm_e AS TEXT)) AS TEXT) END FROM unnest("tags") WITH ORDINALITY AS _tm_u(_tm_e, _tm_i) ORDER BY _tm_i), ',') || ']' END`,
      `CASE WHEN "amounts" IS NULL THEN NULL ELSE '[' || array_to_string(ARRAY(SELECT CASE WHEN _tm_e IS NULL THEN 'null' ELSE CASE WHEN strpos(CAST(_tm_e AS TEXT), '.') > 0 THEN rtrim(rtrim(CAST(_tm_e AS TEXT), '0'), '.') ELSE CAST(_tm_e AS TEXT) END END FROM unnest("amounts") WITH ORDINALITY AS _tm_u(_tm_e, _tm_i) ORDER BY _tm_i), ',') || ']' END`,
    ],
    // T-SQL holds the list as this JSON text already (the insert staging writes DuckDB's).
    synapse: ['CAST([tags] AS NVARCHAR(MAX))', 'CAST([amounts] AS NVARCHAR(MAX))'],
    mssql: ['CAST([tags] AS NVARCHAR(MAX))', 'CAST([amounts] AS NVARCHAR(MAX))'],
  };
  it.each(Object.keys(want) as EngineName[])('%s', (engine) => {
    expect([canonicalTextSql(engine, styles[engine], tags), canonicalTextSql(engine, styles[engine], amounts)]).toEqual(want[engine]);
  });
});
