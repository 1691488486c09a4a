import { splitQualified } from '../config/identifiers.js';
import { warehouseOf } from '../config/load.js';
import type { PipelineConfig } from '../config/schema.js';
import { errorMessage } from '../errors.js';
import { isMissingTable, type LedgerHead, type Warehouse } from '../merge/warehouse.js';
import { commitCheckpoint, readCheckpoint, readCheckpointHead, rewindCheckpoint, type Checkpoint } from '../state/checkpoints.js';
import type { EngineContext } from './context.js';
import { findRun } from '../state/runs.js';
import { transitionRun } from './run-lifecycle.js';

/**
 * The commit protocol (README "Guarantees", docs/design.md §5.3–5.4).
 *
 * The commit point of a run is the warehouse transaction of its merge: the SCD steps and the
 * ledger row commit together, and the ledger row records the run's sequence number, its base
 * (the committed run it was computed against), what it read up to and the snapshot it produced.
 * The transaction applies nothing unless its base is still the pipeline's latest committed run
 * (the dialects' ledgerHead, checked inside the transaction; see each warehouse's merge).
 *
 * The Table Storage checkpoint is a cache of the ledger head. A crash between the merge commit
 * and the checkpoint write leaves it one run behind; every run start first brings it level with
 * the ledger here, so the next run reads on from the committed run instead of re-reading the
 * old window against the old snapshot (which the ledger check would refuse anyway).
 */

/** The pipeline's latest committed run as the warehouse ledger records it; undefined when there is none. */
export async function readLedgerHead(ctx: EngineContext, p: PipelineConfig): Promise<{ head: LedgerHead | undefined; ledgerExists: boolean } | 'unsupported'> {
  const warehouse = ctx.warehouseFor(ctx, warehouseOf(ctx.project, p), p);
  try {
    if (!warehouse.sql) return 'unsupported';
    const rows = await warehouse.sql.query<LedgerHead>(warehouse.dialect.ledgerHead(splitQualified(p.target.table), p.name));
    return { head: rows[0], ledgerExists: true };
  } catch (cause) {
    // No ledger table (or no base_run_id column yet): nothing was merged under the protocol.
    if (isMissingTable(cause) || /Binder Error|Invalid column name|not found/i.test(errorMessage(cause))) return { head: undefined, ledgerExists: false };
    throw cause;
  } finally {
    await warehouse.close();
  }
}

export type Reconciled =
  | { kind: 'level' }
  | { kind: 'rolled-forward'; runId: string }
  | { kind: 'rewound'; toRunId: string | null }
  | { kind: 'unknown'; reason: string };

/**
 * Brings the checkpoint level with the ledger head. Forward: the head run's merge committed but
 * its checkpoint write was lost (the head's base is what the checkpoint points at). Back: a
 * rollback or restore removed ledger rows but crashed before rewinding the checkpoint (the head
 * is in the checkpoint's history). Anything else is reported, not guessed at: the merge check
 * then refuses to apply on a base that is not the head.
 */
export async function reconcileCheckpoint(ctx: EngineContext, p: PipelineConfig): Promise<Reconciled> {
  const read = await readLedgerHead(ctx, p);
  if (read === 'unsupported') {
    // The merge's own check still refuses a stale base; only the automatic roll-forward is lost.
    return { kind: 'unknown', reason: `the ${p.target.warehouse} warehouse offers no SQL access to read its ledger` };
  }
  // The head row first: level (every run start but one after a crash) and a roll-forward need
  // nothing else. The history rows are listed only for a rewind, below.
  const head = await readCheckpointHead(ctx.tables, p.name);
  const headId = read.head?.run_id ?? null;
  if (headId === head.lastRunId) return { kind: 'level' };
  const log = (msg: string, extra: Record<string, unknown> = {}) => ctx.log.log('warn', msg, { pipeline: p.name, ...extra });
  if (read.head && read.head.snapshot && (read.head.base_run_id ?? '') === (head.lastRunId ?? '')) {
    await commitCheckpoint(ctx.tables, {
      pipeline: p.name,
      runId: read.head.run_id,
      baseRunId: head.lastRunId,
      watermark: read.head.read_to,
      snapshot: read.head.snapshot,
      now: ctx.now(),
    });
    log(`checkpoint rolled forward to run ${read.head.run_id}: its merge committed in the warehouse but the checkpoint write was lost`, { runId: read.head.run_id });
    return { kind: 'rolled-forward', runId: read.head.run_id };
  }
  // Decided on the whole checkpoint as it is now (head and history read together, as before).
  const { checkpoint } = await readCheckpoint(ctx.tables, p.name);
  if (headId === checkpoint.lastRunId) return { kind: 'level' };
  if (inHistory(checkpoint, headId) && (read.ledgerExists || headId === null)) {
    // The runs after the head were undone in the warehouse; their records say so too, unless
    // the interrupted rollback or restore already marked them.
    const undone = checkpoint.history.slice(headId === null ? 0 : checkpoint.history.findIndex((h) => h.runId === headId) + 1);
    const at = ctx.now().toISOString();
    for (const h of undone) {
      if (!(await findRun(ctx.tables, p.name, h.runId))) continue;
      await transitionRun(ctx, p.name, h.runId, 'rolledBackByRecovery', (r) => ({ ...r, rolledBackAt: at, rolledBackBy: 'recovery', ...(headId ? { rolledBackTo: headId } : {}) }));
    }
    await rewindCheckpoint(ctx.tables, p.name, headId, ctx.now());
    log(`checkpoint rewound to ${headId ?? 'nothing'}: the warehouse ledger no longer has the runs after it (an interrupted rollback or restore)`);
    return { kind: 'rewound', toRunId: headId };
  }
  const reason = `the warehouse ledger's latest run of ${p.name} is ${headId ?? 'none'} but the checkpoint says ${checkpoint.lastRunId ?? 'none'}`;
  log(`checkpoint not reconciled: ${reason}`);
  return { kind: 'unknown', reason };
}

function inHistory(checkpoint: Checkpoint, runId: string | null): boolean {
  return runId === null || checkpoint.history.some((h) => h.runId === runId);
}

/** True when the run's merge is in the ledger (committed), whatever its run record says. */
export async function isCommitted(ctx: EngineContext, p: PipelineConfig, runId: string): Promise<boolean> {
  const warehouse = ctx.warehouseFor(ctx, warehouseOf(ctx.project, p), p);
  try {
    return await ledgerHasRun(warehouse, p, runId);
  } finally {
    await warehouse.close();
  }
}

/** True when this warehouse's ledger holds the run's merge; false while it has no ledger yet. */
export async function ledgerHasRun(warehouse: Warehouse, p: PipelineConfig, runId: string): Promise<boolean> {
  if (!warehouse.sql) return false;
  const st = warehouse.dialect.ledgerCheck({ pipeline: p.name, runId, target: splitQualified(p.target.table) });
  try {
    return (await warehouse.sql.query(st)).length > 0;
  } catch (cause) {
    if (isMissingTable(cause)) return false;
    throw cause;
  }
}
