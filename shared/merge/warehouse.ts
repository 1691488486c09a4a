import type { QualifiedName } from '../config/identifiers.js';
import { errorMessage } from '../errors.js';
import type { Dialect, ExistingColumn, Statement } from './dialect.js';
import type { MergePlan, PlanColumn } from './plan.js';

/** Where the changes Parquet lives in storage, for engines that load it from there (Synapse COPY INTO). */
export interface BlobRef {
  container: string;
  name: string;
}

/**
 * `base-moved`: inside the merge transaction the pipeline's latest committed run was not the
 * run this one was computed against, so nothing was applied (the changes would be stale).
 */
export type MergeOutcome = 'merged' | 'already-merged' | 'base-moved';

/** The ledger head as the dialects' ledgerHead statement returns it. */
export interface LedgerHead {
  run_id: string;
  base_run_id: string | null;
  run_seq: number | bigint | string | null;
  read_to: string | null;
  snapshot: string | null;
}

/** True when the head the transaction sees is not the plan's base: the commit must not happen. */
export function baseMoved(head: Pick<LedgerHead, 'run_id'> | undefined, plan: Pick<MergePlan, 'commit'>): boolean {
  return (head?.run_id ?? null) !== plan.commit.baseRunId;
}

/**
 * A warehouse: a dialect plus a driver. The merge plan is rendered by the dialect; the driver
 * stages the changes Parquet its own way (DuckDB reads it, PostgreSQL copies it in, Synapse
 * runs COPY INTO from storage) and runs the rendered statements in one transaction.
 */
export interface Warehouse {
  readonly dialect: Dialect;
  describe(target: QualifiedName): Promise<ExistingColumn[]>;
  /** Applies the plan exactly once: DDL first, then one transaction with the ledger row. */
  merge(plan: Omit<MergePlan, 'stage'>, changesFile: string, changesBlob?: BlobRef): Promise<MergeOutcome>;
  currentRowCount(target: QualifiedName): Promise<number>;
  /**
   * `count:sum` checksum (see canonical/row-hash.ts) over the target's current versions, either
   * all of them or only those whose keys are in the given changes file.
   */
  checksum(target: QualifiedName, columns: readonly string[], keys: readonly string[], scope: 'table' | { changesFile: string }): Promise<string>;
  asOf(target: QualifiedName, columns: readonly PlanColumn[], at: string, o?: { keys?: readonly string[]; limit?: number }): Promise<Record<string, unknown>[]>;
  /**
   * Generic SQL access for validation rules, rollback, backups and restores (shared/rollback,
   * shared/validate). Optional so a warehouse can be merged before it supports them; callers
   * refuse with a clear message when absent.
   */
  sql?: WarehouseSql;
  close(): Promise<void>;
}

export interface WarehouseSql {
  query<T = Record<string, unknown>>(st: Statement): Promise<T[]>;
  /** Runs the statements one by one, outside a transaction (DDL on engines without transactional DDL). */
  execute(statements: readonly Statement[]): Promise<void>;
  /** Runs the statements in one transaction: all of them commit or none. */
  transaction(statements: readonly Statement[]): Promise<void>;
  /** Runs a read query inside a transaction that is always rolled back: a rule can change nothing. */
  readOnly<T = Record<string, unknown>>(st: Statement): Promise<T[]>;
}

/**
 * True when a warehouse refused a query because a table it names does not exist: DuckDB's
 * Catalog Error, PostgreSQL's "relation … does not exist", T-SQL's "Invalid object name".
 * How the ledger readers tell "nothing was ever merged here" from a failure.
 */
export function isMissingTable(cause: unknown): boolean {
  return /does not exist|Catalog Error|Invalid object name/i.test(errorMessage(cause));
}
