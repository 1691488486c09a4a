import { Cron } from 'croner';
import { parseDuration } from '../config/duration.js';
import type { PipelineConfig } from '../config/schema.js';
import { TerminalError } from '../errors.js';
import { listRuns, updateRun, type RunMode, type RunRecord } from '../state/runs.js';
import { QUEUES } from '../storage/layout.js';
import type { EngineContext } from './context.js';

/**
 * dependsOn (docs/design.md §3): "start only after these succeeded in this window".
 *
 * The window of a run is the schedule tick it belongs to: it starts at the latest tick of the
 * dependent's own schedule at or before the run's start (a timer firing late still belongs to
 * its tick). A dependency counts when one of its runs *finished successfully* at or after that
 * time, so a success from the previous cycle never satisfies this cycle. A pipeline without a
 * schedule (HTTP/CLI runs only) has no ticks: its window starts when its own last successful
 * run finished, i.e. the dependencies must have produced data since this pipeline last loaded
 * (never loaded: any success counts). Backfills re-read history and do not wait.
 *
 * Waiting happens on the queue, not in a process: the extract message is put back with a
 * visibility delay until the dependencies succeed or `dependencyTimeout` passes, then the run
 * fails with a message naming what it waited for.
 */
export function dependencyWindowStart(schedule: string | undefined, now: Date, lastSuccessEnd: string | null): Date {
  if (schedule) {
    const cron = new Cron(schedule, { paused: true, timezone: 'UTC' });
    try {
      // croner's previousRuns is exclusive of the reference: +1 ms includes a tick exactly at `now`.
      const prev = cron.previousRuns(1, new Date(now.getTime() + 1))[0];
      if (prev) return prev;
    } finally {
      cron.stop();
    }
  }
  return lastSuccessEnd ? new Date(lastSuccessEnd) : new Date(0);
}

/** The dependency fields of a new run record; empty when the run does not wait. */
export async function dependencyFields(
  ctx: EngineContext,
  p: PipelineConfig,
  mode: RunMode,
  now: Date,
): Promise<Pick<RunRecord, 'dependsSince' | 'dependsDeadline' | 'waitingFor'>> {
  if (p.dependsOn.length === 0 || mode === 'backfill') return {};
  const lastSuccess = (await listRuns(ctx.tables, p.name, 500)).find((r) => r.status === 'succeeded');
  const since = dependencyWindowStart(p.schedule, now, lastSuccess?.finishedAt ?? null);
  return {
    dependsSince: since.toISOString(),
    dependsDeadline: new Date(now.getTime() + parseDuration(p.dependencyTimeout)).toISOString(),
    waitingFor: [...p.dependsOn],
  };
}

/** Seconds between two looks at the dependencies (app setting TIDEMARK_DEPENDENCY_POLL_SECONDS). */
export function dependencyPollSeconds(env: NodeJS.ProcessEnv): number {
  const n = Number(env.TIDEMARK_DEPENDENCY_POLL_SECONDS ?? 60);
  return Number.isFinite(n) && n >= 1 ? Math.round(n) : 60;
}

async function describeDependency(ctx: EngineContext, dep: string): Promise<string> {
  const last = (await listRuns(ctx.tables, dep, 1))[0];
  if (!last) return `${dep} (never ran)`;
  return `${dep} (last run ${last.runId} ${last.status}${last.finishedAt ? ` at ${last.finishedAt}` : ''}${last.error ? `: ${last.error}` : ''})`;
}

/**
 * Called by the extract stage before it reads: 'ready' when every dependency succeeded in the
 * window; 'waiting' after re-enqueueing the extract with a delay; throws a TerminalError (which
 * fails the run) when the deadline passed.
 */
export async function awaitDependencies(ctx: EngineContext, p: PipelineConfig, run: RunRecord): Promise<'ready' | 'waiting'> {
  if (!run.dependsSince || p.dependsOn.length === 0) return 'ready';
  const since = run.dependsSince;
  const missing: string[] = [];
  for (const dep of p.dependsOn) {
    const runs = await listRuns(ctx.tables, dep, 500);
    const ok = runs.some((r) => r.status === 'succeeded' && r.finishedAt !== undefined && r.finishedAt >= since);
    if (!ok) missing.push(dep);
  }
  if (missing.length === 0) {
    if (run.waitingFor?.length) await updateRun(ctx.tables, p.name, run.runId, (r) => ({ ...r, waitingFor: [] }), ctx.now);
    return 'ready';
  }
  const now = ctx.now();
  if (run.dependsDeadline && now.getTime() >= Date.parse(run.dependsDeadline)) {
    const why = await Promise.all(missing.map((d) => describeDependency(ctx, d)));
    throw new TerminalError(
      `dependencies did not succeed in this run's window (since ${since}) within dependencyTimeout ${p.dependencyTimeout}: ${why.join('; ')}. ` +
        'Run the dependency, then start this pipeline again (or raise dependencyTimeout).',
    );
  }
  await updateRun(ctx.tables, p.name, run.runId, (r) => ({ ...r, waitingFor: missing }), ctx.now);
  const delay = dependencyPollSeconds(ctx.env);
  ctx.log.log('info', `waiting for ${missing.join(', ')} (since ${since}); next look in ${delay} s`, { pipeline: p.name, runId: run.runId });
  await ctx.queues.send(QUEUES.extract, { pipeline: p.name, runId: run.runId }, { visibilityTimeoutSeconds: delay });
  return 'waiting';
}
