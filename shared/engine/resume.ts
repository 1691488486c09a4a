import type { PipelineConfig } from '../config/schema.js';
import { ConflictError, errorMessage } from '../errors.js';
import { readCheckpoint } from '../state/checkpoints.js';
import { leaseOwnerText, releaseLease, type Lease, type LeaseOwner } from '../state/leases.js';
import { findRun, isTerminalStatus, updateRun, type ResumeNote, type RunRecord, type RunStage } from '../state/runs.js';
import { CONTAINERS, QUEUES, TABLES, layout } from '../storage/layout.js';
import { changesManifestSchema, parseManifest, rawManifestSchema } from '../storage/manifest.js';
import { isCommitted } from './commit-protocol.js';
import type { EngineContext } from './context.js';

/*
 * Resuming a run whose process died (issue #13 point 4). The run's recorded progress, never the
 * queues, says where it stopped: a message the dead process had received stays invisible for
 * its visibility timeout (functionTimeout), so waiting for it would block the pipeline that long.
 *
 *   ledger row of the run        → committed: completed (checkpoint rolled forward, validated)
 *   changes manifest             → the merge is next: a merge message is sent
 *   raw manifest                 → the transform is next: the manifest is written again (same
 *                                  text), which is the blob trigger's event
 *   nothing (or a partition plan)→ the extract is next: an extract message is sent; a
 *                                  partitioned extract re-sends only its partitions not done
 *
 * The message the dead process held comes back later as a duplicate: stages are idempotent
 * under their claims (a done stage is skipped, a repeated merge is a ledger no-op, a message of
 * an ended run is ignored). The claims the dead process held name it, so they are taken over at
 * once (state/stage-claims.ts).
 *
 * Taking the run over is one ETag-guarded write of its lease (owner = this process), made
 * before anything else: of two processes that find the same orphan, exactly one gets it.
 */

/** A run killed this many times is not resumed again: it is failed, so a stage that kills its process does not loop. */
export const MAX_RESUMES = 3;

export type OrphanOutcome =
  | { kind: 'resumed'; runId: string; stage: RunStage; from: string }
  | { kind: 'completed'; runId: string; from: string }
  | { kind: 'failed'; runId: string; from: string; reason: string }
  /** The holder has no run record (a rollback, restore, or a start that died before it): not this module's. */
  | { kind: 'not-a-run' };

/** How a run is ended; passed in by the run's starter, which owns these transitions. */
export interface RunEnders {
  completeCommittedRun(ctx: EngineContext, pipeline: string, runId: string): Promise<void>;
  failRun(ctx: EngineContext, pipeline: string, runId: string, error: string): Promise<void>;
}

/** Thrown by a start that resumed the pipeline's orphaned run instead: that run is in flight now. */
export class RunResumedError extends ConflictError {
  constructor(readonly outcome: Extract<OrphanOutcome, { kind: 'resumed' }>, pipeline: string) {
    super(
      `run ${outcome.runId} of ${pipeline} was resumed at its ${outcome.stage} stage (the process that ran it, ${outcome.from}, is gone); it is in flight now: start again when it has ended`,
    );
  }
}

/** One line saying what was done with an orphan, for the CLI and the logs. */
export function orphanText(pipeline: string, o: OrphanOutcome): string {
  switch (o.kind) {
    case 'resumed':
      return `resumed run ${o.runId} of ${pipeline} at its ${o.stage} stage (its process, ${o.from}, is gone)`;
    case 'completed':
      return `completed run ${o.runId} of ${pipeline}: its merge had committed before its process (${o.from}) died`;
    case 'failed':
      return `failed run ${o.runId} of ${pipeline}: ${o.reason}`;
    case 'not-a-run':
      return `${pipeline}: the lease holder was not a run`;
  }
}

const sameHolder = (a: Lease, b: Lease) =>
  a.runId === b.runId && a.ownerHost === b.ownerHost && a.ownerPid === b.ownerPid && a.ownerStartTime === b.ownerStartTime && a.acquiredAt === b.acquiredAt;

/**
 * Takes over the lease `holder` (whose owner is gone) for its run, with this process as the
 * owner. Throws ConflictError when another process took it first.
 */
export async function takeOverLease(ctx: EngineContext, pipeline: string, holder: Lease, owner: LeaseOwner): Promise<void> {
  const stored = await ctx.tables.get<Lease>(TABLES.leases, pipeline, 'lease');
  if (!stored || !sameHolder(stored.entity, holder)) {
    const now = stored?.entity;
    throw new ConflictError(
      now
        ? `run ${now.runId} of ${pipeline} is in flight: ${leaseOwnerText(now)} took it over first (lease until ${now.expiresAt})`
        : `another process took over run ${holder.runId} of ${pipeline} first`,
    );
  }
  const now = ctx.now();
  const lease: Lease = {
    partitionKey: pipeline,
    rowKey: 'lease',
    runId: holder.runId,
    ...owner,
    acquiredAt: now.toISOString(),
    expiresAt: new Date(now.getTime() + ctx.leaseTtlMs).toISOString(),
  };
  try {
    await ctx.tables.replace(TABLES.leases, lease, stored.etag);
  } catch (err) {
    if (err instanceof ConflictError) throw new ConflictError(`another process took over run ${holder.runId} of ${pipeline} first`, { cause: err });
    throw err;
  }
}

/** What the run's recorded progress says is next, or why it cannot go on. */
async function nextStage(ctx: EngineContext, p: PipelineConfig, run: RunRecord): Promise<{ stage: 'extract' | 'transform' | 'merge'; rawText?: string } | { unresumable: string }> {
  const { checkpoint } = await readCheckpoint(ctx.tables, p.name);
  const moved = (base: string | null) =>
    `it was computed against ${base ?? 'nothing'}, and the pipeline's latest committed run is now ${checkpoint.lastRunId ?? 'none'}`;
  try {
    const changesName = layout.changesManifest(p.name, run.runId);
    const changes = await ctx.blobs.getText(CONTAINERS.changes, changesName);
    if (changes !== undefined) {
      const m = parseManifest(changesManifestSchema, `changes/${changesName}`, changes);
      return m.baseRunId === checkpoint.lastRunId ? { stage: 'merge' } : { unresumable: moved(m.baseRunId) };
    }
    const rawName = layout.rawManifest(p.name, run.runId);
    const raw = await ctx.blobs.getText(CONTAINERS.raw, rawName);
    if (raw !== undefined) {
      const m = parseManifest(rawManifestSchema, `raw/${rawName}`, raw);
      return m.baseRunId === checkpoint.lastRunId ? { stage: 'transform', rawText: raw } : { unresumable: moved(m.baseRunId) };
    }
  } catch (err) {
    // A manifest the next stage would refuse: resuming would only fail later, less clearly.
    return { unresumable: errorMessage(err) };
  }
  // Nothing recorded beyond the run itself: its extract reads the window again from the
  // checkpoint, which has not moved (the run did not commit), exactly as a new run would.
  return { stage: 'extract' };
}

/**
 * Handles the pipeline's in-flight run whose lease owner is gone: takes its lease over, then
 * completes it (its merge committed), resumes it from its recorded progress, or fails it when
 * that progress cannot be resumed. `by` names the start that found it (for the run's error).
 */
export async function takeOverOrphan(
  ctx: EngineContext,
  p: PipelineConfig,
  holder: Lease,
  o: { owner: LeaseOwner; by?: string; enders: RunEnders },
): Promise<OrphanOutcome> {
  const run = await findRun(ctx.tables, p.name, holder.runId);
  if (!run) return { kind: 'not-a-run' };
  const from = `pid ${holder.ownerPid ?? '?'} on ${holder.ownerHost ?? 'unknown host'}`;
  const log = (message: string) => ctx.log.log('warn', message, { pipeline: p.name, runId: run.runId });
  // First the lease: every later step acts for the one process that holds it.
  await takeOverLease(ctx, p.name, holder, o.owner);
  if (isTerminalStatus(run.status)) {
    // Ended between the holder's read and the takeover: nothing left to do but free it.
    await releaseLease(ctx.tables, p.name, run.runId);
    return { kind: 'completed', runId: run.runId, from };
  }
  if (await isCommitted(ctx, p, run.runId)) {
    // Failing it would leave the checkpoint behind the warehouse; finishing it cannot double.
    log(`the process holding the run lease (${from}) is gone after its merge committed; completing the run`);
    await o.enders.completeCommittedRun(ctx, p.name, run.runId);
    return { kind: 'completed', runId: run.runId, from };
  }
  const fail = async (why: string): Promise<OrphanOutcome> => {
    const reason = `interrupted: the process holding the run lease (${from}) is gone before its merge committed and the run cannot be resumed (${why}); nothing was applied${o.by ? `, run ${o.by} took over` : ''}`;
    log(reason);
    await o.enders.failRun(ctx, p.name, run.runId, reason);
    return { kind: 'failed', runId: run.runId, from, reason };
  };
  const resumes = run.resumes ?? [];
  if (resumes.length >= MAX_RESUMES) return fail(`its process died ${resumes.length + 1} times, at its ${resumes.map((r) => r.stage).join(', ')} and ${run.stage} stages; it is not resumed again`);
  const next = await nextStage(ctx, p, run);
  if ('unresumable' in next) return fail(next.unresumable);
  const note: ResumeNote = { at: ctx.now().toISOString(), stage: next.stage, from, by: `pid ${o.owner.ownerPid ?? '?'} on ${o.owner.ownerHost ?? 'unknown host'}` };
  await updateRun(ctx.tables, p.name, run.runId, (r) => (isTerminalStatus(r.status) ? undefined : { ...r, resumes: [...(r.resumes ?? []), note] }), ctx.now);
  if (next.stage === 'merge') await ctx.queues.send(QUEUES.merge, { pipeline: p.name, runId: run.runId });
  else if (next.stage === 'transform') await ctx.blobs.putText(CONTAINERS.raw, layout.rawManifest(p.name, run.runId), next.rawText!);
  else await ctx.queues.send(QUEUES.extract, { pipeline: p.name, runId: run.runId });
  const outcome = { kind: 'resumed' as const, runId: run.runId, stage: next.stage, from };
  log(orphanText(p.name, outcome));
  return outcome;
}
