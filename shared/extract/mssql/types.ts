import { TerminalError } from '../../errors.js';
import { castFromText, type ColumnPlan } from '../column-plan.js';
import { quoteMssql } from './quote.js';

/** One row of sp_describe_first_result_set (the columns we use). */
export interface MssqlColumnInfo {
  name: string;
  /** e.g. `decimal(18,4)`, `datetime2(7)`, `nvarchar(max)`, `timestamp` (= rowversion). */
  system_type_name: string;
}

/**
 * The column's full type from a sp_describe_first_result_set row, taken from the row's own
 * precision / scale / max_length columns ("sp_describe_first_result_set (Transact-SQL)", result
 * set): more robust than parsing system_type_name, which some engines print without arguments
 * (Babelfish: `decimal`, not `decimal(12,2)`). A row without those columns keeps its name.
 */
export function describedColumn(r: Record<string, unknown>): MssqlColumnInfo {
  const name = String(r.name);
  const raw = String(r.system_type_name);
  const num = (v: unknown) => (v === null || v === undefined || v === '' ? undefined : Number(v));
  const precision = num(r.precision);
  const scale = num(r.scale);
  const maxLength = num(r.max_length);
  const base = raw.replace(/\(.*$/, '').trim().toLowerCase();
  if (precision === undefined && scale === undefined && maxLength === undefined) return { name, system_type_name: raw };
  const len = (perChar: number) => (maxLength === undefined ? raw : maxLength === -1 ? `${base}(max)` : `${base}(${maxLength / perChar})`);
  switch (base) {
    case 'decimal':
    case 'numeric':
      return { name, system_type_name: precision === undefined ? raw : `${base}(${precision},${scale ?? 0})` };
    case 'datetime2':
    case 'time':
    case 'datetimeoffset':
      return { name, system_type_name: scale === undefined ? raw : `${base}(${scale})` };
    case 'float':
      return { name, system_type_name: precision === undefined ? raw : `float(${precision})` };
    case 'char':
    case 'varchar':
    case 'binary':
    case 'varbinary':
      return { name, system_type_name: len(1) };
    case 'nchar':
    case 'nvarchar':
      return { name, system_type_name: len(2) };
    default:
      return { name, system_type_name: base };
  }
}

export interface MssqlColumnPlan extends ColumnPlan {
  /** T-SQL expression that renders the column as exact text; `ref` is the quoted column. */
  select: (ref: string) => string;
}

const asText = (len: string) => (ref: string) => `CAST(${ref} AS varchar(${len}))`;
const verbatim = (ref: string) => ref;

function parseType(t: string): { base: string; args: number[] } {
  const m = /^\s*([a-z0-9_ ]+?)\s*(?:\(([^)]*)\))?\s*$/i.exec(t);
  if (!m) return { base: t.toLowerCase(), args: [] };
  const args = (m[2] ?? '')
    .split(',')
    .map((a) => a.trim())
    .filter((a) => a !== '' && a.toLowerCase() !== 'max')
    .map(Number);
  return { base: m[1]!.toLowerCase(), args };
}

/**
 * SQL Server type → text rendering (T-SQL) → DuckDB/Parquet type. Sources for the renderings:
 * CAST and CONVERT styles in the T-SQL docs ("CAST and CONVERT", styles 2, 3, 23, 126) and the
 * ranges in "Data types (Transact-SQL)". Times are 100 ns in SQL Server (scale 7) and µs in
 * DuckDB's TIMESTAMP/TIME, so scale 7 maps to the _NS types.
 */
export function mssqlColumnPlan(col: MssqlColumnInfo): MssqlColumnPlan {
  const { base, args } = parseType(col.system_type_name);
  const plan = (duckType: string, select: (ref: string) => string, fromText = castFromText(duckType)): MssqlColumnPlan => ({
    name: col.name,
    sourceType: col.system_type_name,
    duckType,
    select,
    fromText,
  });
  switch (base) {
    case 'bit':
      return plan('BOOLEAN', asText('1'), (c) => `(${c} = '1')`);
    case 'tinyint':
      return plan('UTINYINT', asText('3'));
    case 'smallint':
      return plan('SMALLINT', asText('6'));
    case 'int':
      return plan('INTEGER', asText('11'));
    case 'bigint':
      return plan('BIGINT', asText('20'));
    case 'decimal':
    case 'numeric': {
      const [p = 18, s = 0] = args;
      return plan(`DECIMAL(${p},${s})`, asText('41'));
    }
    // Style 2 keeps all four decimals of money (the default style rounds to two).
    case 'money':
      return plan('DECIMAL(19,4)', (r) => `CONVERT(varchar(30), ${r}, 2)`);
    case 'smallmoney':
      return plan('DECIMAL(10,4)', (r) => `CONVERT(varchar(30), ${r}, 2)`);
    // Style 3: 17 significant digits, enough to round-trip a double (SQL Server 2016+).
    case 'float':
      return plan((args[0] ?? 53) <= 24 ? 'FLOAT' : 'DOUBLE', (r) => `CONVERT(varchar(30), ${r}, 3)`);
    case 'real':
      return plan('FLOAT', (r) => `CONVERT(varchar(30), ${r}, 3)`);
    case 'date':
      return plan('DATE', (r) => `CONVERT(char(10), ${r}, 23)`);
    case 'time': {
      const scale = args[0] ?? 7;
      return plan(scale > 6 ? 'TIME_NS' : 'TIME', asText('16'));
    }
    case 'datetime':
    case 'smalldatetime':
      return plan('TIMESTAMP', (r) => `CONVERT(varchar(27), ${r}, 126)`);
    case 'datetime2': {
      const scale = args[0] ?? 7;
      return plan(scale > 6 ? 'TIMESTAMP_NS' : 'TIMESTAMP', (r) => `CONVERT(varchar(27), ${r}, 126)`);
    }
    case 'datetimeoffset': {
      // Rendered as the UTC instant. DuckDB has no nanosecond TIMESTAMPTZ, so scale 7 keeps
      // its 100 ns as a TIMESTAMP_NS in UTC; lower scales become TIMESTAMPTZ. Like any
      // TIMESTAMPTZ, the original offset is not kept; the instant is exact.
      const scale = args[0] ?? 7;
      const utc = (r: string) => `CONVERT(varchar(27), CAST(SWITCHOFFSET(${r}, '+00:00') AS datetime2(7)), 126)`;
      return scale > 6 ? plan('TIMESTAMP_NS', utc) : plan('TIMESTAMPTZ', utc, (c) => `CAST(${c} || '+00' AS TIMESTAMPTZ)`);
    }
    case 'uniqueidentifier':
      return plan('UUID', asText('36'));
    case 'binary':
    case 'varbinary':
    case 'image':
    case 'timestamp':
    case 'rowversion':
      // Style 2: hex without 0x, every byte.
      return plan('BLOB', (r) => `CONVERT(varchar(max), CAST(${r} AS varbinary(max)), 2)`, (c) => `from_hex(${c})`);
    case 'char':
    case 'varchar':
    case 'text':
    case 'nchar':
    case 'nvarchar':
    case 'ntext':
    case 'sysname':
      return plan('VARCHAR', verbatim);
    case 'xml':
      return plan('VARCHAR', (r) => `CAST(${r} AS nvarchar(max))`);
    default:
      throw new TerminalError(
        `column ${col.name} has SQL Server type ${col.system_type_name}, which tidemark cannot extract without loss; convert it in source.query (e.g. CAST(${quoteMssql(col.name)} AS nvarchar(max)))`,
      );
  }
}
