/**
 * What introspection learns about one source table, and the change detection it supports.
 * Pure: the introspectors under introspect/ fill a TableProfile; everything here only reads it.
 */
import { quoteMssql } from '../extract/mssql/quote.js';
import { pgStyle } from '../merge/postgres/dialect.js';
import { quoteDuck } from '../duckdb/session.js';

export type SourceKind = 'duckdb' | 'postgres' | 'mssql';

export interface ColumnProfile {
  name: string;
  /** The engine's own type name, as its catalog prints it. */
  type: string;
  /** A date-time column (not SQL Server's `timestamp`, which is a rowversion). */
  temporal: boolean;
}

export interface TableProfile {
  schema: string | null;
  name: string;
  columns: ColumnProfile[];
  /** Primary key columns in key order; empty when the table has none. */
  primaryKey: string[];
  /** Rows (catalog statistics, or a count where the engine keeps none); null when unknown. */
  rowCount: number | null;
  /** Bytes on disk (data + indexes); null when the engine does not say per table. */
  bytes: number | null;
  /** Columns that lead an index, so a range read on them seeks instead of scanning. */
  indexedColumns: string[];
  /**
   * DuckDB: min/max per row group skip what a window does not touch. Without `zoneMapReach`
   * for a column, every column counts as indexed.
   */
  zoneMaps?: boolean;
  /**
   * DuckDB, per date-time column: of the table's row groups, how many a window starting at the
   * newest row group's smallest value still reads (their max is not below it). Sorted or
   * append-only data reads one; rows updated in place put new values in every row group.
   */
  zoneMapReach?: Record<string, { rowGroups: number; touched: number }>;
  rowversionColumn?: string;
  /** SQL Server CDC enabled on the table. retentionMinutes: the cleanup job's retention. */
  cdc?: { captureInstance: string; retentionMinutes: number | null };
  /** SQL Server Change Tracking enabled on the table. */
  changeTracking?: { retentionMinutes: number | null };
}

export type ProposedMode = 'cdc' | 'changeTracking' | 'rowversion' | 'timestamp' | 'full';

export interface Proposal {
  mode: ProposedMode;
  column?: string;
  captureInstance?: string;
  /** One line: why this mode for this table. */
  why: string;
  /** What the chosen mode costs. */
  tradeoff: string;
  /** What the other modes would give and cost for this table, one line each. */
  alternatives: string[];
  /** Things the user must act on (shown on the terminal too). */
  warnings: string[];
}

/** A name that says "last modified": modified / updated / changed, in any casing or style. */
export const MODIFIED_AT_NAME = /(modif|updat|chang)/i;

export function qualifiedTableName(t: Pick<TableProfile, 'schema' | 'name'>): string {
  return t.schema ? `${t.schema}.${t.name}` : t.name;
}

/**
 * Whether a range read on `column` (a window `column > last`) can skip most of the table: an
 * index that leads with it, or (DuckDB) zone maps whose row groups are ordered on it, i.e. a
 * window from the newest row group reads at most half of them (a table of one row group is
 * read whole anyway).
 */
export function rangeReadIsCheap(t: TableProfile, column: string): boolean {
  if (t.indexedColumns.includes(column)) return true;
  if (t.zoneMaps !== true) return false;
  const reach = t.zoneMapReach?.[column];
  return reach === undefined || reach.rowGroups <= 1 || reach.touched * 2 <= reach.rowGroups;
}

/**
 * What makes the incremental window on `column` of `t` cheap on this source, as the one line
 * `plan` and `doctor` print when nothing does: the index to create, with the table and column
 * quoted for the source's dialect, or for DuckDB (no range index) how to keep the row groups
 * ordered. undefined when the read is cheap already.
 */
export function windowScanAdvice(t: TableProfile, kind: SourceKind, column: string): string | undefined {
  if (rangeReadIsCheap(t, column)) return undefined;
  const table = qualifiedTableName(t);
  if (kind === 'duckdb') {
    const reach = t.zoneMapReach?.[column];
    const q = quoteDuck;
    const rel = t.schema ? `${q(t.schema)}.${q(t.name)}` : q(t.name);
    return `${reach ? `a window on ${column} reads ${reach.touched} of ${table}'s ${reach.rowGroups} row groups` : `${table} has no zone maps on ${column}`} (its newest values sit in most row groups, as when rows are updated in place): DuckDB has no range index, so every incremental read scans the table; keep the rows in ${column} order (append changed rows, or re-sort in a quiet window: CREATE OR REPLACE TABLE ${rel} AS SELECT * FROM ${rel} ORDER BY ${q(column)}), or use mode full, which reads the table anyway and also sees deletes`;
  }
  const ixName = `ix_${t.name}_${column}`.replace(/[^A-Za-z0-9_]/g, '_').slice(0, kind === 'postgres' ? 63 : 128);
  const sql =
    kind === 'postgres'
      ? `CREATE INDEX CONCURRENTLY ${pgStyle.q(ixName)} ON ${t.schema ? `${pgStyle.q(t.schema)}.` : ''}${pgStyle.q(t.name)} (${pgStyle.q(column)})`
      : `CREATE NONCLUSTERED INDEX ${quoteMssql(ixName)} ON ${t.schema ? `${quoteMssql(t.schema)}.` : ''}${quoteMssql(t.name)} (${quoteMssql(column)})`;
  return `no index leads with ${column}: every incremental read scans ${table}; create one (${sql}) and the window reads only the rows it selects`;
}

/** Modified-at-like columns, the indexed ones first (then by name, so the choice is stable). */
export function modifiedAtCandidates(t: TableProfile): Array<{ name: string; indexed: boolean }> {
  return t.columns
    .filter((c) => c.temporal && MODIFIED_AT_NAME.test(c.name))
    .map((c) => ({ name: c.name, indexed: rangeReadIsCheap(t, c.name) }))
    .sort((a, b) => Number(b.indexed) - Number(a.indexed) || a.name.localeCompare(b.name));
}

const COST = {
  cdc: 'cdc: reads the net changes from the log, sees deletes; needs CDC enabled and a cleanup retention longer than the longest gap between runs, or a run re-snapshots',
  changeTracking:
    'changeTracking: sees deletes and needs no change column; needs Change Tracking enabled and a retention longer than the longest gap between runs',
  rowversion: 'rowversion: exact and immune to clock skew, but SQL Server only, and hard deletes are not seen (a periodic full run reconciles them)',
  timestamp:
    'timestamp: reads only rows whose modified-at moved, but misses hard deletes unless a periodic full run reconciles them, and trusts the application to set the column (lag covers clock skew)',
  full: 'full: reads and hashes every row each run; always correct and sees deletes, but costs a whole-table read per run',
} as const;

/**
 * Best first: CDC → Change Tracking → rowversion → an indexed modified-at column → full with
 * the row hash. Every step that is skipped for a reason the user can change is said.
 */
export function proposeChangeDetection(t: TableProfile, kind: SourceKind): Proposal {
  const warnings: string[] = [];
  const others = (mode: ProposedMode) => (Object.keys(COST) as ProposedMode[]).filter((m) => m !== mode).map((m) => COST[m]);
  if (t.primaryKey.length === 0) warnings.push('no primary key: fill in key before running (the columns that identify a row)');
  if (t.cdc) {
    return {
      mode: 'cdc',
      captureInstance: t.cdc.captureInstance,
      why: `CDC is enabled on ${qualifiedTableName(t)} (capture instance ${t.cdc.captureInstance}): changes come from the log, deletes included${
        t.cdc.retentionMinutes !== null ? `; cleanup retention ${t.cdc.retentionMinutes} min, keep the schedule well inside it` : ''
      }`,
      tradeoff: COST.cdc,
      alternatives: others('cdc'),
      warnings,
    };
  }
  if (t.changeTracking) {
    return {
      mode: 'changeTracking',
      why: `Change Tracking is enabled on ${qualifiedTableName(t)}: changed keys and deletes come from CHANGETABLE${
        t.changeTracking.retentionMinutes !== null ? `; retention ${t.changeTracking.retentionMinutes} min, keep the schedule well inside it` : ''
      }`,
      tradeoff: COST.changeTracking,
      alternatives: others('changeTracking'),
      warnings,
    };
  }
  if (t.rowversionColumn) {
    return {
      mode: 'rowversion',
      column: t.rowversionColumn,
      why: `${t.rowversionColumn} is a rowversion: SQL Server bumps it on every write, so the window is exact`,
      tradeoff: COST.rowversion,
      alternatives: others('rowversion'),
      warnings,
    };
  }
  const candidates = modifiedAtCandidates(t);
  const indexed = candidates.find((c) => c.indexed);
  if (indexed) {
    return {
      mode: 'timestamp',
      column: indexed.name,
      why: `${indexed.name} is a ${t.zoneMaps ? 'date-time column (DuckDB skips row groups by min/max)' : 'date-time column that leads an index'} whose name says it holds the modification time`,
      tradeoff: COST.timestamp,
      alternatives: others('timestamp'),
      warnings,
    };
  }
  const notIndexed = candidates[0];
  if (notIndexed) {
    warnings.push(`${notIndexed.name} looks like a modified-at column but no index leads with it: index it, then switch to mode timestamp`);
  }
  const why = [
    kind === 'mssql' ? 'no CDC, Change Tracking or rowversion on this table' : 'no log-based change feed is read from this source kind',
    notIndexed ? `${notIndexed.name} has no index, so a timestamp window would scan the table anyway` : 'no modified-at-like date-time column',
  ].join('; ');
  return { mode: 'full', why: `${why}: every run reads and hashes the whole table`, tradeoff: COST.full, alternatives: others('full'), warnings };
}
