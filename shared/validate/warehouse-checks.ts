import { join } from 'node:path';
import { splitQualified, type QualifiedName } from '../config/identifiers.js';
import type { PipelineConfig } from '../config/schema.js';
import type { EngineContext } from '../engine/context.js';
import { errorMessage } from '../errors.js';
import { ledgerName } from '../merge/scd-sql.js';
import { logicalFromDuck, type PlanColumn } from '../merge/plan.js';
import type { Warehouse } from '../merge/warehouse.js';
import type { Statement } from '../merge/dialect.js';
import { duckRollbackStyle, rollbackStyleFor } from '../rollback/styles.js';
import type { RollbackStyle } from '../rollback/sql.js';
import type { ValidationResult } from '../state/validations.js';
import { CONTAINERS } from '../storage/layout.js';
import type { ChangesManifest } from '../storage/manifest.js';
import { DuckSession, duckLiteral, quoteDuck } from '../duckdb/session.js';
import { canonicalRowSql, canonicalTextSql, type EngineName } from './canonical-sql.js';

/** Business-rule and sample checks, run after the merge against the warehouse. */
export async function warehouseChecks(
  ctx: EngineContext,
  p: PipelineConfig,
  runId: string,
  manifest: ChangesManifest,
  warehouse: Warehouse,
  dir: string,
): Promise<ValidationResult[]> {
  const out: ValidationResult[] = [];
  if (p.validation.rules.length === 0 && !manifest.sample) return out;
  if (!warehouse.sql) {
    return [{ check: 'rules', passed: false, expected: 'supported', actual: `not available on ${warehouse.dialect.name}`, detail: 'validation.rules / validation.sample need the warehouse SQL port' }];
  }
  const target = splitQualified(p.target.table);
  const style = rollbackStyleFor(warehouse.dialect.name);
  for (const rule of p.validation.rules) out.push(await ruleCheck(warehouse, style, target, runId, rule));
  if (manifest.sample) out.push(await sampleCheck(ctx, p, manifest.sample, warehouse, style, target, dir));
  return out;
}

/**
 * A rule's SQL runs against the warehouse, read-only (inside a transaction that is rolled back),
 * and must return one row whose first column is compared with `expect`. It may name any table
 * the warehouse connection can read; these placeholders are filled in by the dialect:
 *   {{target}}   the pipeline's target table, quoted and qualified
 *   {{current}}  a subquery of the target's current, not deleted versions
 *   {{ledger}}   the run ledger next to the target
 *   {{run_id}}   the id of the run being validated, as a bound parameter
 */
export function renderRule(style: RollbackStyle, target: QualifiedName, sql: string): { sql: string; usesRunId: boolean; unknown: string[] } {
  const T = style.qualify(target);
  const current = `(SELECT * FROM ${T} WHERE ${style.q('_tm_is_current')} = ${style.true} AND ${style.q('_tm_is_deleted')} = ${style.false})`;
  const known: Record<string, string> = { target: T, current, ledger: style.qualify(ledgerName({ target })), run_id: style.param(1) };
  const unknown: string[] = [];
  let usesRunId = false;
  const rendered = sql.replace(/\{\{\s*([A-Za-z_]+)\s*\}\}/g, (m, name: string) => {
    if (name === 'run_id') usesRunId = true;
    const v = known[name];
    if (v === undefined) unknown.push(name);
    return v ?? m;
  });
  return { sql: rendered, usesRunId, unknown };
}

export function ruleOutcome(expect: number | string, actual: unknown): boolean {
  if (actual === null || actual === undefined) return false;
  if (typeof expect === 'number') {
    const n = typeof actual === 'bigint' ? Number(actual) : Number(String(actual));
    return Number.isFinite(n) && n === expect;
  }
  return String(actual) === expect;
}

async function ruleCheck(
  warehouse: Warehouse,
  style: RollbackStyle,
  target: QualifiedName,
  runId: string,
  rule: PipelineConfig['validation']['rules'][number],
): Promise<ValidationResult> {
  const check = `rule:${rule.name}`;
  const r = renderRule(style, target, rule.sql);
  if (r.unknown.length) {
    return { check, passed: false, expected: rule.expect, actual: null, detail: `unknown placeholder(s) ${r.unknown.map((u) => `{{${u}}}`).join(', ')}; use {{target}}, {{current}}, {{ledger}} or {{run_id}}` };
  }
  try {
    const rows = await warehouse.sql!.readOnly<Record<string, unknown>>({ sql: r.sql, parameters: r.usesRunId ? [runId] : [] });
    const first = rows[0];
    const value = first === undefined ? null : Object.values(first)[0];
    const actual =
      value === null || value === undefined
        ? null
        : typeof value === 'number'
          ? value
          : typeof value === 'string'
            ? // Drivers return bigint and numeric as text (pg); report a number as a number.
              typeof rule.expect === 'number' && value.trim() !== '' && Number.isFinite(Number(value)) ? Number(value) : value
          : typeof value === 'bigint' && Number.isSafeInteger(Number(value))
            ? Number(value)
            : String(value);
    return { check, passed: ruleOutcome(rule.expect, value), expected: rule.expect, actual, ...(first === undefined ? { detail: 'the query returned no row' } : {}) };
  } catch (err) {
    return { check, passed: false, expected: rule.expect, actual: null, detail: `the rule's SQL failed: ${errorMessage(err)}` };
  }
}

const MAX_DETAIL = 3;
const clip = (v: unknown) => {
  const s = v === null || v === undefined ? 'NULL' : JSON.stringify(v);
  return s.length > 60 ? `${s.slice(0, 57)}…` : s;
};

/**
 * N sampled keys of the batch compared field by field with the warehouse's current version.
 * Both sides are turned into the canonical text of each column by their own engine (DuckDB on
 * the sample, the warehouse's SQL on the target), so a type mapping or a conversion on the way
 * in shows up as a mismatch; keys are matched by their canonical text, bound as parameters.
 */
async function sampleCheck(
  ctx: EngineContext,
  p: PipelineConfig,
  sample: NonNullable<ChangesManifest['sample']>,
  warehouse: Warehouse,
  style: RollbackStyle,
  target: QualifiedName,
  dir: string,
): Promise<ValidationResult> {
  const local = join(dir, 'sample.parquet');
  await ctx.blobs.downloadToFile(CONTAINERS.changes, sample.name, local);
  const s = await DuckSession.open(':memory:', ctx.duck);
  let columns: PlanColumn[];
  let extractRows: Array<Record<string, string | null>>;
  try {
    await s.run(`SET TimeZone = 'UTC'`);
    const file = `read_parquet(${duckLiteral(local)})`;
    const described = await s.rows<{ column_name: string; column_type: string }>(`DESCRIBE SELECT * FROM ${file}`);
    columns = described.map((c) => ({ name: c.column_name, type: logicalFromDuck(c.column_type) }));
    // A column without a portable type (a struct, a list of lists) is loaded into the warehouse as its
    // DuckDB text (CAST … AS VARCHAR, every dialect's staging); the sample is compared as that.
    const asText = described.filter((c, i) => columns[i]!.type.kind === 'text' && !/^VARCHAR(\(\d+\))?$/i.test(c.column_type));
    const rel = asText.length
      ? `(SELECT * REPLACE (${asText.map((c) => `CAST(${quoteDuck(c.column_name)} AS VARCHAR) AS ${quoteDuck(c.column_name)}`).join(', ')}) FROM ${file})`
      : file;
    // DuckDB's own quoting on this side: the warehouse's style is for the warehouse's SQL (with
    // T-SQL's [] here DuckDB failed, so the sample check never ran on synapse).
    extractRows = await s.rows(selectCanonical('duckdb', duckRollbackStyle, p.key, columns, rel, ''));
  } finally {
    await s.close();
  }
  const whRows = await warehouse.sql!.query<Record<string, string | null>>(
    renderSampleQuery(warehouse.dialect.name, style, p.key, columns, target, extractRows.map((r) => r._k ?? '')),
  );
  const byKey = new Map(whRows.map((r) => [r._k, r]));
  const mismatches: string[] = [];
  for (const e of extractRows) {
    const w = byKey.get(e._k ?? null);
    if (!w) {
      mismatches.push(`${e._k}: no current version in the warehouse`);
      continue;
    }
    const diff = columns.filter((_, i) => e[`c${i}`] !== w[`c${i}`]).map((c) => {
      const i = columns.indexOf(c);
      return `${c.name} ${clip(e[`c${i}`])} ≠ ${clip(w[`c${i}`])}`;
    });
    if (diff.length) mismatches.push(`${e._k}: ${diff.join(', ')}`);
  }
  return {
    check: 'sample',
    passed: mismatches.length === 0,
    expected: extractRows.length,
    actual: extractRows.length - mismatches.length,
    detail: mismatches.length
      ? `${mismatches.length} of ${extractRows.length} sampled keys differ (extract ≠ warehouse): ${mismatches.slice(0, MAX_DETAIL).join(' | ')}`
      : `${extractRows.length} sampled keys equal field by field`,
  };
}

/**
 * The warehouse side of the sample check: canonical key text (`_k`) and canonical text of each
 * column (`c0`, `c1`, …) of the current versions whose key text is one of the bound values.
 */
export function renderSampleQuery(
  engine: EngineName,
  style: RollbackStyle,
  keys: readonly string[],
  columns: readonly PlanColumn[],
  target: QualifiedName,
  keyTexts: readonly string[],
): Statement {
  const keyText = canonicalRowSql(engine, style, keys.map((k) => columns.find((c) => c.name === k)!));
  const where = `${style.q('_tm_is_current')} = ${style.true} AND ${style.q('_tm_is_deleted')} = ${style.false}${
    keyTexts.length ? ` AND ${keyText} IN (${keyTexts.map((_, i) => style.param(i + 1)).join(', ')})` : ' AND 1 = 0'
  }`;
  return { sql: selectCanonical(engine, style, keys, columns, style.qualify(target), ` WHERE ${where}`), parameters: [...keyTexts] };
}

function selectCanonical(engine: EngineName, style: RollbackStyle, keys: readonly string[], columns: readonly PlanColumn[], from: string, where: string): string {
  const keyCols = keys.map((k) => columns.find((c) => c.name === k)!);
  const texts = columns.map((c, i) => `${canonicalTextSql(engine, style, c)} AS ${style.q(`c${i}`)}`);
  return `SELECT ${canonicalRowSql(engine, style, keyCols)} AS ${style.q('_k')}, ${texts.join(', ')} FROM ${from}${where}`;
}

/**
 * One error line naming every failed check. The ValidationFailed telemetry events (one per
 * failed check) are emitted with the run's end (engine/run-events.ts), like every run event.
 */
export async function onValidationFailed(ctx: EngineContext, p: PipelineConfig, runId: string, results: readonly ValidationResult[]): Promise<void> {
  ctx.log.log('error', 'ValidationFailed', {
    event: 'ValidationFailed',
    pipeline: p.name,
    runId,
    failedChecks: results.filter((r) => !r.passed).map((r) => ({ check: r.check, expected: r.expected, actual: r.actual, ...(r.detail ? { detail: r.detail } : {}) })),
    held: p.validation.holdOnFailure,
  });
}
