import type { ColumnInfo, ExtractRead, ExtractWindow } from '../storage/manifest.js';
import type { WindowInput } from './window.js';

export interface ExtractRequest {
  window: WindowInput;
  /** Folder to write Parquet parts into; the caller uploads them. */
  outDir: string;
  partRows: number;
  partBytes: string;
  /** Count every source row up to the upper bound, for row-count validation. */
  countSource: boolean;
  /** Read only this key range (a partition of a partitioned full read). */
  range?: KeyRange;
}

/** `column >= lo AND column < hi` (`<= hi` for the last range); bounds are integers as text. */
export interface KeyRange {
  column: string;
  lo: string;
  hi: string;
  last: boolean;
}

export interface KeyStats {
  /** Window of the whole read, captured once before any partition is read. */
  window: ExtractWindow;
  min: string | null;
  max: string | null;
  rows: number;
}

export interface ExtractResult {
  /** Local Parquet files, in order. */
  files: string[];
  window: ExtractWindow;
  /** What was read (the row count is added from the written parts). */
  read: Omit<ExtractRead, 'rows'>;
  sourceRowCount: number | null;
  /** Schema of the extracted relation, known even when no row was read. */
  schema: ColumnInfo[];
  /** The statement that read the rows (absent when the window held nothing to read), shown by a dry run. */
  statement?: { sql: string; parameters: readonly unknown[] };
  /** Things the run must surface (telemetry event name + text), e.g. a CDC cleanup gap. */
  warnings?: ExtractWarning[];
  /**
   * The key columns of every live source row, read beside a window whose change feed could not
   * show every delete (a Salesforce recycle-bin gap under `deletesGap: keys`): a current key
   * absent from them is deleted.
   */
  keys?: KeysResult;
}

export interface ExtractWarning {
  /** CaptureInstance: which of several CDC capture instances was read; CaptureDrift: table columns the capture instance lacks. */
  event: 'SnapshotGap' | 'NullChangeColumn' | 'CaptureInstance' | 'CaptureDrift';
  message: string;
}

/**
 * Column that change-feed modes (cdc, changeTracking) add to their parts: 'insert', 'update'
 * or 'delete'. The transform turns 'delete' rows into deletes of their keys; full and
 * timestamp parts do not have it and infer deletes as before.
 */
export const SOURCE_OP_COLUMN = '_tm_source_op';

/** A key-only read (reconcile --deletes): the key columns of every source row, nothing else. */
export interface KeysRequest {
  outDir: string;
  partRows: number;
  partBytes: string;
}

export interface KeysResult {
  /** Local Parquet files holding the pipeline's key columns, NULLs included. */
  files: string[];
  schema: ColumnInfo[];
}

/** A source streams one window of rows into bounded Parquet parts (docs/design.md §6). */
export interface Source {
  extract(req: ExtractRequest): Promise<ExtractResult>;
  /** Sources that can find deletes by keys alone (timestamp / rowversion modes, shared/engine/reconcile.ts). */
  extractKeys?(req: KeysRequest): Promise<KeysResult>;
  /** Sources that can split a full read: min / max / count of an integer column, and the window. */
  keyStats?(req: { window: WindowInput; column: string }): Promise<KeyStats>;
  close(): Promise<void>;
}
