import { getPipeline } from '../config/load.js';
import { readLease } from '../state/leases.js';
import { findRun, isTerminalStatus } from '../state/runs.js';
import { stageInFlight } from '../state/stage-claims.js';
import { isLocalOwnerGone } from '../state/lease-owner.js';
import { isCommitted } from './commit-protocol.js';
import type { EngineContext } from './context.js';
import { failRun } from './run-lifecycle.js';
import { completeCommittedRun } from './start-run.js';

export type EndedRun =
  | { kind: 'none' }
  | { kind: 'operation'; holder: string }
  | { kind: 'not-ours'; runId: string }
  | { kind: 'completed'; runId: string; committedDuringCancel?: boolean }
  | { kind: 'cancelled' | 'interrupted'; runId: string; mergeStillRunning?: boolean };

/**
 * Ends the pipeline's in-flight run on request (`tidemark cancel`) or because the process that
 * drives it is stopping (SIGINT / SIGTERM). The warehouse ledger decides: a merge that committed
 * is completed (checkpoint rolled forward, validation run), never undone; otherwise the run is
 * marked cancelled or failed as interrupted, which applies nothing, and its lease is released.
 * Stages skip messages of a run that has ended, so its queued messages are drained harmlessly.
 * `onlyOwnedBy` limits it to a run whose lease this pid holds: a stopping CLI must not end a run
 * another process started.
 */
export async function endInFlightRun(
  ctx: EngineContext,
  pipelineName: string,
  how: { kind: 'cancelled' | 'interrupted'; reason: string; onlyOwnedBy?: number; /** How long to wait for a merge already inside its transaction (default 60 s). */ waitMs?: number },
): Promise<EndedRun> {
  const pipeline = getPipeline(ctx.project, pipelineName);
  const lease = await readLease(ctx.tables, pipeline.name);
  if (!lease) return { kind: 'none' };
  if (how.onlyOwnedBy !== undefined && lease.ownerPid !== how.onlyOwnedBy) return { kind: 'not-ours', runId: lease.runId };
  const run = await findRun(ctx.tables, pipeline.name, lease.runId);
  // A holder without a run record is a rollback or restore: it has its own recovery.
  if (!run) return { kind: 'operation', holder: lease.runId };
  if (isTerminalStatus(run.status)) return { kind: 'none' };
  if (await isCommitted(ctx, pipeline, run.runId)) {
    ctx.log.log('warn', `${how.reason}: the merge of run ${run.runId} already committed; completing the run`, { pipeline: pipeline.name, runId: run.runId });
    await completeCommittedRun(ctx, pipeline.name, run.runId);
    return { kind: 'completed', runId: run.runId };
  }
  const error = `${how.kind === 'cancelled' ? 'cancelled' : 'interrupted'}: ${how.reason} before its merge committed; nothing was applied`;
  await failRun(ctx, pipeline.name, run.runId, error, how.kind === 'cancelled' ? 'cancelled' : 'failed');
  // From here on a merge delivery applies nothing (it re-reads the run before it begins). One
  // that began before may be inside its transaction: it holds the merge claim until it ends,
  // and then the ledger says whether it committed.
  const merge = { pipeline: pipeline.name, runId: run.runId, stage: 'merge' };
  // A local holder that is gone ran its own merges (tidemark run, tidemark dev): none can be
  // in flight, and its merge claim is only waiting to expire.
  if (!isLocalOwnerGone(lease) && (await stageInFlight(ctx.tables, merge))) {
    const deadline = Date.now() + (how.waitMs ?? 60_000);
    while ((await stageInFlight(ctx.tables, merge)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    if (await isCommitted(ctx, pipeline, run.runId)) {
      ctx.log.log('warn', `${how.reason}: the merge of run ${run.runId} committed while it was being cancelled; completing the run`, { pipeline: pipeline.name, runId: run.runId });
      // The merge stage reopens its run after its commit and queues the validation; only a
      // merge that died between the two leaves the run for this to finish.
      const now = await findRun(ctx.tables, pipeline.name, run.runId);
      if (now?.status === 'cancelled' || now?.status === 'failed') await completeCommittedRun(ctx, pipeline.name, run.runId);
      return { kind: 'completed', runId: run.runId, committedDuringCancel: true };
    }
    if (await stageInFlight(ctx.tables, merge)) {
      // Still running: if it commits, the next start finds it in the ledger and completes it.
      ctx.log.log('warn', `${error}; a merge of run ${run.runId} is still running: if it commits, the next run start completes the run`, { pipeline: pipeline.name, runId: run.runId });
      return { kind: how.kind, runId: run.runId, mergeStillRunning: true };
    }
  }
  ctx.log.log('warn', error, { pipeline: pipeline.name, runId: run.runId });
  return { kind: how.kind, runId: run.runId };
}
