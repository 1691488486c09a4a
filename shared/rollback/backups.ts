import { RUN_ID_PATTERN, splitQualified, type QualifiedName } from '../config/identifiers.js';
import { parseDuration } from '../config/duration.js';
import { getPipeline, warehouseOf } from '../config/load.js';
import type { PipelineConfig } from '../config/schema.js';
import { ledgerHasRun } from '../engine/commit-protocol.js';
import type { EngineContext } from '../engine/context.js';
import { NotFoundError } from '../errors.js';
import type { Warehouse } from '../merge/warehouse.js';
import { readCheckpoint, rewindCheckpoint } from '../state/checkpoints.js';
import { transitionRun } from '../engine/run-lifecycle.js';
import { findRun } from '../state/runs.js';
import { TABLES } from '../storage/layout.js';
import type { TableEntity } from '../storage/ports.js';
import { RefusedError } from './refused.js';
import { backupTableName, renderBackup, renderDropBackup, renderLedgerRows, renderRestore } from './sql.js';
import { rollbackStyleFor } from './styles.js';
import { newestFirst, warehouseSql, withMaintenanceLease } from './undo-runs.js';

export interface BackupRecord extends TableEntity {
  pipeline: string;
  /** The run the copy was taken before; also the backup's id. */
  backupId: string;
  /** The committed run the copy reflects (null: taken before the first committed load). */
  baseRunId: string | null;
  reason: 'full-refresh' | 'first-load';
  target: string;
  /** Where the copy lives, in the same warehouse and schema as the target. */
  table: string;
  rows: number;
  createdAt: string;
  expiresAt: string;
  restoredAt?: string;
}

const qualifiedText = (n: QualifiedName) => (n.schema ? `${n.schema}.${n.name}` : n.name);

/**
 * Before a full refresh or a first load the target is copied (CTAS) so that the load can be
 * undone even when rollback cannot (docs/design.md §11). Idempotent by run id: a redelivered merge
 * finds the record and does not copy the already-merged target again. A target that does not
 * exist yet has nothing to keep, and leaves no record; so a first load delivered again after its
 * merge committed (the first delivery outlived its visibility, or a takeover) asks the ledger,
 * since a copy then would hold the load itself, not what was there before it.
 */
export async function backupBeforeMerge(
  ctx: EngineContext,
  p: PipelineConfig,
  run: { runId: string; mode: string },
  baseRunId: string | null,
  warehouse: Warehouse,
): Promise<BackupRecord | undefined> {
  const reason = run.mode === 'full' ? 'full-refresh' : baseRunId === null ? 'first-load' : undefined;
  if (!reason || !p.backup.enabled) return undefined;
  const existing = await ctx.tables.get<BackupRecord>(TABLES.backups, p.name, run.runId);
  if (existing) return existing.entity;
  const target = splitQualified(p.target.table);
  if ((await warehouse.describe(target)).length === 0) return undefined;
  if (await ledgerHasRun(warehouse, p, run.runId)) return undefined;
  const sql = warehouseSql(warehouse, 'backup before a full refresh');
  const style = rollbackStyleFor(warehouse.dialect.name);
  const bk = backupTableName(target, run.runId);
  await sql.execute(renderBackup(style, target, bk));
  const [counted] = await sql.query<{ n: bigint | number }>({ sql: `SELECT count(*) AS n FROM ${style.qualify(bk)}`, parameters: [] });
  const now = ctx.now();
  const record: BackupRecord = {
    partitionKey: p.name,
    rowKey: run.runId,
    pipeline: p.name,
    backupId: run.runId,
    baseRunId,
    reason,
    target: p.target.table,
    table: qualifiedText(bk),
    rows: Number(counted?.n ?? 0),
    createdAt: now.toISOString(),
    expiresAt: new Date(now.getTime() + parseDuration(p.backup.keep)).toISOString(),
  };
  await ctx.tables.upsert(TABLES.backups, record);
  ctx.log.log('info', `target ${p.target.table} copied to ${record.table} before the ${reason}`, { pipeline: p.name, runId: run.runId });
  return record;
}

/** Backups of one pipeline or of all, newest first. */
export async function listBackups(ctx: EngineContext, pipeline?: string): Promise<BackupRecord[]> {
  const names = pipeline ? [getPipeline(ctx.project, pipeline).name] : [...ctx.project.pipelines.keys()];
  const out: BackupRecord[] = [];
  for (const n of names) out.push(...(await ctx.tables.list<BackupRecord>(TABLES.backups, n)));
  return out.sort((a, b) => (a.backupId < b.backupId ? 1 : -1));
}

export interface RestoreResult {
  pipeline: string;
  backupId: string;
  table: string;
  rows: number;
  /** Runs whose effect the restore removed (marked rolled_back). */
  undone: string[];
  checkpointRunId: string | null;
}

/**
 * Replaces the target's rows with the backup's in one transaction (dropping the ledger rows of
 * the runs it predates), then rewinds the checkpoint to the run the backup reflects.
 */
export async function restoreBackup(ctx: EngineContext, req: { pipeline: string; backupId: string; by: string }): Promise<RestoreResult> {
  return restoreOrPreview(ctx, req, false);
}

/**
 * What a restore would do (rows put back, runs whose effect goes, where the checkpoint lands),
 * found with reads only: no lease, no warehouse write.
 */
export function previewRestore(ctx: EngineContext, req: { pipeline: string; backupId: string }): Promise<RestoreResult> {
  return restoreOrPreview(ctx, { ...req, by: 'preview' }, true);
}

async function restoreOrPreview(ctx: EngineContext, req: { pipeline: string; backupId: string; by: string }, dryRun: boolean): Promise<RestoreResult> {
  const p = getPipeline(ctx.project, req.pipeline);
  if (!RUN_ID_PATTERN.test(req.backupId)) throw new RefusedError(`invalid backup id ${JSON.stringify(req.backupId)}: tidemark backups ${p.name} lists them`);
  const stored = await ctx.tables.get<BackupRecord>(TABLES.backups, p.name, req.backupId);
  if (!stored) throw new NotFoundError(`backup ${req.backupId} of ${p.name} not found (tidemark backups ${p.name} lists them)`);
  const b = stored.entity;
  if (b.target !== p.target.table) {
    throw new RefusedError(`restore refused: backup ${b.backupId} is a copy of ${b.target}, but ${p.name} now loads ${p.target.table}`);
  }
  if (Date.parse(b.expiresAt) <= ctx.now().getTime()) throw new RefusedError(`restore refused: backup ${b.backupId} expired at ${b.expiresAt} and may already be dropped`);
  // Committed runs newer than the backup, and runs the warehouse holds beyond it, newest first.
  // Newest first in commit order (the history, then ledger rows it lacks), never by run-id text.
  const undoneBy = (history: ReadonlyArray<{ runId: string }>, dropRunIds: readonly string[]) => {
    const ids = history.map((h) => h.runId);
    const newerCommitted = b.baseRunId === null ? ids : ids.slice(ids.indexOf(b.baseRunId) + 1);
    return newestFirst(ids, dropRunIds, new Set([...newerCommitted, ...dropRunIds]));
  };
  const work = async (): Promise<RestoreResult> => {
    const { checkpoint } = await readCheckpoint(ctx.tables, p.name);
    if (b.baseRunId !== null && !checkpoint.history.some((h) => h.runId === b.baseRunId)) {
      throw new RefusedError(
        `restore refused: backup ${b.backupId} reflects run ${b.baseRunId}, which is no longer in the committed history of ${p.name} (rolled back or beyond the history); the checkpoint could not be rewound to match`,
      );
    }
    const target = splitQualified(p.target.table);
    const bk = splitQualified(b.table);
    const warehouse = ctx.warehouseFor(ctx, warehouseOf(ctx.project, p), p);
    let dropRunIds: string[] = [];
    try {
      const sql = warehouseSql(warehouse, 'restore');
      const style = rollbackStyleFor(warehouse.dialect.name);
      const cols = await warehouse.describe(bk);
      if (cols.length === 0) throw new RefusedError(`restore refused: the backup table ${b.table} is gone from the warehouse`);
      const ledger = (await sql.query<{ run_id: string }>(renderLedgerRows(style, target, p.name))).map((r) => r.run_id);
      const at = b.baseRunId === null ? -1 : ledger.indexOf(b.baseRunId);
      const kept = new Set(b.baseRunId === null ? [] : checkpoint.history.slice(0, checkpoint.history.findIndex((h) => h.runId === b.baseRunId) + 1).map((h) => h.runId));
      dropRunIds = at >= 0 || b.baseRunId === null ? ledger.slice(at + 1) : ledger.filter((id) => !kept.has(id));
      if (dryRun) {
        return { pipeline: p.name, backupId: b.backupId, table: b.table, rows: b.rows, undone: undoneBy(checkpoint.history, dropRunIds), checkpointRunId: b.baseRunId };
      }
      await sql.transaction(renderRestore(style, { target, backup: bk, columns: cols.map((c) => c.name), pipeline: p.name, dropRunIds }));
    } finally {
      await warehouse.close();
    }
    const undone = undoneBy(checkpoint.history, dropRunIds);
    const at = ctx.now().toISOString();
    // Marked before the rewind, as rollback does: asking again finds them while the checkpoint still lists them.
    for (const id of undone) {
      if (await findRun(ctx.tables, p.name, id)) {
        await transitionRun(ctx, p.name, id, 'rolledBack', (r) => ({ ...r, rolledBackAt: at, rolledBackBy: req.by, restoredBackup: b.backupId }));
      }
    }
    const next = await rewindCheckpoint(ctx.tables, p.name, b.baseRunId, ctx.now());
    await ctx.tables.upsert(TABLES.backups, { ...b, restoredAt: at });
    ctx.log.log('warn', `restored backup ${b.backupId}`, { pipeline: p.name, undone });
    return { pipeline: p.name, backupId: b.backupId, table: b.table, rows: b.rows, undone, checkpointRunId: next.lastRunId };
  };
  return dryRun ? work() : withMaintenanceLease(ctx, p.name, 'restore', work);
}

/** Drops every expired backup table and its record (the daily timer, functions/backup-expiry.ts). */
export async function dropExpiredBackups(ctx: EngineContext): Promise<string[]> {
  const dropped: string[] = [];
  const now = ctx.now().getTime();
  for (const p of ctx.project.pipelines.values()) {
    const expired = (await ctx.tables.list<BackupRecord>(TABLES.backups, p.name)).filter((b) => Date.parse(b.expiresAt) <= now);
    if (expired.length === 0) continue;
    const warehouse = ctx.warehouseFor(ctx, warehouseOf(ctx.project, p), p);
    try {
      const sql = warehouseSql(warehouse, 'dropping expired backups');
      const style = rollbackStyleFor(warehouse.dialect.name);
      for (const b of expired) {
        await sql.execute([renderDropBackup(style, splitQualified(b.table))]);
        await ctx.tables.delete(TABLES.backups, p.name, b.rowKey);
        dropped.push(`${p.name}/${b.backupId}`);
        ctx.log.log('info', `expired backup ${b.table} dropped`, { pipeline: p.name, backupId: b.backupId });
      }
    } finally {
      await warehouse.close();
    }
  }
  return dropped;
}
