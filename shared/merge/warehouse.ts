import type { QualifiedName } from '../config/identifiers.js';
import type { Dialect, ExistingColumn } from './dialect.js';
import type { MergePlan, PlanColumn } from './plan.js';

/** Where the changes Parquet lives in storage, for engines that load it from there (Synapse COPY INTO). */
export interface BlobRef {
  container: string;
  name: string;
}

export type MergeOutcome = 'merged' | 'already-merged';

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
   * `count:sum` checksum (see transform/classify.ts) over the target's current versions, either
   * all of them or only those whose keys are in the given changes file.
   */
  checksum(target: QualifiedName, columns: readonly string[], keys: readonly string[], scope: 'table' | { changesFile: string }): Promise<string>;
  asOf(target: QualifiedName, columns: readonly PlanColumn[], at: string): Promise<Record<string, unknown>[]>;
  close(): Promise<void>;
}
