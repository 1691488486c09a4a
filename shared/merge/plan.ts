import type { QualifiedName } from '../config/identifiers.js';
import { listElementType, type HashFormat, type HashRule, type TypedColumn } from '../canonical/row-hash.js';

/** The SCD2 columns of docs/design.md §8, in the order they follow the data columns. */
export const SCD_COLUMNS = [
  '_tm_valid_from',
  '_tm_valid_to',
  '_tm_is_current',
  '_tm_is_deleted',
  '_tm_row_hash',
  '_tm_run_id',
  '_tm_version_key',
] as const;

/** Columns of the run ledger that commits with every merge (docs/design.md §5.3). */
export const LEDGER_TABLE = '_tm_ledger';

export type LogicalType =
  | { kind: 'boolean' }
  | { kind: 'integer'; bits: 8 | 16 | 32 | 64 | 128 }
  | { kind: 'decimal'; precision: number; scale: number }
  | { kind: 'float'; bits: 32 | 64 }
  | { kind: 'text' }
  | { kind: 'date' }
  | { kind: 'time' }
  | { kind: 'timestamp' }
  | { kind: 'timestamptz' }
  | { kind: 'binary' }
  | { kind: 'uuid' }
  | { kind: 'json' }
  /** A list of scalars (`VARCHAR[]`, PostgreSQL `text[]`): hash rule 3 targets only (row-hash.ts). */
  | { kind: 'list'; element: ListElement };

/** The element types a list may have; a list of anything else (lists, structs …) lands as text. */
export type ListElement = Exclude<LogicalType, { kind: 'list' } | { kind: 'json' } | { kind: 'time' } | { kind: 'binary' }>;

export interface PlanColumn {
  name: string;
  type: LogicalType;
}

export interface MergePlan {
  pipeline: string;
  runId: string;
  /** UTC ISO-8601; valid_from of versions opened by a load-time run. */
  boundary: string;
  target: QualifiedName;
  /** Name of the staging table holding the changes (`_tm_op` etc. included). */
  stage: QualifiedName;
  keys: string[];
  /** Every user column of the target (keys included), in target order. */
  columns: PlanColumn[];
  type1Columns: string[];
  deletes: 'retire' | 'mark' | 'ignore';
  scd: 1 | 2;
  /** target.allowTypeWidening: a column may move to a wider type instead of failing the run. */
  allowTypeWidening?: boolean;
  /**
   * How the changes hold `_tm_row_hash` and `_tm_version_key` (their hash rule, recorded in the
   * changes manifest): a new target gets binary columns for binary hashes; absent = hex text.
   */
  hashFormat?: HashFormat;
  /**
   * Set when the changes file holds no `_tm_version_key` (its manifest says `versionKey: merge`):
   * the merge computes it while it reads the file, from these key columns (their DuckDB types as
   * the transform had them) and `_tm_valid_from`, under this hash rule. Only the warehouses that
   * read the file through DuckDB accept it (storage/parquet-format.ts versionKeyPlace).
   */
  versionKeyFrom?: { keys: TypedColumn[]; rule: HashRule };
  counts: { inserted: number; updated: number; deleted: number; type1: number };
  /** What the ledger row records beside the counts: the commit point of the run (docs/design.md §5.3). */
  commit: LedgerCommit;
}

export const hashFormatOfPlan = (plan: Pick<MergePlan, 'hashFormat'>): HashFormat => plan.hashFormat ?? 'hex';

/**
 * The run's commit as the warehouse ledger records it, in the merge transaction. The ledger is
 * the source of truth for "what is committed"; the Table Storage checkpoint is a cache rolled
 * forward from it (shared/engine/commit-protocol.ts).
 */
export interface LedgerCommit {
  /** The committed run this run's changes were computed against (null: the first load). */
  baseRunId: string | null;
  /** The run's per-pipeline sequence number (null for runs started before sequence numbers). */
  runSeq: number | null;
  /** What the extract read up to: the watermark / LSN / version the next run continues from. */
  readTo: string | null;
  /** The snapshot manifest this run produced (blob name in `state`). */
  snapshot: string;
}

/** Parses a DuckDB type name (what DESCRIBE prints) into the logical type every dialect maps. */
export function logicalFromDuck(type: string): LogicalType {
  const t = type.toUpperCase().trim();
  if (t.endsWith('[]')) {
    const element = listElementType(t);
    // Lists of anything but a portable scalar (lists, structs, JSON …) land as text.
    return element === undefined ? { kind: 'text' } : { kind: 'list', element: logicalFromDuck(element) as ListElement };
  }
  const dec = /^DECIMAL\((\d+),\s*(\d+)\)$/.exec(t);
  if (dec) return { kind: 'decimal', precision: Number(dec[1]), scale: Number(dec[2]) };
  switch (t) {
    case 'BOOLEAN':
      return { kind: 'boolean' };
    case 'TINYINT':
    case 'UTINYINT':
      return { kind: 'integer', bits: 16 };
    case 'SMALLINT':
      return { kind: 'integer', bits: 16 };
    case 'USMALLINT':
    case 'INTEGER':
      return { kind: 'integer', bits: 32 };
    case 'UINTEGER':
    case 'BIGINT':
      return { kind: 'integer', bits: 64 };
    case 'UBIGINT':
    case 'HUGEINT':
    case 'UHUGEINT':
      return { kind: 'integer', bits: 128 };
    case 'FLOAT':
      return { kind: 'float', bits: 32 };
    case 'DOUBLE':
      return { kind: 'float', bits: 64 };
    case 'DATE':
      return { kind: 'date' };
    case 'TIME':
      return { kind: 'time' };
    case 'TIMESTAMP':
    case 'TIMESTAMP_NS':
    case 'TIMESTAMP_MS':
    case 'TIMESTAMP_S':
      return { kind: 'timestamp' };
    case 'TIMESTAMP WITH TIME ZONE':
    case 'TIMESTAMPTZ':
      return { kind: 'timestamptz' };
    case 'BLOB':
      return { kind: 'binary' };
    case 'UUID':
      return { kind: 'uuid' };
    case 'JSON':
      return { kind: 'json' };
    default:
      // VARCHAR and everything without a portable equivalent (structs, intervals, lists of
      // those) lands as text: the canonical text keeps the value.
      return { kind: 'text' };
  }
}
