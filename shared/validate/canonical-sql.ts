import { TerminalError } from '../errors.js';
import { duckTypeName } from '../merge/duckdb/dialect.js';
import type { LogicalType, PlanColumn } from '../merge/plan.js';
import type { Statement } from '../merge/dialect.js';
import { checksumSql } from '../canonical/row-hash.js';
import { canonicalNumberText, canonicalRowExpr, canonicalText, isBareJsonElement, type TypedColumn } from '../canonical/row-hash.js';
import type { RollbackStyle } from '../rollback/sql.js';

/**
 * The canonical text of a value (docs/design.md §7, canonical/row-hash.ts) written in each warehouse's
 * own SQL, so that a checksum or a sampled field computed inside the warehouse equals the one
 * DuckDB computed on the extract. DuckDB is the reference; the others must print the same text.
 * This module is the one T-SQL renderer of it (synapse and mssql), for the checksum and the
 * sample alike:
 *
 *   type          duckdb (reference)           postgres                       T-SQL (synapse, mssql)
 *   text          value                        value                          value, as UTF-8 (below)
 *   integer       digits                       ::text                         CAST AS VARCHAR
 *   decimal(p,s)  the number: trailing          ::text, same trim              CAST AS VARCHAR, same trim
 *                 fractional zeros dropped                                     (PATINDEX over REVERSE)
 *   boolean       'true'/'false'               CASE                           CASE on BIT
 *   date          YYYY-MM-DD                   to_char                        CONVERT style 23
 *   timestamp     YYYY-MM-DDTHH:MM:SS.ffffffZ  to_char …US"Z"                 CONVERT style 120, T put in by STUFF,
 *                                                                             + DATEPART(MICROSECOND)
 *   timestamptz   same, converted to UTC       AT TIME ZONE 'UTC'             SWITCHOFFSET(+00:00)
 *   float         shortest round trip, '3.0',  integral → digits || '.0',     refused: T-SQL has no shortest
 *                 -0.0 → '0.0'                 else float8out (PG ≥ 12)       round-trip text (style 3 prints 17 digits)
 *   binary        lowercase hex                encode(…, 'hex')               CONVERT style 2, LOWER
 *   uuid          lowercase                    ::text                         LOWER(CAST AS CHAR(36))
 *   time, json    VARCHAR cast                 ::text                         refused (formats differ)
 *   list          (hash rule 3) JSON: `[` elements `,` `]`, each `null`, bare (integer, decimal,
 *                 boolean) or a JSON string of the element's canonical text (row-hash.ts)
 *                 list_transform + to_json     unnest WITH ORDINALITY +       the column itself: T-SQL has no
 *                                              to_json, same element text     arrays, so lists land as this JSON
 *
 * The row text is `name=<length>:<text>` per non-NULL column joined with `|` (concat_ws skips
 * NULLs in all three); length counts characters. In T-SQL the text is hashed as UTF-8
 * (cast under a _UTF8 collation), as DuckDB and PostgreSQL hash it.
 *
 * T-SQL forms chosen so that SQL Server, Synapse and the Babelfish test engine all run them:
 * style 120 rather than 126 (Babelfish prints 126 with a space), and the first 60 bits of the
 * MD5 taken by binary SUBSTRING and bigint arithmetic rather than CONVERT styles 1/2 between
 * binary and varchar (Babelfish ignores the style). No such common form exists for binary
 * columns (hex text needs style 2) nor for the UTF-8 collation (Babelfish has none; its
 * varchar is UTF-8 already): those stay SQL Server's and are pinned by golden tests.
 */
export type EngineName = 'duckdb' | 'postgres' | 'synapse' | 'mssql';

const isTsql = (e: EngineName) => e === 'synapse' || e === 'mssql';

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
    case 'decimal':
      return canonicalNumberText(`CAST(${c} AS TEXT)`);
    case 'float':
      // DuckDB prints integral doubles below 1e16 as '3.0' (FLOAT too); PostgreSQL switches to
      // exponent form earlier ('1e+15', 1e7::real '1e+07'). Above 1e16 both print '1e+16'.
      // Infinity and NaN: DuckDB prints 'inf', '-inf', 'nan' (PostgreSQL's NaN = NaN is true and
      // NaN sorts above every number, so it is caught first). -0.0 = trunc(-0.0) gives '0.0'.
      return `CASE WHEN ${c} IN ('Infinity', '-Infinity', 'NaN') THEN lower(replace(CAST(${c} AS TEXT), 'Infinity', 'inf')) WHEN ${c} = trunc(${c}) AND abs(${c}) < 1e16 THEN CAST(CAST(trunc(${c}) AS NUMERIC) AS TEXT) || '.0' ELSE CAST(${c} AS TEXT) END`;
    case 'binary':
      return `encode(${c}, 'hex')`;
    case 'list': {
      const text = pgText('_tm_e', t.element);
      const json = isBareJsonElement(duckTypeName(t.element)) ? text : `CAST(to_json(${text}) AS TEXT)`;
      const elements = `ARRAY(SELECT CASE WHEN _tm_e IS NULL THEN 'null' ELSE ${json} END FROM unnest(${c}) WITH ORDINALITY AS _tm_u(_tm_e, _tm_i) ORDER BY _tm_i)`;
      return `CASE WHEN ${c} IS NULL THEN NULL ELSE '[' || array_to_string(${elements}, ',') || ']' END`;
    }
    default:
      return `CAST(${c} AS TEXT)`;
  }
}

/**
 * canonicalNumberText in T-SQL: fractional trailing zeros and then a bare point dropped
 * (`1.50` → `1.5`, `2.00` → `2`, `100` stays). Synapse has no RTRIM(x, chars) (SQL Server
 * 2022 only), so the last non-zero character is found with PATINDEX over REVERSE.
 */
function tsqlNumberText(x: string): string {
  const y = `LEFT(${x}, LEN(${x}) - PATINDEX('%[^0]%', REVERSE(${x})) + 1)`;
  return `CASE WHEN CHARINDEX('.', ${x}) > 0 THEN CASE WHEN RIGHT(${y}, 1) = '.' THEN LEFT(${y}, LEN(${y}) - 1) ELSE ${y} END ELSE ${x} END`;
}

function tsqlText(c: string, t: LogicalType, name: string): string {
  const micro = (x: string) => `STUFF(CONVERT(VARCHAR(19), ${x}, 120), 11, 1, 'T') + '.' + RIGHT('000000' + CAST(DATEPART(MICROSECOND, ${x}) AS VARCHAR(6)), 6) + 'Z'`;
  switch (t.kind) {
    case 'text':
      return `CAST(${c} AS NVARCHAR(MAX))`;
    case 'integer':
      return `CAST(${c} AS VARCHAR(60))`;
    case 'decimal':
      return tsqlNumberText(`CAST(${c} AS VARCHAR(60))`);
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
    case 'list':
      // Landed as the canonical JSON text itself (synapse warehouse insertStage).
      return `CAST(${c} AS NVARCHAR(MAX))`;
    default:
      throw new TerminalError(
        `column ${name} (${t.kind}) cannot be checksummed or sampled on a T-SQL warehouse: T-SQL has no text form equal to DuckDB's for ${t.kind}; remove it from validation.checksumColumns, or cast it in transform.sql (e.g. to a decimal or text)`,
      );
  }
}

function lengthSql(engine: EngineName, text: string): string {
  // LEN ignores trailing spaces; a sentinel character keeps them counted.
  return isTsql(engine) ? `CAST(LEN(${text} + N'.') - 1 AS VARCHAR(20))` : `CAST(length(${text}) AS VARCHAR)`;
}

const duckColumns = (columns: readonly PlanColumn[]): TypedColumn[] => columns.map((c) => ({ name: c.name, type: duckTypeName(c.type) }));

/**
 * The canonical row text of the columns, in the given order, in the engine's SQL. On DuckDB it
 * is canonical/row-hash.ts's own expression, the one the row hash is computed from.
 */
export function canonicalRowSql(engine: EngineName, s: Pick<RollbackStyle, 'q'>, columns: readonly PlanColumn[], qualifier?: string): string {
  if (engine === 'duckdb') return canonicalRowExpr(duckColumns(columns), qualifier);
  if (columns.length === 0) return `''`;
  const parts = columns.map((col) => {
    const text = canonicalTextSql(engine, s, col, qualifier);
    const ref = qualifier ? `${qualifier}.${s.q(col.name)}` : s.q(col.name);
    const tag = col.name.replace(/'/g, "''");
    const glue = isTsql(engine) ? ' + ' : ' || ';
    return `CASE WHEN ${ref} IS NULL THEN NULL ELSE ${[`'${tag}='`, lengthSql(engine, text), `':'`, text].join(glue)} END`;
  });
  return `concat_ws('|', ${parts.join(', ')})`;
}

/**
 * `count:sum` over a relation: the first 60 bits of md5(row text) per row, summed (the same
 * figure as canonical/row-hash.ts checksumSql). Returns columns `n` and `s`.
 */
export function checksumStatement(engine: EngineName, s: Pick<RollbackStyle, 'q'>, columns: readonly PlanColumn[], relation: string): Statement {
  // DuckDB's is the transform's own checksum (canonical/row-hash.ts), the reference figure.
  if (engine === 'duckdb') return { sql: checksumSql(duckColumns(columns), relation), parameters: [] };
  const row = canonicalRowSql(engine, s, columns);
  if (engine === 'postgres') {
    return {
      sql: `SELECT count(*) AS n, coalesce(sum(CAST(CAST(CAST('x' || lpad(substr(md5(${row}), 1, 15), 16, '0') AS BIT(64)) AS BIGINT) AS NUMERIC)), 0) AS s FROM ${relation}`,
      parameters: [],
    };
  }
  // The first 15 hex digits of the MD5 = its first 7 bytes (a positive bigint) * 16 + the high
  // nibble of byte 8. The sum leaves as text: a decimal(38,0) does not fit a JavaScript number.
  const md5 = `HASHBYTES('MD5', CAST((${row}) COLLATE Latin1_General_100_BIN2_UTF8 AS VARCHAR(MAX)))`;
  const first60 = `CAST(SUBSTRING(_tm_h, 1, 7) AS BIGINT) * 16 + CAST(SUBSTRING(_tm_h, 8, 1) AS INT) / 16`;
  return {
    sql: `SELECT CAST(COUNT_BIG(*) AS VARCHAR(20)) AS n, CAST(COALESCE(SUM(CAST(${first60} AS DECIMAL(38, 0))), 0) AS VARCHAR(40)) AS s FROM (SELECT ${md5} AS _tm_h FROM ${relation}) AS _tm_m`,
    parameters: [],
  };
}

/**
 * `n:s` as every engine reports it: bigint or decimal text, exactly. A sum of 60-bit hashes
 * passes 2^53 after a few rows, so a JS number past that has lost digits: refused, naming the
 * fix, rather than compared (it would mismatch, or worse, match by accident).
 */
export function formatChecksum(r: { n: unknown; s: unknown } | undefined): string {
  const int = (v: unknown, what: string): string => {
    if (v === null || v === undefined) return '0';
    if (typeof v === 'number' && !Number.isSafeInteger(v)) {
      throw new TerminalError(`checksum ${what} ${v} came back as a number past 2^53, where a JavaScript number loses digits; the checksum query must return it as text or bigint (CAST it to a string type)`);
    }
    const t = String(v).replace(/\.0+$/, '');
    if (!/^-?\d+$/.test(t)) throw new TerminalError(`checksum ${what} ${JSON.stringify(String(v))} is not an integer`);
    return t;
  };
  return `${int(r?.n, 'count')}:${int(r?.s, 'sum')}`;
}
