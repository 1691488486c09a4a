import { getPipeline } from '../config/load.js';
import { errorMessage } from '../errors.js';
import { readCheckpointHead } from '../state/checkpoints.js';
import { findRun, type RunRecord } from '../state/runs.js';
import { readValidations } from '../state/validations.js';
import { telemetryOf } from '../telemetry/telemetry.js';
import { noticeOf, notifyRunEnded } from '../telemetry/webhooks.js';
import type { EngineContext } from './context.js';

/**
 * Starts a run (startRun, passed in by whoever drives the validate stage): the next window of a
 * split backfill starts when the previous one succeeded. Passed in, not imported, because a run
 * start itself may validate a committed run (start-run.ts imports the stages); the request is
 * the part of StartRunRequest a backfill window needs.
 */
export type StartNextRun = (
  ctx: EngineContext,
  req: Pick<RunRecord, 'pipeline' | 'trigger'> & { mode: 'backfill'; backfill: { from: string; to: string }; backfillRemaining: Array<{ from: string; to: string }> },
) => Promise<RunRecord>;

/** Dimensions every run event and metric carries. */
export function runDims(run: Pick<RunRecord, 'pipeline' | 'runId'>): { pipeline: string; runId: string } {
  return { pipeline: run.pipeline, runId: run.runId };
}

export function emitRunStarted(ctx: EngineContext, run: RunRecord): void {
  telemetryOf(ctx).event('RunStarted', { ...runDims(run), trigger: run.trigger, mode: run.mode });
}

const ROW_OPERATIONS = ['extracted', 'inserted', 'updated', 'deleted', 'unchanged', 'stale', 'quarantined'] as const;

/**
 * Everything that follows a run reaching a terminal status: telemetry (events, rows per
 * operation, freshness lag), webhooks, and the next window of a split backfill (started through
 * `startNext`). Called once per transition by the run lifecycle (run-lifecycle.ts: failRun,
 * recordValidated); it never throws, because the run's outcome is already recorded and must not
 * be turned into a retry by a failing side effect.
 */
export async function onRunEnded(ctx: EngineContext, pipeline: string, runId: string, startNext?: StartNextRun): Promise<void> {
  try {
    const run = await findRun(ctx.tables, pipeline, runId);
    if (!run) return;
    const t = telemetryOf(ctx);
    const dims = { ...runDims(run), mode: run.mode, trigger: run.trigger };
    const validations = await readValidations(ctx.tables, pipeline, runId);
    const durationMs = run.finishedAt ? Date.parse(run.finishedAt) - Date.parse(run.createdAt) : 0;
    for (const op of ROW_OPERATIONS) t.metric('tidemark.rows', run.counts[op] ?? 0, { ...runDims(run), operation: op });
    if (run.status === 'succeeded') {
      t.event('RunSucceeded', dims, { durationMs, inserted: run.counts.inserted, updated: run.counts.updated, deleted: run.counts.deleted });
      const lag = await freshnessLagSeconds(ctx, run);
      if (lag !== undefined) t.metric('tidemark.freshness.lag', lag, runDims(run));
    } else {
      for (const v of validations.filter((x) => !x.passed)) {
        t.event('ValidationFailed', { ...runDims(run), check: v.check, expected: String(v.expected), actual: String(v.actual) });
      }
      t.event('RunFailed', { ...dims, status: run.status, error: (run.error ?? '').slice(0, 1000) }, { durationMs });
    }
    const p = getPipeline(ctx.project, pipeline);
    await notifyRunEnded(p, noticeOf(run, validations), { env: ctx.env, log: ctx.log, telemetry: t });
    await continueBackfill(ctx, run, startNext);
  } catch (err) {
    ctx.log.log('error', `after-run notifications failed: ${errorMessage(err)}`, { pipeline, runId });
  }
}

/**
 * Freshness lag: how old the newest loaded source change is when the run ends. With a
 * timestamp watermark that is finish − watermark; a full read sees the source as of the run's
 * start, so it is finish − start.
 */
async function freshnessLagSeconds(ctx: EngineContext, run: RunRecord): Promise<number | undefined> {
  const end = Date.parse(run.finishedAt ?? ctx.now().toISOString());
  const checkpoint = await readCheckpointHead(ctx.tables, run.pipeline);
  const wm = checkpoint.watermark !== null ? Date.parse(checkpoint.watermark) : NaN;
  const from = Number.isNaN(wm) ? Date.parse(run.createdAt) : wm;
  return Math.max(0, (end - from) / 1000);
}

async function continueBackfill(ctx: EngineContext, run: RunRecord, startNext: StartNextRun | undefined): Promise<void> {
  const rest = run.backfillRemaining ?? [];
  if (rest.length === 0) return;
  if (run.status !== 'succeeded') {
    ctx.log.log('error', `backfill stopped at window ${run.backfill?.from}..${run.backfill?.to}; ${rest.length} window(s) not run, first ${rest[0]!.from}..${rest[0]!.to}`, runDims(run));
    return;
  }
  if (!startNext) {
    // Only a failed or cancelled run ends without a starter (failRun); a success always has one.
    ctx.log.log('error', `backfill cannot continue: nothing to start run ${rest.length} window(s) with, first ${rest[0]!.from}..${rest[0]!.to}`, runDims(run));
    return;
  }
  const [next, ...later] = rest;
  const started = await startNext(ctx, { pipeline: run.pipeline, trigger: run.trigger, mode: 'backfill', backfill: next!, backfillRemaining: later });
  ctx.log.log('info', `backfill continues with window ${next!.from}..${next!.to} as run ${started.runId} (${later.length} more)`, runDims(run));
}
