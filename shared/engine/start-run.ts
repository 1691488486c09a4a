import { getPipeline } from '../config/load.js';
import { assertSupported } from '../config/support.js';
import { acquireLease, releaseLease, type LeaseOwner } from '../state/leases.js';
import { isLocalOwnerGone, thisProcessOwner } from '../state/lease-owner.js';
import { assertNotHeld } from '../validate/hold.js';
import { findRun, isTerminalStatus, newRunRecord, type ReconcileOptions, type RunMode, type RunRecord, type RunTrigger } from '../state/runs.js';
import { QUEUES } from '../storage/layout.js';
import type { EngineContext } from './context.js';
import { newRunId } from './run-id.js';
import { dependencyFields } from './dependencies.js';
import { emitRunStarted } from './run-events.js';
import { failRun, recordStarted, reopenCommittedRun } from './run-lifecycle.js';
import { validateStage } from './stages.js';
import { isCommitted, reconcileCheckpoint } from './commit-protocol.js';
import { nextRunSeq } from '../state/run-sequence.js';
import { assertReconcilable } from './reconcile.js';
import { RunResumedError, takeOverOrphan } from './resume.js';

export interface StartRunRequest {
  pipeline: string;
  trigger: RunTrigger;
  mode?: RunMode;
  backfill?: { from?: string; to?: string };
  /** mode reconcile only. */
  reconcile?: ReconcileOptions;
  /** Windows of a split backfill still to run after this one (shared/engine/backfill.ts). */
  backfillRemaining?: Array<{ from: string; to: string }>;
  /** Who holds the lease; default: this process (host, pid, start time). Azure adds its invocation id. */
  owner?: LeaseOwner;
}

/**
 * Starts a run: takes the pipeline's lease, writes the run record, enqueues the extract.
 * Timers and HTTP only call this; the work itself happens in the queue- and blob-triggered
 * stages. Throws ConflictError when a run of the pipeline is in flight.
 */
export async function startRun(ctx: EngineContext, req: StartRunRequest): Promise<RunRecord> {
  const pipeline = getPipeline(ctx.project, req.pipeline);
  assertSupported(ctx.project, pipeline);
  await assertNotHeld(ctx, pipeline);
  if (req.mode === 'reconcile') assertReconcilable(pipeline, req.reconcile ?? { deletes: false, allowEmpty: false });
  const now = ctx.now();
  const runId = newRunId(now);
  const owner = { ...(ctx.owner ?? thisProcessOwner()), ...req.owner };
  await acquireLease(ctx.tables, {
    pipeline: pipeline.name,
    runId,
    now,
    ttlMs: ctx.leaseTtlMs,
    owner,
    isOwnerGone: isLocalOwnerGone,
    isActive: async (id) => {
      // A holder without a run record is an operation (rollback, restore) or a start that
      // crashed before writing its record: active until its lease expires.
      const r = await findRun(ctx.tables, pipeline.name, id);
      return r === undefined || !isTerminalStatus(r.status);
    },
    onStale: async (id, why, holder) => {
      if (why === 'owner-gone') {
        // Its process died: resumed from its recorded progress (then this start gives way to it),
        // completed, or failed when it cannot go on (shared/engine/resume.ts).
        const taken = await takeOverOrphan(ctx, pipeline, holder, { owner, by: runId, enders: { completeCommittedRun, failRun } });
        if (taken.kind === 'resumed') throw new RunResumedError(taken, pipeline.name);
        if (taken.kind !== 'not-a-run') return;
      }
      const what = why === 'expired' ? 'run lease expired' : `the process holding the run lease (pid ${holder.ownerPid} on ${holder.ownerHost}) is gone`;
      if (await isCommitted(ctx, pipeline, id)) {
        // Its merge committed: failing it would leave the checkpoint behind the warehouse, and
        // the next run would compute the same changes again. Finish it instead.
        ctx.log.log('warn', `${what} after its merge committed; completing the run`, { pipeline: pipeline.name, runId: id });
        await completeCommittedRun(ctx, pipeline.name, id);
        return;
      }
      if ((await findRun(ctx.tables, pipeline.name, id)) === undefined) {
        // A rollback, restore or start that died before its run record: nothing to mark; the
        // checkpoint reconcile below levels what an interrupted rollback or restore left.
        ctx.log.log('warn', `${what.replace('run lease', 'lease')}: its holder ${id} (a rollback, restore or start) did not finish; taking over`, { pipeline: pipeline.name, runId: id });
        await releaseLease(ctx.tables, pipeline.name, id);
        return;
      }
      ctx.log.log('warn', `${what}; marking the run failed`, { pipeline: pipeline.name, runId: id });
      await failRun(
        ctx,
        pipeline.name,
        id,
        why === 'expired'
          ? `lease expired after ${Math.round(ctx.leaseTtlMs / 60000)} min: the run was stuck and is abandoned`
          : `interrupted: ${what} before its merge committed; nothing was applied, run ${runId} took over`,
      );
    },
  });
  let seq: number;
  try {
    // The checkpoint is a cache of the warehouse ledger: level it before this run reads it.
    const levelled = await reconcileCheckpoint(ctx, pipeline);
    if (levelled.kind === 'rolled-forward') {
      // A run cancelled while its merge committed (and whose merge died before it could
      // reopen it): finished, so its record matches the warehouse. A run failed by another
      // path (poison, an operator) keeps its record; its changes are kept by the roll-forward.
      const r = await findRun(ctx.tables, pipeline.name, levelled.runId);
      if (r?.status === 'cancelled') await completeCommittedRun(ctx, pipeline.name, levelled.runId);
    }
    seq = await nextRunSeq(ctx.tables, pipeline.name);
  } catch (err) {
    await releaseLease(ctx.tables, pipeline.name, runId).catch(() => undefined);
    throw err;
  }
  const waits = await dependencyFields(ctx, pipeline, req.mode ?? 'incremental', now);
  const record = newRunRecord({
    pipeline: pipeline.name,
    runId,
    trigger: req.trigger,
    mode: req.mode ?? 'incremental',
    now,
    ...(req.backfill ? { backfill: req.backfill } : {}),
    ...(req.mode === 'reconcile' ? { reconcile: req.reconcile ?? { deletes: false, allowEmpty: false } } : {}),
  });
  record.seq = seq;
  Object.assign(record, waits, req.backfillRemaining?.length ? { backfillRemaining: req.backfillRemaining } : {});
  try {
    await recordStarted(ctx, record);
    await ctx.queues.send(QUEUES.extract, { pipeline: pipeline.name, runId });
  } catch (err) {
    await releaseLease(ctx.tables, pipeline.name, runId).catch(() => undefined);
    await failRun(ctx, pipeline.name, runId, `could not enqueue the extract: ${(err as Error).message}`).catch(() => undefined);
    throw err;
  }
  ctx.log.log('info', 'run started', { pipeline: pipeline.name, runId, trigger: req.trigger, mode: record.mode });
  emitRunStarted(ctx, record);
  return record;
}

/**
 * Finishes a run whose merge is in the warehouse ledger: the checkpoint is rolled forward to it
 * and its validation runs here, which records its outcome and releases its lease.
 */
export async function completeCommittedRun(ctx: EngineContext, pipeline: string, runId: string): Promise<void> {
  await reconcileCheckpoint(ctx, getPipeline(ctx.project, pipeline));
  await reopenCommittedRun(ctx, pipeline, runId);
  await validateStage(ctx, { pipeline, runId }, startRun);
}

// The run's transitions live in run-lifecycle.ts; re-exported for the modules that import them from here.
export { failRun, reopenCommittedRun };
