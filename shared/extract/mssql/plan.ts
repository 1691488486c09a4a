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

export function planCaptureCdc(p: PipelineConfig, captureInstance: string = captureInstanceOf(p)): MssqlStatement {
  return {
    sql: 'SELECT CONVERT(varchar(22), sys.fn_cdc_get_min_lsn(@capture), 1) AS min_lsn, CONVERT(varchar(22), sys.fn_cdc_get_max_lsn(), 1) AS max_lsn',
    parameters: [{ name: 'capture', value: captureInstance }],
  };
}

/**
 * Every capture instance of the table with the columns it captures (a table has at most two),
 * newest first. The change functions return the capture instance's columns, fixed when it was
 * created, not the table's: a column added later is not in them.
 */
export function planCaptureInstances(p: PipelineConfig): MssqlStatement {
  const t = splitQualified(requireTable(p));
  return {
    sql:
      'SELECT ct.capture_instance AS capture_instance, CONVERT(varchar(22), ct.start_lsn, 1) AS start_lsn, CONVERT(varchar(27), ct.create_date, 126) AS created, cc.column_name AS column_name ' +
      'FROM cdc.change_tables AS ct JOIN cdc.captured_columns AS cc ON cc.object_id = ct.object_id ' +
      'WHERE ct.source_object_id = OBJECT_ID(@table) ORDER BY ct.create_date DESC, ct.capture_instance, cc.column_ordinal',
    parameters: [{ name: 'table', value: `${q(t.schema ?? 'dbo')}.${q(t.name)}` }],
  };
}

export interface CaptureInstance {
  name: string;
  startLsn: string;
  created: string;
  columns: string[];
}

/** Rows of planCaptureInstances, one entry per capture instance, newest first. */
export function groupCaptureInstances(rows: ReadonlyArray<Record<string, unknown>>): CaptureInstance[] {
  const out: CaptureInstance[] = [];
  for (const r of rows) {
    const name = String(r.capture_instance);
    let ci = out.find((x) => x.name === name);
    if (!ci) out.push((ci = { name, startLsn: String(r.start_lsn), created: String(r.created), columns: [] }));
    ci.columns.push(String(r.column_name));
  }
  return out;
}

export interface CaptureChoice {
  instance: CaptureInstance;
  /** The table's columns the capture instance has, in table order: the select list of every read. */
  columns: MssqlColumnPlan[];
  /** Said in the run's warnings: which instance was chosen among several, and columns it lacks. */
  notes: Array<{ event: 'CaptureInstance' | 'CaptureDrift'; message: string }>;
}

/**
 * The capture instance a CDC read uses. `captureInstance` in config wins. Otherwise, of the
 * instances that cover the pipeline (every key column, and every column the pipeline names,
 * captured), the newest whose changes reach back to the saved LSN `from`, so that rolling a
 * second capture instance loses nothing: the old one is read until the watermark passes the new
 * one's start, then the new one. If none reaches back, the newest (the gap re-snapshots).
 */
export function chooseCaptureInstance(
  p: PipelineConfig,
  instances: readonly CaptureInstance[],
  tableColumns: readonly MssqlColumnPlan[],
  from: string | null,
  compareLsn: (a: string, b: string) => number,
): CaptureChoice {
  const table = requireTable(p);
  const t = splitQualified(table);
  const lower = (xs: readonly string[]) => new Set(xs.map((x) => x.toLowerCase()));
  if (instances.length === 0) {
    throw new TerminalError(
      `CDC is not enabled on table ${table}: it has no capture instance in cdc.change_tables; run EXEC sys.sp_cdc_enable_table @source_schema = N'${t.schema ?? 'dbo'}', @source_name = N'${t.name}', @role_name = NULL`,
    );
  }
  const cd = p.source.changeDetection;
  const named = [
    ...p.key,
    ...(Array.isArray(p.target.trackedColumns) ? p.target.trackedColumns : []),
    ...p.target.type1Columns,
    ...(typeof p.target.validFrom === 'object' ? [p.target.validFrom.column] : []),
  ];
  const missing = (ci: CaptureInstance) => named.filter((c) => !lower(ci.columns).has(c.toLowerCase()));
  let instance: CaptureInstance;
  const notes: CaptureChoice['notes'] = [];
  const list = instances.map((ci) => ci.name).join(', ');
  if (cd.captureInstance) {
    const found = instances.find((ci) => ci.name.toLowerCase() === cd.captureInstance!.toLowerCase());
    if (!found) {
      throw new TerminalError(
        `pipelines/${p.name}.yaml: source.changeDetection.captureInstance ${cd.captureInstance} is not a capture instance of ${table} (it has: ${list}); name one of them, or leave it out to take the newest that covers the pipeline`,
      );
    }
    instance = found;
  } else {
    const covering = instances.filter((ci) => missing(ci).length === 0);
    if (covering.length === 0) {
      throw new TerminalError(
        `no capture instance of ${table} captures the columns ${p.name} needs (${instances.map((ci) => `${ci.name} lacks ${missing(ci).join(', ')}`).join('; ')}); roll a capture instance that captures them (README, CDC)`,
      );
    }
    const reaches = covering.filter((ci) => from === null || compareLsn(ci.startLsn, from) <= 0);
    instance = reaches[0] ?? covering[0]!;
    if (instances.length > 1) {
      const why =
        from === null
          ? 'the newest that covers the pipeline'
          : reaches[0]
            ? `the newest that covers the pipeline whose changes reach back to the saved LSN ${from}`
            : `the newest that covers the pipeline; none reaches back to the saved LSN ${from}, so the run re-snapshots`;
      notes.push({ event: 'CaptureInstance', message: `${p.name}: ${table} has capture instances ${list}; reading ${instance.name}, ${why}` });
    }
  }
  const captured = lower(instance.columns);
  const columns = tableColumns.filter((c) => captured.has(c.name.toLowerCase()));
  const uncaptured = tableColumns.filter((c) => !captured.has(c.name.toLowerCase())).map((c) => c.name);
  if (uncaptured.length > 0) {
    const next = `${instance.name}_v2`;
    notes.push({
      event: 'CaptureDrift',
      message:
        `${p.name}: column(s) ${uncaptured.join(', ')} of ${table} are not captured by capture instance ${instance.name} (added after it was created), so they are not read. ` +
        `To read them, roll a second capture instance: EXEC sys.sp_cdc_enable_table @source_schema = N'${t.schema ?? 'dbo'}', @source_name = N'${t.name}', @role_name = NULL, @capture_instance = N'${next}'; ` +
        `tidemark switches to it once the saved LSN passes its start (or set source.changeDetection.captureInstance: ${next}); ` +
        `then EXEC sys.sp_cdc_disable_table @source_schema = N'${t.schema ?? 'dbo'}', @source_name = N'${t.name}', @capture_instance = N'${instance.name}'`,
    });
  }
  if (columns.length === 0) throw new TerminalError(`capture instance ${instance.name} captures none of the columns ${table} has now (${tableColumns.map((c) => c.name).join(', ')})`);
  return { instance, columns, notes };
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
export function planCdc(p: PipelineConfig, columns: readonly MssqlColumnPlan[], w: { from: string; to: string }, captureInstance: string = captureInstanceOf(p)): MssqlStatement {
  const fn = `cdc.${q(`fn_cdc_get_net_changes_${captureInstance}`)}`;
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
