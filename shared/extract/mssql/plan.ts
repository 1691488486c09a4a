import type { PipelineConfig } from '../../config/schema.js';
import { splitQualified } from '../../config/identifiers.js';
import { TerminalError } from '../../errors.js';
import { SOURCE_OP_COLUMN, type KeyRange } from '../source.js';
import { quoteMssql, quoteMssqlQualified } from './quote.js';
import type { MssqlColumnPlan } from './types.js';

/**
 * Pure planners for the SQL Server source: every statement is `{ sql, parameters }` with the
 * values bound as named parameters (always strings; SQL Server converts them with an explicit
 * style, so no value goes through a JS number or Date). Identifiers come from validated config
 * and are quoted with quoteMssql.
 */
export interface MssqlParam {
  name: string;
  value: string | null;
}

export interface MssqlStatement {
  sql: string;
  parameters: MssqlParam[];
}

const q = quoteMssql;

function requireTable(p: PipelineConfig): string {
  if (!p.source.table) {
    throw new TerminalError(
      `pipelines/${p.name}.yaml: source.changeDetection.mode ${p.source.changeDetection.mode} reads the change functions of one table; set source.table instead of source.query`,
    );
  }
  return p.source.table;
}

/** The relation every mode selects from when reading rows of the table (or the user's query). */
export function mssqlRelation(p: PipelineConfig): string {
  return p.source.table ? quoteMssqlQualified(p.source.table) : `(${p.source.query}) AS _tm_q`;
}

/** Column types of what the pipeline reads, from the engine itself (works for tables and queries). */
export function planDescribe(p: PipelineConfig): MssqlStatement {
  const tsql = p.source.table ? `SELECT * FROM ${quoteMssqlQualified(p.source.table)}` : p.source.query!;
  return {
    sql: 'EXEC sys.sp_describe_first_result_set @tsql = @tsql, @params = NULL, @browse_information_mode = 0',
    parameters: [{ name: 'tsql', value: tsql }],
  };
}

function selectList(columns: readonly MssqlColumnPlan[], alias: string, aliasFor?: (c: MssqlColumnPlan) => string): string {
  return columns.map((c) => `${c.select(`${aliasFor ? aliasFor(c) : alias}.${q(c.name)}`)} AS ${q(c.name)}`).join(', ');
}

/** Strips the `Z` of our UTC watermarks: style 126 converts `yyyy-mm-ddThh:mi:ss.fffffff` exactly. */
function isoParam(iso: string): string {
  return iso.replace(/Z$/, '');
}

/* ---------------- upper bounds, captured before reading ---------------- */

/**
 * The window's upper bound as UTC text `yyyy-mm-ddThh:mi:ss.fffffff` (the source appends `Z`),
 * from the change column's own type. A `datetimeoffset` is switched to +00:00 first: style 126
 * would print its local time without the offset, putting the watermark ahead of the instant by
 * the offset. Every type goes through datetime2(7), so `datetime` (1/300 s) is captured at the
 * value the window's `<= CONVERT(datetime2(7), @to, 126)` compares it with. The window's bounds
 * compare a `datetimeoffset` column as instants (a datetime2 converts to +00:00).
 */
export function planCaptureTimestamp(p: PipelineConfig, columns: readonly MssqlColumnPlan[]): MssqlStatement {
  const col = p.source.changeDetection.column!;
  const found = columns.find((c) => c.name.toLowerCase() === col.toLowerCase());
  if (!found) {
    throw new TerminalError(
      `pipelines/${p.name}.yaml: source.changeDetection.column ${col} is not a column of ${p.source.table ?? 'source.query'} (columns: ${columns.map((c) => c.name).join(', ')}); name one of them`,
    );
  }
  const base = /^\s*([a-z0-9_]+)/i.exec(found.sourceType)?.[1]?.toLowerCase() ?? '';
  const max = `MAX(${q(col)})`;
  let utc: string;
  if (base === 'datetimeoffset') utc = `SWITCHOFFSET(${max}, '+00:00')`;
  else if (TIMESTAMP_TYPES.has(base)) utc = max;
  else {
    throw new TerminalError(
      `pipelines/${p.name}.yaml: timestamp mode needs a date / time change column; ${col} is ${found.sourceType}. Use a datetime2, datetime, smalldatetime, datetimeoffset or date column, or rowversion mode for a rowversion column`,
    );
  }
  return { sql: `SELECT CONVERT(varchar(27), CAST(${utc} AS datetime2(7)), 126) AS upper FROM ${mssqlRelation(p)}`, parameters: [] };
}

/** Column types timestamp mode compares as UTC wall-clock times (the README says so). */
const TIMESTAMP_TYPES = new Set(['datetime2', 'datetime', 'smalldatetime', 'date']);

/** MIN_ACTIVE_ROWVERSION(): rows below it are committed, so reading up to it skips no open transaction. */
export function planCaptureRowversion(): MssqlStatement {
  return { sql: 'SELECT CONVERT(varchar(20), MIN_ACTIVE_ROWVERSION(), 1) AS upper', parameters: [] };
}

export function captureInstanceOf(p: PipelineConfig): string {
  const cd = p.source.changeDetection;
  if (cd.captureInstance) return cd.captureInstance;
  const t = splitQualified(requireTable(p));
  // SQL Server's default capture instance name is <schema>_<table>.
  return `${t.schema ?? 'dbo'}_${t.name}`;
}

export function planCaptureCdc(p: PipelineConfig): MssqlStatement {
  return {
    sql: 'SELECT CONVERT(varchar(22), sys.fn_cdc_get_min_lsn(@capture), 1) AS min_lsn, CONVERT(varchar(22), sys.fn_cdc_get_max_lsn(), 1) AS max_lsn',
    parameters: [{ name: 'capture', value: captureInstanceOf(p) }],
  };
}

export function planCaptureChangeTracking(p: PipelineConfig): MssqlStatement {
  const t = splitQualified(requireTable(p));
  return {
    sql: 'SELECT CAST(CHANGE_TRACKING_CURRENT_VERSION() AS varchar(20)) AS current_version, CAST(CHANGE_TRACKING_MIN_VALID_VERSION(OBJECT_ID(@table)) AS varchar(20)) AS min_valid',
    parameters: [{ name: 'table', value: `${q(t.schema ?? 'dbo')}.${q(t.name)}` }],
  };
}

/* ---------------- row reads ---------------- */

export function planFull(p: PipelineConfig, columns: readonly MssqlColumnPlan[], range?: KeyRange): MssqlStatement {
  const { from, alias } = relAlias(p);
  if (!range) return { sql: `SELECT ${selectList(columns, alias)} FROM ${from}`, parameters: [] };
  const k = `${alias}.${q(range.column)}`;
  return {
    sql: `SELECT ${selectList(columns, alias)} FROM ${from} WHERE ${k} >= CAST(@lo AS decimal(38,0)) AND ${k} ${range.last ? '<=' : '<'} CAST(@hi AS decimal(38,0))`,
    parameters: [
      { name: 'lo', value: range.lo },
      { name: 'hi', value: range.hi },
    ],
  };
}

/** min / max / count of the partition column of a partitioned full read. */
export function planKeyStats(p: PipelineConfig, column: string): MssqlStatement {
  const k = q(column);
  return {
    sql: `SELECT CAST(MIN(${k}) AS varchar(40)) AS mn, CAST(MAX(${k}) AS varchar(40)) AS mx, CAST(COUNT_BIG(*) AS varchar(20)) AS n FROM ${mssqlRelation(p)}`,
    parameters: [],
  };
}

function relAlias(p: PipelineConfig): { from: string; alias: string } {
  return p.source.table ? { from: `${mssqlRelation(p)} AS _tm_src`, alias: '_tm_src' } : { from: mssqlRelation(p), alias: '_tm_q' };
}

/** `column > from AND column <= to`; from is the saved watermark minus lag, to the captured max. */
export function planTimestamp(p: PipelineConfig, columns: readonly MssqlColumnPlan[], w: { from: string | null; to: string }): MssqlStatement {
  const col = p.source.changeDetection.column!;
  const { from, alias } = relAlias(p);
  const parameters: MssqlParam[] = [];
  const where: string[] = [];
  if (w.from !== null) {
    parameters.push({ name: 'from', value: isoParam(w.from) });
    where.push(`${alias}.${q(col)} > CONVERT(datetime2(7), @from, 126)`);
  }
  parameters.push({ name: 'to', value: isoParam(w.to) });
  where.push(`${alias}.${q(col)} <= CONVERT(datetime2(7), @to, 126)`);
  return { sql: `SELECT ${selectList(columns, alias)} FROM ${from} WHERE ${where.join(' AND ')}`, parameters };
}

/** `rv >= saved AND rv < MIN_ACTIVE_ROWVERSION()` as captured: the next run starts where this one stopped. */
export function planRowversion(p: PipelineConfig, columns: readonly MssqlColumnPlan[], w: { from: string | null; to: string }): MssqlStatement {
  const col = rowversionColumn(p);
  const { from, alias } = relAlias(p);
  const parameters: MssqlParam[] = [];
  const where: string[] = [];
  if (w.from !== null) {
    parameters.push({ name: 'from', value: w.from });
    where.push(`${alias}.${q(col)} >= CONVERT(binary(8), @from, 1)`);
  }
  parameters.push({ name: 'to', value: w.to });
  where.push(`${alias}.${q(col)} < CONVERT(binary(8), @to, 1)`);
  return { sql: `SELECT ${selectList(columns, alias)} FROM ${from} WHERE ${where.join(' AND ')}`, parameters };
}

export function rowversionColumn(p: PipelineConfig): string {
  const col = p.source.changeDetection.column;
  if (!col) {
    throw new TerminalError(`pipelines/${p.name}.yaml: rowversion mode needs source.changeDetection.column, the rowversion column of ${p.source.table ?? 'the query'}`);
  }
  return col;
}

/** Upper bound for a count of what the target should hold after a rowversion read. */
export function planCountRowversion(p: PipelineConfig, to: string): MssqlStatement {
  return { sql: `SELECT COUNT_BIG(*) AS n FROM ${mssqlRelation(p)} WHERE ${q(rowversionColumn(p))} < CONVERT(binary(8), @to, 1)`, parameters: [{ name: 'to', value: to }] };
}

export function planCountTimestamp(p: PipelineConfig, to: string): MssqlStatement {
  return {
    sql: `SELECT COUNT_BIG(*) AS n FROM ${mssqlRelation(p)} WHERE ${q(p.source.changeDetection.column!)} <= CONVERT(datetime2(7), @to, 126)`,
    parameters: [{ name: 'to', value: isoParam(to) }],
  };
}

/**
 * Net changes from the LSN after the saved one up to the captured max LSN. `__$operation`:
 * 1 delete, 2 insert, 4 update (net changes with row filter 'all'); a deleted row carries its
 * last values, of which only the key is used.
 */
export function planCdc(p: PipelineConfig, columns: readonly MssqlColumnPlan[], w: { from: string; to: string }): MssqlStatement {
  const fn = `cdc.${q(`fn_cdc_get_net_changes_${captureInstanceOf(p)}`)}`;
  return {
    sql:
      `SELECT ${selectList(columns, 'ct')}, CASE ct.[__$operation] WHEN 1 THEN 'delete' WHEN 2 THEN 'insert' WHEN 4 THEN 'update' END AS ${q(SOURCE_OP_COLUMN)} ` +
      `FROM ${fn}(sys.fn_cdc_increment_lsn(CONVERT(binary(10), @from, 1)), CONVERT(binary(10), @to, 1), N'all') AS ct`,
    parameters: [
      { name: 'from', value: w.from },
      { name: 'to', value: w.to },
    ],
  };
}

/**
 * Changes after the saved version up to the captured current version. The key comes from the
 * change table (a deleted row has no row in the table); other columns are the row's current
 * values. Rows changed again after `to` are left for the next run, which reads from `to`.
 */
export function planChangeTracking(p: PipelineConfig, columns: readonly MssqlColumnPlan[], w: { from: string; to: string }): MssqlStatement {
  const table = quoteMssqlQualified(requireTable(p));
  const keys = new Set(p.key);
  for (const k of p.key) {
    if (!columns.some((c) => c.name === k)) {
      throw new TerminalError(`pipelines/${p.name}.yaml: key column ${k} is not a column of ${p.source.table}; Change Tracking needs the table's primary key as key`);
    }
  }
  return {
    sql:
      `SELECT ${selectList(columns, 't', (c) => (keys.has(c.name) ? 'ct' : 't'))}, CASE ct.SYS_CHANGE_OPERATION WHEN 'D' THEN 'delete' WHEN 'I' THEN 'insert' ELSE 'update' END AS ${q(SOURCE_OP_COLUMN)} ` +
      `FROM CHANGETABLE(CHANGES ${table}, CAST(@from AS bigint)) AS ct LEFT JOIN ${table} AS t ON ${p.key.map((k) => `t.${q(k)} = ct.${q(k)}`).join(' AND ')} ` +
      `WHERE ct.SYS_CHANGE_VERSION <= CAST(@to AS bigint)`,
    parameters: [
      { name: 'from', value: w.from },
      { name: 'to', value: w.to },
    ],
  };
}
