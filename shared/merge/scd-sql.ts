import type { QualifiedName } from '../config/identifiers.js';
import type { Statement } from './dialect.js';
import { LEDGER_TABLE, type MergePlan } from './plan.js';

/**
 * The merge plan, rendered once for every engine: DuckDB and PostgreSQL (`UPDATE target AS t
 * SET … FROM stage s WHERE …`) and T-SQL (Synapse, SQL Server: the UPDATE / DELETE target named
 * by its table name, see `SqlStyle.targetByName`), all with `INSERT … SELECT`.
 *
 * Order matters:
 *  1. `mark` deletes: insert a deleted-flagged copy of the current version (before it is closed)
 *  2. close the current version of every key that gets a new one or is deleted (or, with
 *     `closeByCopy`, insert closed copies of those versions and delete the originals)
 *  3. type 1 changes and same-time corrections overwritten on the current version
 *  4. insert the new versions
 *  5. the ledger row
 * Step 2 excludes the versions step 1 wrote (see there), so the plan is safe to render once and
 * run in one transaction; a second application is stopped by the ledger check before step 1.
 */
export interface SqlStyle {
  q(name: string): string;
  qualify(name: QualifiedName): string;
  param(i: number): string;
  true: string;
  false: string;
  /**
   * T-SQL: UPDATE and DELETE name their target by its table name and the stage joins in FROM /
   * WHERE (`UPDATE dw.t SET … FROM stage AS s WHERE dw.t.k = s.k`). T-SQL has no `UPDATE x AS t`,
   * and Synapse refuses an ANSI JOIN in the FROM of UPDATE / DELETE ("Using CTAS to work around
   * unsupported features", section "ANSI join replacement for update statements").
   */
  targetByName?: boolean;
}

export function ledgerName(plan: Pick<MergePlan, 'target'>): QualifiedName {
  return plan.target.schema ? { schema: plan.target.schema, name: LEDGER_TABLE } : { name: LEDGER_TABLE };
}

export function renderLedgerCheck(s: SqlStyle, plan: Pick<MergePlan, 'pipeline' | 'runId' | 'target'>): Statement {
  return {
    sql: `SELECT 1 AS present FROM ${s.qualify(ledgerName(plan))} WHERE ${s.q('pipeline')} = ${s.param(1)} AND ${s.q('run_id')} = ${s.param(2)}`,
    parameters: [plan.pipeline, plan.runId],
  };
}

/**
 * Ledger columns of the commit protocol, added to ledgers created before it (nullable, so
 * ALTER … ADD works in place). `base_run_id` holds '' for a first load rather than NULL so
 * that a unique index on (pipeline, base_run_id) lets one run at most commit on a given base:
 * NULLs never collide in a unique index.
 */
export const LEDGER_COMMIT_COLUMNS = [
  ['run_seq', 'bigint'],
  ['base_run_id', 'text'],
  ['read_to', 'text'],
  ['snapshot', 'text'],
] as const;

/**
 * Brings an existing ledger up to the commit protocol, for engines with ADD COLUMN IF NOT
 * EXISTS and unique indexes (DuckDB, PostgreSQL): the index is what makes two commits on one
 * base impossible, also between concurrent transactions (the second fails at insert or commit).
 */
export function renderLedgerUpgrade(s: SqlStyle, plan: Pick<MergePlan, 'target'>, typeName: (t: 'bigint' | 'text') => string): Statement[] {
  const L = s.qualify(ledgerName(plan));
  return [
    ...LEDGER_COMMIT_COLUMNS.map(([c, t]) => ({ sql: `ALTER TABLE ${L} ADD COLUMN IF NOT EXISTS ${s.q(c)} ${typeName(t)}`, parameters: [] })),
    { sql: `CREATE UNIQUE INDEX IF NOT EXISTS ${s.q('_tm_ledger_one_per_base')} ON ${L} (${s.q('pipeline')}, ${s.q('base_run_id')})`, parameters: [] },
  ];
}

/** '' stands for "no base" in the ledger (see LEDGER_COMMIT_COLUMNS). */
export const baseKey = (baseRunId: string | null): string => baseRunId ?? '';

export function renderLedgerInsert(s: SqlStyle, plan: MergePlan): Statement {
  const cols = ['pipeline', 'run_id', 'target_table', 'boundary', 'inserted', 'updated', 'deleted', 'run_seq', 'base_run_id', 'read_to', 'snapshot', 'committed_at'];
  return {
    sql: `INSERT INTO ${s.qualify(ledgerName(plan))} (${cols.map(s.q).join(', ')}) VALUES (${s.param(1)}, ${s.param(2)}, ${s.param(3)}, CAST(${s.param(4)} AS TIMESTAMP), ${s.param(5)}, ${s.param(6)}, ${s.param(7)}, ${s.param(8)}, ${s.param(9)}, ${s.param(10)}, ${s.param(11)}, CURRENT_TIMESTAMP)`,
    parameters: ledgerInsertParameters(plan),
  };
}

/** Bound values of the ledger insert, in column order; shared by every dialect. */
export function ledgerInsertParameters(plan: MergePlan): Statement['parameters'] {
  return [
    plan.pipeline,
    plan.runId,
    plan.target.schema ? `${plan.target.schema}.${plan.target.name}` : plan.target.name,
    plan.boundary.replace('T', ' ').replace('Z', ''),
    plan.counts.inserted,
    plan.counts.updated,
    plan.counts.deleted,
    plan.commit.runSeq,
    baseKey(plan.commit.baseRunId),
    plan.commit.readTo,
    plan.commit.snapshot,
  ];
}

/**
 * The latest committed run of the pipeline: the highest run sequence number, then the latest
 * commit time (ledger rows written before sequence numbers existed have none). `limit` renders
 * the dialect's row limit around the select list.
 */
export function renderLedgerHead(s: SqlStyle, target: QualifiedName, pipeline: string, limit: { top: string; tail: string }): Statement {
  const q = s.q;
  return {
    sql: `SELECT ${limit.top}${q('run_id')} AS run_id, ${q('base_run_id')} AS base_run_id, ${q('run_seq')} AS run_seq, ${q('read_to')} AS read_to, ${q('snapshot')} AS snapshot FROM ${s.qualify(ledgerName({ target }))} WHERE ${q('pipeline')} = ${s.param(1)} ORDER BY COALESCE(${q('run_seq')}, -1) DESC, ${q('committed_at')} DESC${limit.tail}`,
    parameters: [pipeline],
  };
}

export interface ScdRenderOptions {
  /**
   * Step 2 as an INSERT of closed copies of the current versions and a DELETE of the
   * originals, instead of an UPDATE of `_tm_valid_to` and `_tm_is_current`. DuckDB's warehouse
   * asks for it when the target is bigger than DuckDB's memory limit (`closeByCopy` in
   * shared/merge/duckdb/warehouse.ts says why); the copy uses DuckDB's `* REPLACE`.
   */
  closeByCopy?: boolean;
}

export function renderScdSteps(s: SqlStyle, plan: MergePlan, o: ScdRenderOptions = {}): Statement[] {
  const T = s.qualify(plan.target);
  const S = s.qualify(plan.stage);
  const on = (a: string, b: string) => plan.keys.map((k) => `${a}.${s.q(k)} = ${b}.${s.q(k)}`).join(' AND ');
  // The UPDATE / DELETE target: aliased t, or (T-SQL) referenced by its own name.
  const ut = s.targetByName ? T : `${T} AS t`;
  const t = s.targetByName ? T : 't';
  const dataCols = plan.columns.map((c) => s.q(c.name));
  const scdCols = ['_tm_valid_from', '_tm_valid_to', '_tm_is_current', '_tm_is_deleted', '_tm_row_hash', '_tm_run_id', '_tm_version_key'].map(s.q);
  const run = s.param(1);
  const steps: Statement[] = [];

  if (plan.scd === 1) {
    // Type 1: one row per key, overwritten in place; `_tm_valid_from` says when it was last written.
    const nonKey = plan.columns.filter((c) => !plan.keys.includes(c.name));
    steps.push({
      sql: `UPDATE ${ut} SET ${[...nonKey.map((c) => `${s.q(c.name)} = s.${s.q(c.name)}`), `${s.q('_tm_valid_from')} = s.${s.q('_tm_valid_from')}`, `${s.q('_tm_is_deleted')} = ${s.false}`, `${s.q('_tm_row_hash')} = s.${s.q('_tm_row_hash')}`, `${s.q('_tm_run_id')} = ${run}`].join(', ')} FROM ${S} AS s WHERE ${on(t, 's')} AND s.${s.q('_tm_op')} IN ('update', 'type1', 'insert')`,
      parameters: [plan.runId],
    });
    if (plan.deletes === 'retire') {
      steps.push({
        sql: `DELETE FROM ${ut} WHERE EXISTS (SELECT 1 FROM ${S} AS s WHERE ${on(t, 's')} AND s.${s.q('_tm_op')} = 'delete')`,
        parameters: [],
      });
    } else if (plan.deletes === 'mark') {
      steps.push({
        sql: `UPDATE ${ut} SET ${s.q('_tm_is_deleted')} = ${s.true}, ${s.q('_tm_run_id')} = ${run} FROM ${S} AS s WHERE ${on(t, 's')} AND s.${s.q('_tm_op')} = 'delete'`,
        parameters: [plan.runId],
      });
    }
    steps.push({
      sql: `INSERT INTO ${T} (${[...dataCols, ...scdCols].join(', ')}) SELECT ${dataCols.map((c) => `s.${c}`).join(', ')}, s.${s.q('_tm_valid_from')}, NULL, ${s.true}, ${s.false}, s.${s.q('_tm_row_hash')}, ${run}, s.${s.q('_tm_version_key')} FROM ${S} AS s WHERE s.${s.q('_tm_op')} = 'insert' AND NOT EXISTS (SELECT 1 FROM ${T} AS t WHERE ${on('t', 's')})`,
      parameters: [plan.runId],
    });
    return steps;
  }

  if (plan.deletes === 'mark') {
    steps.push({
      sql: `INSERT INTO ${T} (${[...dataCols, ...scdCols].join(', ')}) SELECT ${dataCols.map((c) => `t.${c}`).join(', ')}, s.${s.q('_tm_valid_from')}, NULL, ${s.true}, ${s.true}, t.${s.q('_tm_row_hash')}, ${run}, s.${s.q('_tm_version_key')} FROM ${T} AS t, ${S} AS s WHERE ${on('t', 's')} AND t.${s.q('_tm_is_current')} = ${s.true} AND s.${s.q('_tm_op')} = 'delete'`,
      parameters: [plan.runId],
    });
  }
  const closing = plan.deletes === 'ignore' ? `('insert', 'update')` : `('insert', 'update', 'delete')`;
  // Only under `mark` does a current version of this run exist when the close runs: the
  // deleted-flagged copy step 1 just inserted, which must stay current. Under `retire` and
  // `ignore` nothing of this run is in the target yet (the new versions come in step 4, the
  // whole plan is one transaction, and the ledger check stops a second application), so the
  // filter would only make every engine read `_tm_run_id` of every matched row for nothing.
  const notThisRun = plan.deletes === 'mark' ? ` AND ${t}.${s.q('_tm_run_id')} <> ${run}` : '';
  const closeParameters = plan.deletes === 'mark' ? [plan.runId] : [];
  const closeWhere = `${on(t, 's')} AND ${t}.${s.q('_tm_is_current')} = ${s.true}${notThisRun} AND s.${s.q('_tm_op')} IN ${closing}`;
  if (o.closeByCopy) {
    // One copy per current version, whatever the stage holds for its key: the stage is grouped
    // by key (its earliest start closes, as the UPDATE would apply one of them). The copies are
    // no longer current, so the DELETE after them removes only the originals. `t.*` (DuckDB's
    // star REPLACE, in the table's own column order) copies every column the target has, also
    // those the source no longer sends.
    const keyCols = plan.keys.map(s.q);
    steps.push({
      sql: `INSERT INTO ${T} SELECT t.* REPLACE (s.${s.q('_tm_valid_from')} AS ${s.q('_tm_valid_to')}, ${s.false} AS ${s.q('_tm_is_current')}) FROM ${T} AS t JOIN (SELECT ${keyCols.join(', ')}, min(${s.q('_tm_valid_from')}) AS ${s.q('_tm_valid_from')} FROM ${S} WHERE ${s.q('_tm_op')} IN ${closing} GROUP BY ${keyCols.join(', ')}) AS s ON ${on('t', 's')} WHERE t.${s.q('_tm_is_current')} = ${s.true}${notThisRun}`,
      parameters: closeParameters,
    });
    steps.push({
      sql: `DELETE FROM ${ut} USING ${S} AS s WHERE ${closeWhere}`,
      parameters: closeParameters,
    });
  } else {
    steps.push({
      sql: `UPDATE ${ut} SET ${s.q('_tm_valid_to')} = s.${s.q('_tm_valid_from')}, ${s.q('_tm_is_current')} = ${s.false} FROM ${S} AS s WHERE ${closeWhere}`,
      parameters: closeParameters,
    });
  }
  // In place on the current version: type 1 changes, and (validFrom: { column }) corrections,
  // rows with the current version's own start time and other values (README, SCD2 interval
  // rules). Both write the source's values of every column and the row hash, so that a
  // correction's tracked columns land too; for a plain type 1 change the tracked ones are equal.
  if (plan.type1Columns.length > 0 || plan.counts.type1 > 0) {
    const nonKey = plan.columns.map((c) => c.name).filter((c) => !plan.keys.includes(c));
    const inPlace = [...plan.type1Columns, ...nonKey.filter((c) => !plan.type1Columns.includes(c)), '_tm_row_hash'];
    steps.push({
      sql: `UPDATE ${ut} SET ${inPlace.map((c) => `${s.q(c)} = s.${s.q(c)}`).join(', ')} FROM ${S} AS s WHERE ${on(t, 's')} AND ${t}.${s.q('_tm_is_current')} = ${s.true} AND s.${s.q('_tm_op')} = 'type1'`,
      parameters: [],
    });
  }
  steps.push({
    sql: `INSERT INTO ${T} (${[...dataCols, ...scdCols].join(', ')}) SELECT ${dataCols.map((c) => `s.${c}`).join(', ')}, s.${s.q('_tm_valid_from')}, NULL, ${s.true}, ${s.false}, s.${s.q('_tm_row_hash')}, ${run}, s.${s.q('_tm_version_key')} FROM ${S} AS s WHERE s.${s.q('_tm_op')} IN ('insert', 'update')`,
    parameters: [plan.runId],
  });
  return steps;
}
