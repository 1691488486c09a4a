import type { PipelineConfig } from '../config/schema.js';
import { errorMessage, isTerminal } from '../errors.js';
import { commitCheckpoint } from '../state/checkpoints.js';
import { releaseLease, renewLease } from '../state/leases.js';
import { claimStage } from '../state/stage-claims.js';
import { findRun, insertRun, isTerminalStatus, updateRun, type RunRecord, type RunStage, type RunStatus } from '../state/runs.js';
import { writeValidations, type ValidationResult } from '../state/validations.js';
import type { Counts } from '../storage/manifest.js';
import { QUEUES } from '../storage/layout.js';
import { telemetryOf } from '../telemetry/telemetry.js';
import { onValidationFailed } from '../validate/warehouse-checks.js';
import type { EngineContext } from './context.js';
import { onRunEnded, type StartNextRun } from './run-events.js';
import { stageClaimTtlMs } from './stage-timeout.js';

/**
 * A run's lifecycle (README "Guarantees"): its states, the transitions between them, and where
 * each one is recorded. Every change of a run record's `status` goes through `transitionRun`
 * below (updateRun refuses a status change made any other way), so a transition the table does
 * not allow is refused here, in one place: a late duplicate of an earlier stage cannot turn a
 * succeeded run back into a running one, a failure cannot overwrite a success.
 *
 *   started → extracting → extracted → transforming → transformed → merging
 *           → merged (the commit point: the ledger row) → committed (checkpoint) → succeeded | validation_failed
 *   any live state → failed | cancelled
 *   failed | cancelled → reopened (its merge is in the ledger after all) → succeeded | validation_failed
 *   an ended, committed run → rolled_back
 *
 * Live statuses are `queued` and `running`; the record's `stage` says where a live run is.
 */
const LIVE = ['queued', 'running'] as const satisfies readonly RunStatus[];
const ENDED = ['succeeded', 'validation_failed', 'failed', 'cancelled'] as const satisfies readonly RunStatus[];

interface TransitionRule {
  /** The statuses the run may be in; any other is refused. Empty: the record is created by it. */
  from: readonly RunStatus[];
  /** Its status afterwards. */
  to: RunStatus;
  /** Its stage afterwards; absent: unchanged. */
  stage?: RunStage;
}

export const RUN_TRANSITIONS = {
  // Run record inserted by startRun (start-run.ts) after the lease and the sequence number;
  // the extract message follows it.
  started: { from: [], to: 'queued', stage: 'extract' },
  // Run record ETag update under the extract claim, once dependsOn lets the run go.
  extracting: { from: LIVE, to: 'running', stage: 'extract' },
  // Run record ETag update with counts.extracted, just before the raw manifest is written
  // (raw-output.ts): the manifest is the durable fact, and its write fires the transform.
  extracted: { from: LIVE, to: 'running', stage: 'transform' },
  // Run record ETag update under the transform claim, after the extract checks passed.
  transforming: { from: LIVE, to: 'running', stage: 'transform' },
  // Run record ETag update with the run's counts, before the changes manifest and the merge
  // message (raw-output.ts).
  transformed: { from: LIVE, to: 'running', stage: 'merge' },
  // Run record ETag update under the merge claim.
  merging: { from: LIVE, to: 'running', stage: 'merge' },
  // THE COMMIT POINT, not a run record write: the ledger row, inside the merge transaction
  // with the SCD steps (each warehouse's merge), applied only while the run's base is still the
  // ledger head. isCommitted (commit-protocol.ts) reads it; whatever the record says after a
  // crash, the ledger decides.
  merged: { from: ['running'], to: 'running', stage: 'merge' },
  // Checkpoint rolled forward to the run (commitCheckpoint after the merge; reconcileCheckpoint
  // from the ledger at the next start when that write was lost), then the run record ETag
  // update, then the validate message.
  committed: { from: LIVE, to: 'running', stage: 'validate' },
  // Validation rows written, then the run record ETag update, then the lease released, then
  // onRunEnded (telemetry, webhooks, the next backfill window).
  succeeded: { from: LIVE, to: 'succeeded', stage: 'done' },
  validationFailed: { from: LIVE, to: 'validation_failed', stage: 'done' },
  // Run record ETag update with the error, then the lease released, then onRunEnded. A run
  // whose merge is in the ledger is completed instead (completeCommittedRun), never failed.
  failed: { from: LIVE, to: 'failed' },
  cancelled: { from: LIVE, to: 'cancelled' },
  // Only once the ledger shows its merge: a cancel or a takeover that lost the race with the
  // commit. Run record ETag update (error and finishedAt cleared), then it is validated.
  reopened: { from: ['failed', 'cancelled'], to: 'running', stage: 'validate' },
  // The undo (rollback) or restore transaction removed the run's versions and ledger row; then
  // the run record ETag update, before the checkpoint is rewound (undo-runs.ts, backups.ts).
  // Asking again after a crash marks it again, so rolled_back → rolled_back is allowed.
  rolledBack: { from: [...ENDED, 'rolled_back'], to: 'rolled_back' },
  // The same, found by reconcileCheckpoint at a run start: the ledger no longer has the run
  // (an interrupted rollback or restore) and its record was not marked yet.
  rolledBackByRecovery: { from: ENDED, to: 'rolled_back' },
} as const satisfies Record<string, TransitionRule>;

export type RunTransition = keyof typeof RUN_TRANSITIONS;
/** Transitions written to the run record (`merged` is recorded by the warehouse). */
export type RecordedTransition = Exclude<RunTransition, 'merged' | 'started'>;

/** Whether a run in status `from` may take transition `t`. */
export function canTransition(from: RunStatus, t: RunTransition): boolean {
  return (RUN_TRANSITIONS[t].from as readonly RunStatus[]).includes(from);
}

export class IllegalRunTransition extends Error {
  constructor(
    readonly runId: string,
    readonly from: RunStatus,
    readonly transition: RunTransition,
  ) {
    super(`run ${runId} is ${from}: the ${transition} transition (to ${RUN_TRANSITIONS[transition].to}) is not allowed from it`);
    this.name = 'IllegalRunTransition';
  }
}

/** Throws IllegalRunTransition unless the table allows it. */
export function assertTransition(runId: string, from: RunStatus, t: RunTransition): void {
  if (!canTransition(from, t)) throw new IllegalRunTransition(runId, from, t);
}

type LifecycleCtx = Pick<EngineContext, 'tables' | 'now' | 'log'>;

/**
 * Applies transition `t` to the run record (ETag-guarded read-modify-write), with the fields
 * `patch` adds (counts, an error, rollback marks). Refused, and nothing written, when the run's
 * status does not allow it: that is how a late duplicate or a lost race is turned away. Returns
 * whether it was applied and the record as it now stands.
 */
export async function transitionRun(
  ctx: LifecycleCtx,
  pipeline: string,
  runId: string,
  t: RecordedTransition,
  patch: (r: RunRecord) => RunRecord = (r) => r,
): Promise<{ applied: boolean; run: RunRecord }> {
  const rule: TransitionRule = RUN_TRANSITIONS[t];
  let applied = false;
  let refusedFrom: RunStatus | undefined;
  const run = await updateRun(
    ctx.tables,
    pipeline,
    runId,
    (r) => {
      applied = false;
      if (!canTransition(r.status, t)) {
        refusedFrom = r.status;
        return undefined;
      }
      applied = true;
      return { ...patch(r), status: rule.to, ...(rule.stage ? { stage: rule.stage } : {}) };
    },
    ctx.now,
    { statusChange: true },
  );
  if (!applied) ctx.log.log('debug', `run is ${refusedFrom}: ${t} refused`, { pipeline, runId });
  return { applied, run };
}

/** Inserts a new run record: the `started` transition (a second insert of one run id conflicts). */
export async function recordStarted(ctx: Pick<EngineContext, 'tables'>, record: RunRecord): Promise<void> {
  const { to, stage } = RUN_TRANSITIONS.started;
  if (record.status !== to || record.stage !== stage) throw new Error(`run ${record.runId} must start ${to} at ${stage}, not ${record.status} at ${record.stage}`);
  await insertRun(ctx.tables, record);
}

/** Marks a run failed or cancelled (unless it already ended) and releases the pipeline for the next run. */
export async function failRun(ctx: EngineContext, pipeline: string, runId: string, error: string, status: 'failed' | 'cancelled' = 'failed'): Promise<void> {
  const existing = await findRun(ctx.tables, pipeline, runId);
  let ended = false;
  if (existing && !isTerminalStatus(existing.status)) {
    const finishedAt = ctx.now().toISOString();
    ended = (await transitionRun(ctx, pipeline, runId, status, (r) => ({ ...r, error, finishedAt }))).applied;
  }
  await releaseLease(ctx.tables, pipeline, runId);
  if (ended) await onRunEnded(ctx, pipeline, runId);
}

/**
 * A run marked cancelled or failed while its merge was committing: the ledger says it applied,
 * so the record is reopened (to be validated and finished), never left saying nothing was
 * applied. Returns whether it was reopened. The caller has checked the ledger.
 */
export async function reopenCommittedRun(ctx: EngineContext, pipeline: string, runId: string): Promise<boolean> {
  const r = await findRun(ctx.tables, pipeline, runId);
  if (!r || !canTransition(r.status, 'reopened')) return false;
  ctx.log.log('warn', `run ${runId} was marked ${r.status} but its merge committed; completing it`, { pipeline, runId });
  await transitionRun(ctx, pipeline, runId, 'reopened', ({ error: _e, finishedAt: _f, ...rest }) => rest);
  return true;
}

/**
 * After the merge transaction committed (the ledger row is in): the checkpoint advances, a run
 * a cancel marked while the transaction ran is reopened, and the run goes on to validation. A
 * crash anywhere here is healed by the redelivered merge message (merge no-op, then this) or by
 * the next start's reconcileCheckpoint.
 */
export async function recordCommitted(
  ctx: EngineContext,
  p: PipelineConfig,
  runId: string,
  commit: { baseRunId: string | null; watermark: string | null; snapshot: string },
): Promise<void> {
  // The checkpoint advances only after the merge committed (docs/design.md §5.4).
  await commitCheckpoint(ctx.tables, { pipeline: p.name, runId, ...commit, now: ctx.now() });
  await reopenCommittedRun(ctx, p.name, runId);
  await transitionRun(ctx, p.name, runId, 'committed');
  await ctx.queues.send(QUEUES.validate, { pipeline: p.name, runId });
}

/**
 * The validation's outcome ends the run: its rows are written, then the record, then the lease is
 * released and onRunEnded runs (`startNext` starts the next window of a split backfill). A run
 * another path ended meanwhile keeps the status that path gave it.
 */
export async function recordValidated(ctx: EngineContext, p: PipelineConfig, runId: string, results: ValidationResult[], startNext: StartNextRun): Promise<void> {
  await writeValidations(ctx.tables, p.name, runId, results, ctx.now());
  const passed = results.every((r) => r.passed);
  const finishedAt = ctx.now().toISOString();
  const ended = await transitionRun(ctx, p.name, runId, passed ? 'succeeded' : 'validationFailed', (r) => ({ ...r, finishedAt }));
  if (!ended.applied) {
    // Another path ended it while this validated (and ran what follows an end): say so, once.
    ctx.log.log('warn', `run ended ${ended.run.status} while it was validated; its validation is recorded, its status kept`, { pipeline: p.name, runId });
    await releaseLease(ctx.tables, p.name, runId);
    return;
  }
  if (!passed) await onValidationFailed(ctx, p, runId, results);
  await releaseLease(ctx.tables, p.name, runId);
  await onRunEnded(ctx, p.name, runId, startNext);
  ctx.log.log(passed ? 'info' : 'error', passed ? 'run succeeded' : 'run failed validation', {
    pipeline: p.name,
    runId,
    failed: results.filter((r) => !r.passed).map((r) => r.check),
  });
}

/** The extract's row count, recorded before the raw manifest that hands the run to the transform. */
export async function recordExtracted(ctx: LifecycleCtx, pipeline: string, runId: string, rowCount: number): Promise<void> {
  await transitionRun(ctx, pipeline, runId, 'extracted', (r) => ({ ...r, counts: { ...r.counts, extracted: rowCount } }));
}

/** The transform's counts, recorded before the changes manifest that hands the run to the merge. */
export async function recordTransformed(ctx: LifecycleCtx, pipeline: string, runId: string, counts: Counts): Promise<void> {
  await transitionRun(ctx, pipeline, runId, 'transformed', (r) => ({ ...r, counts }));
}

export type StageOutcome = 'done' | 'skipped' | 'failed';

/**
 * Runs one stage of one run with the error mapping every trigger shares: a TerminalError
 * fails the run (recorded, lease released) and is not rethrown, so the host does not retry;
 * anything else is rethrown so the host retries and eventually poisons the message.
 */
export async function runStage(
  ctx: EngineContext,
  stage: RunStage,
  ref: { pipeline: string; runId: string; partition?: number },
  fn: (run: RunRecord) => Promise<StageOutcome>,
): Promise<StageOutcome> {
  const log = ctx.log.child({ pipeline: ref.pipeline, runId: ref.runId, stage });
  const started = Date.now();
  // One claim per unit of work: each partition of a partitioned extract is its own unit, so
  // partitions of one run proceed in parallel while a duplicate of the same unit waits.
  const unit = ref.partition === undefined ? stage : `${stage}-p${ref.partition}`;
  const claim = await claimStage(ctx.tables, { pipeline: ref.pipeline, runId: ref.runId, stage: unit, ttlMs: ctx.stageClaimTtlMs ?? stageClaimTtlMs(ctx.env), ...(ctx.owner ? { owner: ctx.owner } : {}) });
  let worked = false;
  try {
    // Read under the claim, not before it: a copy of this stage that held the claim until a
    // moment ago may have ended the run (validate) while this copy waited for it.
    const claimed = await findRun(ctx.tables, ref.pipeline, ref.runId);
    if (!claimed) {
      log.log('warn', 'message for an unknown run ignored');
      return 'skipped';
    }
    if (isTerminalStatus(claimed.status)) {
      log.log('info', `run already ${claimed.status}; duplicate delivery ignored`);
      return 'skipped';
    }
    worked = true;
    await renewLease(ctx.tables, ref.pipeline, ref.runId, ctx.now(), ctx.leaseTtlMs);
    const outcome = await fn(claimed);
    log.log('debug', `${stage} ${outcome}`, { ms: Date.now() - started });
    return outcome;
  } catch (err) {
    if (isTerminal(err)) {
      log.log('error', `${stage} failed: ${errorMessage(err)}`);
      await failRun(ctx, ref.pipeline, ref.runId, `${stage}: ${errorMessage(err)}`);
      return 'failed';
    }
    log.log('warn', `${stage} failed, will be retried: ${errorMessage(err)}`);
    throw err;
  } finally {
    await claim.release().catch((err: unknown) => log.log('warn', `stage claim not released (it expires by itself): ${errorMessage(err)}`));
    const ms = Date.now() - started;
    telemetryOf(ctx).metric('tidemark.stage.duration', ms, { pipeline: ref.pipeline, runId: ref.runId, stage });
    // A duplicate turned away leaves the run record alone.
    if (worked) {
      await updateRun(ctx.tables, ref.pipeline, ref.runId, (r) => ({ ...r, timings: { ...r.timings, [stage]: (r.timings[stage] ?? 0) + ms } }), ctx.now).catch(
        () => undefined,
      );
    }
  }
}
