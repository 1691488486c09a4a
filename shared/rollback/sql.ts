import type { QualifiedName } from '../config/identifiers.js';
import type { Statement } from '../merge/dialect.js';
import { ledgerName, type SqlStyle } from '../merge/scd-sql.js';

/**
 * SQL of rollback, backups and restores, rendered per engine from a small style. Only plain
 * `UPDATE t SET … WHERE col IN (SELECT …)`, `DELETE … WHERE` and `INSERT … SELECT` are used:
 * no alias on the UPDATE target and no join in UPDATE, because Synapse accepts neither
 * (docs/design.md §9), so one rendering serves duckdb, postgres and synapse.
 */
export interface RollbackStyle extends SqlStyle {
  /** Type name a timestamp parameter is cast to. */
  timestamp: string;
  /** `CREATE TABLE new AS SELECT * FROM old` for this engine. */
  copyTable(from: string, to: string): string;
  dropTableIfExists(name: string): string;
}

export interface UndoRunInput {
  target: QualifiedName;
  keys: readonly string[];
  pipeline: string;
  runId: string;
  /** The run's boundary as stored in the ledger (`YYYY-MM-DD HH:MM:SS[.ffffff]`, UTC). */
  boundary: string;
}

/**
 * Undoes one merged run (the newest one still applied), in this order:
 *  1. reopen the versions the run closed. A version V was closed by run R when V is not
 *     current, V is the latest version of its key not written by R, and V was closed at the
 *     valid_from of a version R inserted for that key (update; re-insert after a `mark`
 *     delete) or at R's boundary (a delete, whose valid_from is always the boundary). Being the
 *     latest version excludes versions closed by earlier runs, since runs are undone newest first.
 *  2. delete the versions the run inserted (`_tm_run_id`).
 *  3. delete its ledger row, so that a later run re-applies the same changes.
 * Type 1 overwrites cannot be undone (the old values are gone); the caller refuses those runs.
 */
export function renderUndoRun(s: RollbackStyle, u: UndoRunInput): Statement[] {
  const T = s.qualify(u.target);
  const q = s.q;
  const same = (a: string, b: string) => u.keys.map((k) => `${a}.${q(k)} = ${b}.${q(k)}`).join(' AND ');
  const reopen = `UPDATE ${T} SET ${q('_tm_valid_to')} = NULL, ${q('_tm_is_current')} = ${s.true} WHERE ${q('_tm_version_key')} IN (SELECT v.${q('_tm_version_key')} FROM ${T} v WHERE v.${q('_tm_run_id')} <> ${s.param(1)} AND v.${q('_tm_is_current')} = ${s.false} AND (v.${q('_tm_valid_to')} = CAST(${s.param(2)} AS ${s.timestamp}) OR EXISTS (SELECT 1 FROM ${T} w WHERE w.${q('_tm_run_id')} = ${s.param(1)} AND ${same('w', 'v')} AND w.${q('_tm_valid_from')} = v.${q('_tm_valid_to')})) AND NOT EXISTS (SELECT 1 FROM ${T} n WHERE n.${q('_tm_run_id')} <> ${s.param(1)} AND ${same('n', 'v')} AND n.${q('_tm_valid_from')} > v.${q('_tm_valid_from')}))`;
  return [
    { sql: reopen, parameters: [u.runId, u.boundary] },
    { sql: `DELETE FROM ${T} WHERE ${q('_tm_run_id')} = ${s.param(1)}`, parameters: [u.runId] },
    {
      sql: `DELETE FROM ${s.qualify(ledgerName(u))} WHERE ${q('pipeline')} = ${s.param(1)} AND ${q('run_id')} = ${s.param(2)}`,
      parameters: [u.pipeline, u.runId],
    },
  ];
}

/**
 * Ledger rows of a pipeline in commit order, oldest first: which runs the warehouse holds. Commit
 * order, not run-id text: two ids of the same second sort by their random suffix. Merges of one
 * pipeline commit one after the other (each on top of the previous, checked in its
 * transaction), so the commit time orders them.
 */
export function renderLedgerRows(s: RollbackStyle, target: QualifiedName, pipeline: string): Statement {
  return {
    sql: `SELECT ${s.q('run_id')} FROM ${s.qualify(ledgerName({ target }))} WHERE ${s.q('pipeline')} = ${s.param(1)} ORDER BY ${s.q('committed_at')}, ${s.q('run_id')}`,
    parameters: [pipeline],
  };
}

/** The name of the backup copy taken before `runId` merged: next to the target, same schema. */
export function backupTableName(target: QualifiedName, runId: string): QualifiedName {
  // Run ids are `20261124T021500Z-7f3a`; the dash is not an identifier character.
  const suffix = `__tm_bk_${runId.replace('-', '_').toLowerCase()}`;
  const base = target.name.slice(0, 128 - suffix.length);
  return { ...(target.schema ? { schema: target.schema } : {}), name: `${base}${suffix}` };
}

/** Copies the target (CTAS). Not inside a transaction: Synapse runs no DDL in one. */
export function renderBackup(s: RollbackStyle, target: QualifiedName, backup: QualifiedName): Statement[] {
  return [
    { sql: s.dropTableIfExists(s.qualify(backup)), parameters: [] },
    { sql: s.copyTable(s.qualify(target), s.qualify(backup)), parameters: [] },
  ];
}

/**
 * Restore, inside one transaction: the target's rows replaced by the backup's, and the ledger
 * rows of the runs the backup predates removed (so those runs' changes re-apply later).
 * Columns are listed: a column the target gained after the backup gets NULL.
 */
export function renderRestore(
  s: RollbackStyle,
  r: { target: QualifiedName; backup: QualifiedName; columns: readonly string[]; pipeline: string; dropRunIds: readonly string[] },
): Statement[] {
  const T = s.qualify(r.target);
  const cols = r.columns.map(s.q).join(', ');
  const out: Statement[] = [
    { sql: `DELETE FROM ${T}`, parameters: [] },
    { sql: `INSERT INTO ${T} (${cols}) SELECT ${cols} FROM ${s.qualify(r.backup)}`, parameters: [] },
  ];
  for (const runId of r.dropRunIds) {
    out.push({
      sql: `DELETE FROM ${s.qualify(ledgerName(r))} WHERE ${s.q('pipeline')} = ${s.param(1)} AND ${s.q('run_id')} = ${s.param(2)}`,
      parameters: [r.pipeline, runId],
    });
  }
  return out;
}

export function renderDropBackup(s: RollbackStyle, backup: QualifiedName): Statement {
  return { sql: s.dropTableIfExists(s.qualify(backup)), parameters: [] };
}
