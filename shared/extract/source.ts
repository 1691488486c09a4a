import type { ColumnInfo, ExtractWindow } from '../storage/manifest.js';
import type { WindowInput } from './window.js';

export interface ExtractRequest {
  window: WindowInput;
  /** Folder to write Parquet parts into; the caller uploads them. */
  outDir: string;
  partRows: number;
  partBytes: string;
  /** Count every source row up to the upper bound, for row-count validation. */
  countSource: boolean;
}

export interface ExtractResult {
  /** Local Parquet files, in order. */
  files: string[];
  window: ExtractWindow;
  sourceRowCount: number | null;
  /** Schema of the extracted relation, known even when no row was read. */
  schema: ColumnInfo[];
}

/** A source streams one window of rows into bounded Parquet parts (DESIGN §6). */
export interface Source {
  extract(req: ExtractRequest): Promise<ExtractResult>;
  close(): Promise<void>;
}
