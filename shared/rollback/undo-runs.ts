import { RUN_ID_PATTERN, splitQualified } from '../config/identifiers.js';
import { getPipeline, warehouseOf } from '../config/load.js';
import type { PipelineConfig } from '../config/schema.js';
import type { EngineContext } from '../engine/context.js';
import { newRunId } from '../engine/run-id.js';
import { NotFoundError } from '../errors.js';
import type { Statement } from '../merge/dialect.js';
import { isMissingTable, type Warehouse, type WarehouseSql } from '../merge/warehouse.js';
import { readCheckpoint, rewindCheckpoint } from '../state/checkpoints.js';
import { acquireLease, releaseLease } from '../state/leases.js';
import { isLocalOwnerGone, thisProcessOwner } from '../state/lease-owner.js';
import { transitionRun } from '../engine/run-lifecycle.js';
import { compareRunStart, findRun, isTerminalStatus, type RunRecord } from '../state/runs.js';
import { RefusedError } from './refused.js';
import { renderLedgerRows, renderUndoRun } from './sql.js';
import { rollbackStyleFor } from './styles.js';

export interface RollbackRequest {
  pipeline: string;
  toRunId: string;
  /** Who asked (cli, http); kept on the rolled-back run records. */
  by: string;
}

/** One run a rollback undoes, with the counts it wrote (its versions go, the ones it closed reopen). */
export interface UndoneRun {
  runId: string;
  inserted: number;
  updated: number;
  deleted: number;
}

export interface RollbackResult {
  pipeline: string;
  toRunId: string;
  /** Runs undone, newest first. */
  undone: string[];
}

/** What a rollback would undo, newest first; nothing is changed to find out. */
export interface RollbackPreview {
  pipeline: string;
  toRunId: string;
  runs: UndoneRun[];
}

/** The preview behind `tidemark rollback --dry-run` and the prompt before it acts. */
export async function previewRollback(ctx: EngineContext, req: Omit<RollbackRequest, 'by'>): Promise<RollbackPreview> {
  const r = await undoRuns(ctx, { ...req, by: 'preview' }, true);
  return { pipeline: r.pipeline, toRunId: r.toRunId, runs: r.runs };
}

export function warehouseSql(w: Warehouse, what: string): WarehouseSql {
  if (!w.sql) throw new RefusedError(`${what} is not available for ${w.dialect.name} warehouses yet`);
  return w.sql;
}

/** The ledger's boundary column holds the run boundary as a naive UTC timestamp. */
export function ledgerBoundary(iso: string): string {
  return iso.replace('T', ' ').replace('Z', '');
}

/**
 * Takes the pipeline's lease for a maintenance operation (rollback, restore), so that no run
 * starts in the middle of it and none is in flight when it begins. The lease names its owner
 * like a run's (state/lease-owner.ts): a rollback or restore whose process died is taken over
 * at once by the next run or operation, while one whose process still runs keeps it.
 */
export async function withMaintenanceLease<T>(ctx: EngineContext, pipeline: string, what: string, fn: () => Promise<T>): Promise<T> {
  const id = newRunId(ctx.now());
  await acquireLease(ctx.tables, {
    pipeline,
    runId: id,
    now: ctx.now(),
    ttlMs: ctx.leaseTtlMs,
    owner: ctx.owner ?? thisProcessOwner(),
    isOwnerGone: isLocalOwnerGone,
    isActive: async (runId) => {
      // A holder without a run record is another rollback or restore (or a start that died
      // before writing its record): active until its process is gone or its lease expires.
      const r = await findRun(ctx.tables, pipeline, runId);
      return r === undefined || !isTerminalStatus(r.status);
    },
    onStale: async (runId, why, holder) => {
      const gone = why === 'expired' ? 'its lease expired' : `its process (pid ${holder.ownerPid} on ${holder.ownerHost}) is gone`;
      if ((await findRun(ctx.tables, pipeline, runId)) === undefined) {
        // Rollback and restore are safe to take over: each is one warehouse transaction, and
        // asking again finishes what an interrupted one left (see rollbackPipeline).
        ctx.log.log('warn', `${what}: taking over the lease of ${runId}, a rollback, restore or start of ${pipeline} that did not finish (${gone})`, { pipeline });
        return;
      }
      throw new RefusedError(`${what} refused: run ${runId} of ${pipeline} holds the lease but ${gone}; the next tidemark run takes it over (or tidemark cancel ${pipeline} ends it), then ask again`);
    },
  }).catch((err: unknown) => {
    if (err instanceof RefusedError) throw err;
    throw new RefusedError(`${what} refused: ${(err as Error).message}; wait until it ends`, { cause: err });
  });
  try {
    return await fn();
  } finally {
    await releaseLease(ctx.tables, pipeline, id);
  }
}

/**
 * Undoes every run newer than `toRunId` (docs/design.md §11), newest first, in one warehouse
 * transaction; then rewinds the checkpoint and snapshot pointer and marks the runs
 * `rolled_back`. A crash after the warehouse commit is healed by running the same rollback
 * again: runs whose ledger row is gone are treated as already undone in the warehouse.
 */
export async function rollbackPipeline(ctx: EngineContext, req: RollbackRequest): Promise<RollbackResult> {
  const r = await undoRuns(ctx, req, false);
  return { pipeline: r.pipeline, toRunId: r.toRunId, undone: r.undone };
}

async function undoRuns(ctx: EngineContext, req: RollbackRequest, dryRun: boolean): Promise<RollbackResult & { runs: UndoneRun[] }> {
  const p = getPipeline(ctx.project, req.pipeline);
  if (!RUN_ID_PATTERN.test(req.toRunId)) {
    throw new RefusedError(`invalid run id ${JSON.stringify(req.toRunId)}: expected the form 20261124T021500Z-7f3a (see tidemark status)`);
  }
  if (p.target.scd === 1) throw new RefusedError(`rollback refused: ${p.name} is SCD type 1 (overwritten in place, no history to go back to); restore a backup instead`);
  const work = async (): Promise<RollbackResult & { runs: UndoneRun[] }> => {
    const { checkpoint } = await readCheckpoint(ctx.tables, p.name);
    const idx = checkpoint.history.findIndex((h) => h.runId === req.toRunId);
    if (idx < 0) await explainNotInHistory(ctx, p, req.toRunId, checkpoint.history.map((h) => h.runId));
    const newerCommitted = checkpoint.history.slice(idx + 1).map((h) => h.runId);

    const target = splitQualified(p.target.table);
    let toUndo: string[] = [];
    let summary: UndoneRun[] = [];
    const warehouse = ctx.warehouseFor(ctx, warehouseOf(ctx.project, p), p);
    try {
      const sql = warehouseSql(warehouse, 'rollback');
      const style = rollbackStyleFor(warehouse.dialect.name);
      const ledger = await ledgerRunIds(sql, style, target, p.name);
      // Runs the warehouse holds beyond the target: the committed ones, and any that merged
      // without reaching the checkpoint (a crash between the two) — undone as well.
      const at = ledger.indexOf(req.toRunId);
      const kept = new Set(checkpoint.history.slice(0, idx + 1).map((h) => h.runId));
      const inWarehouse = at >= 0 ? ledger.slice(at + 1) : ledger.filter((id) => !kept.has(id));
      toUndo = newestFirst(checkpoint.history.map((h) => h.runId), ledger, new Set([...newerCommitted, ...inWarehouse]));
      if (toUndo.length === 0) return { pipeline: p.name, toRunId: req.toRunId, undone: [], runs: [] };

      const records = new Map<string, RunRecord>();
      for (const id of toUndo) {
        const r = await findRun(ctx.tables, p.name, id);
        if (!r) throw new RefusedError(`rollback refused: run ${id} is in the warehouse ledger but has no run record; the state of ${p.name} is not tidemark's own`);
        if ((r.counts.type1 ?? 0) > 0) {
          throw new RefusedError(
            `rollback refused: run ${id} overwrote the current version in place (${r.counts.type1} row(s): type 1 changes, or corrections with the same target.validFrom time); the old values are not kept. Restore a backup instead (tidemark backups ${p.name})`,
          );
        }
        records.set(id, r);
      }
      summary = toUndo.map((id) => {
        const c = records.get(id)!.counts;
        return { runId: id, inserted: c.inserted, updated: c.updated, deleted: c.deleted };
      });
      if (dryRun) return { pipeline: p.name, toRunId: req.toRunId, undone: toUndo, runs: summary };
      const statements: Statement[] = [];
      for (const id of toUndo.filter((x) => ledger.includes(x))) {
        statements.push(...renderUndoRun(style, { target, keys: p.key, pipeline: p.name, runId: id, boundary: ledgerBoundary(records.get(id)!.boundary) }));
      }
      if (statements.length > 0) await sql.transaction(statements);
    } finally {
      await warehouse.close();
    }

    // The runs are marked before the checkpoint is rewound: while the checkpoint still lists
    // them, asking again finds them to undo (and marks them); once it is rewound they are no
    // longer found, so a death between the two would leave them `succeeded` though undone.
    const at = ctx.now().toISOString();
    const undone = toUndo;
    for (const id of undone) {
      await transitionRun(ctx, p.name, id, 'rolledBack', (r) => ({ ...r, rolledBackAt: at, rolledBackBy: req.by, rolledBackTo: req.toRunId }));
    }
    await rewindCheckpoint(ctx.tables, p.name, req.toRunId, ctx.now());
    ctx.log.log('warn', `rolled back to ${req.toRunId}`, { pipeline: p.name, undone });
    return { pipeline: p.name, toRunId: req.toRunId, undone, runs: summary };
  };
  // A preview reads only; it takes no lease, so it neither waits for nor blocks a run.
  return dryRun ? work() : withMaintenanceLease(ctx, p.name, 'rollback', work);
}

/**
 * The runs to undo, newest first, in commit order: the checkpoint's history, then ledger rows
 * it does not have (merged, checkpoint write lost: the newest of all).
 */
export function newestFirst(history: readonly string[], ledger: readonly string[], undo: ReadonlySet<string>): string[] {
  const order = [...history];
  for (const id of ledger) if (!order.includes(id)) order.push(id);
  return order.filter((id) => undo.has(id)).reverse();
}

async function ledgerRunIds(sql: WarehouseSql, style: ReturnType<typeof rollbackStyleFor>, target: ReturnType<typeof splitQualified>, pipeline: string): Promise<string[]> {
  try {
    return (await sql.query<{ run_id: string }>(renderLedgerRows(style, target, pipeline))).map((r) => r.run_id);
  } catch (cause) {
    // No ledger table: nothing was ever merged into this warehouse.
    if (isMissingTable(cause)) return [];
    throw cause;
  }
}

function isBeforeHistory(run: RunRecord, first: RunRecord | undefined): boolean {
  return first !== undefined && compareRunStart(run, first) < 0;
}

async function explainNotInHistory(ctx: EngineContext, p: PipelineConfig, runId: string, history: string[]): Promise<never> {
  const run = await findRun(ctx.tables, p.name, runId);
  if (!run) throw new NotFoundError(`run ${runId} of pipeline ${p.name} not found (tidemark status lists the runs)`);
  if (history.length > 0 && isBeforeHistory(run, await findRun(ctx.tables, p.name, history[0]!))) {
    throw new RefusedError(`rollback refused: run ${runId} is older than the checkpoint history of ${p.name} (it starts at ${history[0]}); restore a backup instead`);
  }
  if (run.status === 'rolled_back') throw new RefusedError(`rollback refused: run ${runId} was itself rolled back; choose a committed run (tidemark status)`);
  throw new RefusedError(`rollback refused: run ${runId} never committed (status ${run.status}); choose a run whose merge committed`);
}
