import { TerminalError } from '../errors.js';
import { duckTypeName } from '../merge/duckdb/dialect.js';
import type { LogicalType, PlanColumn } from '../merge/plan.js';
import type { Statement } from '../merge/dialect.js';
import { canonicalText } from '../transform/row-hash.js';
import type { RollbackStyle } from '../rollback/sql.js';

/**
 * The canonical text of a value (docs/design.md §7, transform/row-hash.ts) written in each warehouse's
 * own SQL, so that a checksum or a sampled field computed inside the warehouse equals the one
 * DuckDB computed on the extract. DuckDB is the reference; the others must print the same text:
 *
 *   type          duckdb (reference)           postgres                       synapse (T-SQL)
 *   text          value                        value                          value
 *   integer       digits                       ::text                         CAST AS VARCHAR
 *   decimal(p,s)  digits, s decimals           ::text (numeric keeps scale)   CAST AS VARCHAR (keeps scale)
 *   boolean       'true'/'false'               CASE                           CASE on BIT
 *   date          YYYY-MM-DD                   to_char                        CONVERT style 23
 *   timestamp     YYYY-MM-DDTHH:MM:SS.ffffffZ  to_char …US"Z"                 CONVERT style 126 + DATEPART(MICROSECOND)
 *   timestamptz   same, converted to UTC       AT TIME ZONE 'UTC'             SWITCHOFFSET(+00:00)
 *   float         shortest round trip, '3.0'   integral → digits || '.0',     refused: T-SQL has no shortest
 *                                              else float8out (PG ≥ 12)       round-trip text (style 3 prints 17 digits)
 *   binary        lowercase hex                encode(…, 'hex')               CONVERT style 2, LOWER
 *   uuid          lowercase                    ::text                         LOWER(CAST AS CHAR(36))
 *   time, json    VARCHAR cast                 ::text                         refused (formats differ)
 *
 * The row text is `name=<length>:<text>` per non-NULL column joined with `|` (concat_ws skips
 * NULLs in all three); length counts characters. On Synapse the text is hashed as UTF-8
 * (a _UTF8 collation), as DuckDB and PostgreSQL hash it.
 */
export type EngineName = 'duckdb' | 'postgres' | 'synapse';

export function canonicalTextSql(engine: EngineName, s: Pick<RollbackStyle, 'q'>, col: PlanColumn, qualifier?: string): string {
  const c = qualifier ? `${qualifier}.${s.q(col.name)}` : s.q(col.name);
  const t = col.type;
  if (engine === 'duckdb') return canonicalText({ name: col.name, type: duckTypeName(t) }, qualifier);
  if (engine === 'postgres') return pgText(c, t);
  return tsqlText(c, t, col.name);
}

function pgText(c: string, t: LogicalType): string {
  const ts = `'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'`;
  switch (t.kind) {
    case 'text':
      return `CAST(${c} AS TEXT)`;
    case 'boolean':
      return `CASE WHEN ${c} THEN 'true' ELSE 'false' END`;
    case 'date':
      return `to_char(${c}, 'YYYY-MM-DD')`;
    case 'timestamp':
      return `to_char(${c}, ${ts})`;
    case 'timestamptz':
      return `to_char(${c} AT TIME ZONE 'UTC', ${ts})`;
    case 'float':
      // DuckDB prints integral doubles below 1e16 as '3.0'; PostgreSQL prints '3' (and '1e+15').
      return `CASE WHEN ${c} = trunc(${c}) AND abs(${c}) < 1e16 THEN CAST(CAST(trunc(${c}) AS NUMERIC) AS TEXT) || '.0' ELSE CAST(${c} AS TEXT) END`;
    case 'binary':
      return `encode(${c}, 'hex')`;
    default:
      return `CAST(${c} AS TEXT)`;
  }
}

function tsqlText(c: string, t: LogicalType, name: string): string {
  const micro = (x: string) => `CONVERT(VARCHAR(19), ${x}, 126) + '.' + RIGHT('000000' + CAST(DATEPART(MICROSECOND, ${x}) AS VARCHAR(6)), 6) + 'Z'`;
  switch (t.kind) {
    case 'text':
      return `CAST(${c} AS NVARCHAR(MAX))`;
    case 'integer':
    case 'decimal':
      return `CAST(${c} AS VARCHAR(60))`;
    case 'boolean':
      return `CASE WHEN ${c} = 1 THEN 'true' ELSE 'false' END`;
    case 'date':
      return `CONVERT(VARCHAR(10), ${c}, 23)`;
    case 'timestamp':
      return micro(c);
    case 'timestamptz':
      return micro(`CONVERT(DATETIME2(6), SWITCHOFFSET(${c}, '+00:00'))`);
    case 'binary':
      return `LOWER(CONVERT(VARCHAR(MAX), ${c}, 2))`;
    case 'uuid':
      return `LOWER(CAST(${c} AS CHAR(36)))`;
    default:
      throw new TerminalError(
        `column ${name} (${t.kind}) cannot be checksummed or sampled on synapse: T-SQL has no text form equal to the other engines'; remove it from validation.checksumColumns`,
      );
  }
}

function lengthSql(engine: EngineName, text: string): string {
  // LEN ignores trailing spaces; a sentinel character keeps them counted.
  return engine === 'synapse' ? `CAST(LEN(${text} + N'.') - 1 AS VARCHAR(20))` : `CAST(length(${text}) AS VARCHAR)`;
}

/** The canonical row text of the columns, in the given order, in the engine's SQL. */
export function canonicalRowSql(engine: EngineName, s: Pick<RollbackStyle, 'q'>, columns: readonly PlanColumn[], qualifier?: string): string {
  if (columns.length === 0) return `''`;
  const parts = columns.map((col) => {
    const text = canonicalTextSql(engine, s, col, qualifier);
    const ref = qualifier ? `${qualifier}.${s.q(col.name)}` : s.q(col.name);
    const tag = col.name.replace(/'/g, "''");
    const glue = engine === 'synapse' ? ' + ' : ' || ';
    return `CASE WHEN ${ref} IS NULL THEN NULL ELSE ${[`'${tag}='`, lengthSql(engine, text), `':'`, text].join(glue)} END`;
  });
  return `concat_ws('|', ${parts.join(', ')})`;
}

/**
 * `count:sum` over a relation: the first 60 bits of md5(row text) per row, summed (the same
 * figure as transform/classify.ts checksumSql). Returns columns `n` and `s`.
 */
export function checksumStatement(engine: EngineName, s: Pick<RollbackStyle, 'q'>, columns: readonly PlanColumn[], relation: string): Statement {
  const row = canonicalRowSql(engine, s, columns);
  if (engine === 'duckdb') {
    return { sql: `SELECT count(*)::BIGINT AS n, coalesce(sum(('0x' || substr(md5(${row}), 1, 15))::BIGINT), 0)::HUGEINT AS s FROM ${relation}`, parameters: [] };
  }
  if (engine === 'postgres') {
    return {
      sql: `SELECT count(*) AS n, coalesce(sum(CAST(CAST(CAST('x' || lpad(substr(md5(${row}), 1, 15), 16, '0') AS BIT(64)) AS BIGINT) AS NUMERIC)), 0) AS s FROM ${relation}`,
      parameters: [],
    };
  }
  const hex = `LEFT(CONVERT(VARCHAR(32), HASHBYTES('MD5', CAST((${row}) COLLATE Latin1_General_100_BIN2_UTF8 AS VARCHAR(MAX))), 2), 15)`;
  return {
    sql: `SELECT COUNT_BIG(*) AS n, COALESCE(SUM(CAST(CONVERT(BIGINT, CONVERT(VARBINARY(8), '0' + ${hex}, 2)) AS DECIMAL(38, 0))), 0) AS s FROM ${relation}`,
    parameters: [],
  };
}

/** `n:s` as every engine reports it (bigint, numeric string or number). */
export function formatChecksum(r: { n: unknown; s: unknown } | undefined): string {
  const int = (v: unknown) => (v === null || v === undefined ? '0' : String(v).replace(/\.0+$/, ''));
  return `${int(r?.n)}:${int(r?.s)}`;
}
