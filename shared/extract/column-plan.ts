/**
 * How one source column travels through JS into Parquet without losing precision: the source
 * renders it as text (exact decimal digits, ISO times with every fractional digit, hex bytes),
 * JS only carries the string, and DuckDB casts the text to `duckType` when the part is written.
 * No value ever passes through a JS number or Date.
 */
export interface ColumnPlan {
  name: string;
  /** The source's own type, as the source reported it (for error messages and the README table). */
  sourceType: string;
  /** DuckDB / Parquet type of the column in the parts. */
  duckType: string;
  /** DuckDB expression turning the staged text column `col` (already quoted) into duckType. */
  fromText: (col: string) => string;
}

export const castFromText = (duckType: string) => (col: string) => `CAST(${col} AS ${duckType})`;
