import type { QualifiedName } from '../config/identifiers.js';
import type { Statement } from '../duckdb/session.js';
import type { PlanColumn } from './plan.js';
import type { SqlStyle } from './scd-sql.js';

/**
 * What the point-in-time reads (`query --as-of`, `query --key`) need of a dialect beyond the SCD
 * renderer's style: its text type, how it reads a bound UTC instant, and how it limits rows.
 */
export interface ReadStyle {
  s: SqlStyle;
  /** The dialect's unbounded text type (the `text` logical type). */
  text: string;
  /** The bound instant `p` (a placeholder) as the engine compares it with `_tm_valid_from`. */
  instant(p: string): string;
  /** `TOP (n)` after SELECT (T-SQL) or `LIMIT n` at the end. */
  limit: 'top' | 'limit';
}

/**
 * A column as read back for printing. Values a JavaScript driver would turn into a double are
 * carried as text: decimals (DECIMAL(38) has 38 digits), 128-bit integers (HUGEINT), and DuckDB's
 * TIMESTAMP, whose microseconds a JS Date drops. The JSON rule (cli/json-values.ts) then prints
 * them with every digit.
 */
export function exactColumn(r: ReadStyle, c: PlanColumn): string {
  const q = r.s.q(c.name);
  const t = c.type;
  return t.kind === 'decimal' || (t.kind === 'integer' && t.bits === 128) || t.kind === 'timestamp' ? `CAST(${q} AS ${r.text}) AS ${q}` : q;
}

function validAt(r: ReadStyle, p: string): string {
  const q = r.s.q;
  const t = r.instant(p);
  return `${q('_tm_valid_from')} <= ${t} AND (${q('_tm_valid_to')} IS NULL OR ${q('_tm_valid_to')} > ${t}) AND ${q('_tm_is_deleted')} = ${r.s.false}`;
}

/** The versions valid at the instant (parameter 1), not deleted, in key order; at most `limit` (parameter 2). */
export function renderAsOf(r: ReadStyle, target: QualifiedName, columns: readonly PlanColumn[], at: string, o: { keys?: readonly string[]; limit?: number } = {}): Statement {
  const q = r.s.q;
  const limited = o.limit !== undefined;
  const top = limited && r.limit === 'top' ? `TOP (${r.s.param(2)}) ` : '';
  const tail = limited && r.limit === 'limit' ? ` LIMIT ${r.s.param(2)}` : '';
  const order = o.keys?.length ? ` ORDER BY ${o.keys.map(q).join(', ')}` : '';
  return {
    sql: `SELECT ${top}${columns.map((c) => exactColumn(r, c)).join(', ')} FROM ${r.s.qualify(target)} WHERE ${validAt(r, r.s.param(1))}${order}${tail}`,
    parameters: limited ? [at, o.limit!] : [at],
  };
}

/** How many rows the unlimited `renderAsOf` has. */
export function renderAsOfCount(r: ReadStyle, target: QualifiedName, at: string): Statement {
  return { sql: `SELECT COUNT(*) AS n FROM ${r.s.qualify(target)} WHERE ${validAt(r, r.s.param(1))}`, parameters: [at] };
}

/** The SCD2 columns a key's history shows besides its data columns. */
export const HISTORY_COLUMNS = ['_tm_valid_from', '_tm_valid_to', '_tm_is_deleted', '_tm_run_id'] as const;

/**
 * Every version of one key, oldest first, each with `_tm_at` = 1 for the version valid (and not
 * deleted) at the instant (parameter 1), else 0. The key's values (parameters 2…) are compared
 * with the key columns' text, so a key is given as `query` prints it whatever its type; they are
 * bound, never inlined.
 */
export function renderKeyHistory(
  r: ReadStyle,
  target: QualifiedName,
  columns: readonly PlanColumn[],
  key: ReadonlyArray<{ name: string; value: string }>,
  at: string,
): Statement {
  const q = r.s.q;
  const where = key.map((k, i) => `CAST(${q(k.name)} AS ${r.text}) = ${r.s.param(i + 2)}`).join(' AND ');
  return {
    sql: `SELECT ${columns.map((c) => exactColumn(r, c)).join(', ')}, CASE WHEN ${validAt(r, r.s.param(1))} THEN 1 ELSE 0 END AS ${q('_tm_at')} FROM ${r.s.qualify(target)} WHERE ${where} ORDER BY ${q('_tm_valid_from')}, ${q('_tm_is_deleted')}`,
    parameters: [at, ...key.map((k) => k.value)],
  };
}
