import { versionKeyExpr } from '../canonical/row-hash.js';
import { duckLiteral } from '../duckdb/session.js';
import type { MergePlan } from './plan.js';

/**
 * The DuckDB relation a merge reads a changes file through: the file itself, or, when the file
 * holds no version key (MergePlan.versionKeyFrom), the file with `_tm_version_key` computed by
 * the expression the transform would have written. A merge step that does not use the column
 * does not compute it (DuckDB prunes unused projections of a subquery). The key columns are
 * hashed as the file holds them: for the types Parquet stores as they are, the transform's
 * text; a key type Parquet lacks (HUGEINT, which DuckDB writes as DOUBLE) gives its carrier's
 * text, the same on every read of the file, so a retried merge writes the same keys.
 */
export function changesRelation(file: string, versionKeyFrom: MergePlan['versionKeyFrom']): string {
  const read = `read_parquet(${duckLiteral(file)})`;
  if (!versionKeyFrom) return read;
  return `(SELECT *, ${versionKeyExpr(versionKeyFrom.keys, '_tm_valid_from', undefined, versionKeyFrom.rule)} AS _tm_version_key FROM ${read})`;
}
