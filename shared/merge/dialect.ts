import type { QualifiedName } from '../config/identifiers.js';
import type { SqlValue, Statement } from '../duckdb/session.js';
import type { LogicalType, MergePlan, PlanColumn } from './plan.js';
import type { ScdRenderOptions } from './scd-sql.js';

export type { Statement, SqlValue };

/** Facts about an engine, as data; each carries where it comes from. */
export interface DialectCapabilities {
  transactionalDdl: boolean;
  merge: boolean;
  maxIdentifierLength: number;
  maxParameters: number;
}

export interface ExistingColumn {
  name: string;
  /** The engine's own type name, normalised by the dialect for comparison. */
  type: string;
}

export interface Dialect {
  readonly name: 'duckdb' | 'postgres' | 'synapse' | 'mssql';
  readonly capabilities: DialectCapabilities;
  quoteIdent(name: string): string;
  qualify(name: QualifiedName): string;
  /** Placeholder for the i-th (1-based) bound parameter. */
  param(i: number): string;
  typeName(t: LogicalType): string;
  /** Statements run before the merge transaction (schema, target, ledger, new columns). */
  ensureTarget(plan: MergePlan, existing: readonly ExistingColumn[] | undefined): Statement[];
  /** Returns a row when the run is already in the ledger. */
  ledgerCheck(plan: Pick<MergePlan, 'pipeline' | 'runId' | 'target'>): Statement;
  /** The pipeline's latest committed run in the ledger (columns run_id, base_run_id, run_seq, read_to, snapshot); no row when none. */
  ledgerHead(target: QualifiedName, pipeline: string): Statement;
  /** The SCD2 / SCD1 steps and the ledger insert, in order, inside one transaction. `o.closeByCopy` is rendered by DuckDB only. */
  mergeSteps(plan: MergePlan, o?: ScdRenderOptions): Statement[];
  /** Lists the target's columns (name, type); no rows when the table is absent. */
  describeTarget(target: QualifiedName): Statement;
  /** Current (not deleted) rows of the target. */
  currentRowCount(target: QualifiedName): Statement;
  /** The dimension as of a UTC instant (point-in-time read), in key order when `keys` are given, at most `limit` rows. */
  asOf(target: QualifiedName, columns: readonly PlanColumn[], at: string, o?: { keys?: readonly string[]; limit?: number }): Statement;
  /** How many rows `asOf` has at the instant (column n). */
  asOfCount(target: QualifiedName, at: string): Statement;
  /** Every version of one key, oldest first, with `_tm_at` = 1 on the one valid at the instant (see read-sql.ts). */
  keyHistory(target: QualifiedName, columns: readonly PlanColumn[], key: ReadonlyArray<{ name: string; value: string }>, at: string): Statement;
}
