import { Cron } from 'croner';
import { parseDuration } from '../config/duration.js';
import { PIPELINE_NAME_PATTERN, RUN_ID_PATTERN } from '../config/identifiers.js';
import type { PipelineConfig } from '../config/schema.js';
import type { EngineContext } from '../engine/context.js';
import { NotFoundError } from '../errors.js';
import { readCheckpoint } from '../state/checkpoints.js';
import { leaseOwnerText, readLease } from '../state/leases.js';
import { holdingRuns } from '../validate/hold.js';
import { compareRunStart, isTerminalStatus, type RunRecord } from '../state/runs.js';
import { runSummary, shownCounts, validationView } from '../state/run-view.js';
import type { ValidationRow } from '../state/validations.js';
import { TABLES } from '../storage/layout.js';
import {
  UI_STAGES,
  type FreshnessState,
  type UiOverview,
  type UiPipeline,
  type UiPipelineDetail,
  type UiRun,
  type UiRunDetail,
  type UiValidation,
} from './view-model.js';

export const DEFAULT_RUN_LIMIT = 50;
export const MAX_RUN_LIMIT = 500;

/** Bad input from the page's query string or path: the route answers 400 with this message. */
export class UiInputError extends Error {}

function toUiRun(r: RunRecord, validations: UiValidation[], now: Date): UiRun {
  const end = r.finishedAt ? Date.parse(r.finishedAt) : isTerminalStatus(r.status) ? Date.parse(r.updatedAt) : now.getTime();
  const timings: UiRun['timings'] = {};
  for (const s of UI_STAGES) if (typeof r.timings?.[s] === 'number') timings[s] = r.timings[s];
  const { runId, status, stage, trigger, mode, createdAt, finishedAt, error } = runSummary(r);
  return {
    runId,
    status,
    stage,
    trigger,
    mode,
    createdAt,
    finishedAt,
    durationMs: Number.isFinite(end) ? Math.max(0, end - Date.parse(r.createdAt)) : null,
    counts: shownCounts(r.counts),
    timings,
    error,
    validations,
  };
}

function groupValidations(rows: readonly ValidationRow[]): Map<string, UiValidation[]> {
  const out = new Map<string, UiValidation[]>();
  for (const row of rows) {
    const list = out.get(row.runId) ?? [];
    list.push(validationView(row));
    out.set(row.runId, list);
  }
  for (const list of out.values()) list.sort((a, b) => a.check.localeCompare(b.check));
  return out;
}

/** Next fire time and the interval between the two following ones (for the default freshness). */
export function scheduleInfo(schedule: string | undefined, now: Date): { nextRunAt: Date | null; intervalMs: number | null } {
  if (!schedule) return { nextRunAt: null, intervalMs: null };
  // Six fields, seconds first, UTC: NCRONTAB as Azure Functions reads it (validated in load.ts).
  const cron = new Cron(schedule, { paused: true, timezone: 'UTC' });
  try {
    const [a, b] = cron.nextRuns(2, now);
    return { nextRunAt: a ?? null, intervalMs: a && b ? b.getTime() - a.getTime() : null };
  } finally {
    cron.stop();
  }
}

/**
 * Freshness = time since the newest succeeded run finished. The threshold is the pipeline's
 * `freshness`, else twice the schedule interval (one missed tick is tolerated, two are not).
 */
export function freshnessOf(p: Pick<PipelineConfig, 'freshness' | 'schedule'>, lastSuccessAt: string | null, now: Date): UiPipeline['freshness'] {
  let thresholdMs: number | null = null;
  let thresholdSource: UiPipeline['freshness']['thresholdSource'] = null;
  if (p.freshness) {
    thresholdMs = parseDuration(p.freshness);
    thresholdSource = 'config';
  } else {
    const { intervalMs } = scheduleInfo(p.schedule, now);
    if (intervalMs !== null) {
      thresholdMs = 2 * intervalMs;
      thresholdSource = 'schedule';
    }
  }
  const ageMs = lastSuccessAt ? Math.max(0, now.getTime() - Date.parse(lastSuccessAt)) : null;
  let state: FreshnessState;
  if (thresholdMs === null) state = ageMs === null ? 'never' : 'unset';
  else if (ageMs === null) state = 'never';
  else state = ageMs > thresholdMs ? 'stale' : 'fresh';
  return { state, thresholdMs, thresholdSource, lastSuccessAt, ageMs };
}

async function loadPipeline(ctx: EngineContext, p: PipelineConfig, runLimit: number): Promise<{ pipeline: UiPipeline; runs: UiRun[] }> {
  const now = ctx.now();
  const [records, validationRows, { checkpoint }] = await Promise.all([
    ctx.tables.list<RunRecord>(TABLES.runs, p.name),
    ctx.tables.list<ValidationRow>(TABLES.validations, p.name),
    readCheckpoint(ctx.tables, p.name),
  ]);
  records.sort(compareRunStart);
  const validations = groupValidations(validationRows);
  const lastSuccess = [...records].reverse().find((r) => r.status === 'succeeded');
  const recent = records.slice(-runLimit).map((r) => toUiRun(r, validations.get(r.runId) ?? [], now));
  const pipeline: UiPipeline = {
    name: p.name,
    description: p.description ?? null,
    schedule: p.schedule ?? null,
    nextRunAt: scheduleInfo(p.schedule, now).nextRunAt?.toISOString() ?? null,
    target: p.target.table,
    changeDetection: p.source.changeDetection.mode,
    freshness: freshnessOf(p, lastSuccess ? (lastSuccess.finishedAt ?? lastSuccess.updatedAt) : null, now),
    checkpoint: {
      // Table Storage drops null properties: a stored null reads back as undefined.
      watermark: checkpoint.watermark ?? null,
      lastRunId: checkpoint.lastRunId ?? null,
      committedAt: checkpoint.committedAt || null,
    },
    lastRun: recent[recent.length - 1] ?? null,
    runCount: records.length,
  };
  return { pipeline, runs: recent };
}

function pipelineOf(ctx: EngineContext, name: string): PipelineConfig {
  if (!PIPELINE_NAME_PATTERN.test(name)) throw new UiInputError(`invalid pipeline name ${JSON.stringify(name)}: lowercase letters, digits and _`);
  const p = ctx.project.pipelines.get(name);
  if (!p) throw new NotFoundError(`unknown pipeline ${name}; known: ${[...ctx.project.pipelines.keys()].join(', ') || 'none'}`);
  return p;
}

/** Every pipeline with its last run, freshness, checkpoint and next scheduled run. */
export async function uiOverview(ctx: EngineContext): Promise<UiOverview> {
  const pipelines = await Promise.all([...ctx.project.pipelines.values()].map(async (p) => (await loadPipeline(ctx, p, 1)).pipeline));
  return { generatedAt: ctx.now().toISOString(), pipelines };
}

export function parseRunLimit(text: string | null): number {
  if (text === null || text === '') return DEFAULT_RUN_LIMIT;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > MAX_RUN_LIMIT) throw new UiInputError(`limit must be a whole number from 1 to ${MAX_RUN_LIMIT}, got ${JSON.stringify(text)}`);
  return n;
}

/** One pipeline with its newest `limit` runs (oldest first), their counts, timings and validations. */
export async function uiPipelineDetail(ctx: EngineContext, name: string, limit = DEFAULT_RUN_LIMIT): Promise<UiPipelineDetail> {
  const p = pipelineOf(ctx, name);
  const [{ pipeline, runs }, holding, lease] = await Promise.all([loadPipeline(ctx, p, limit), holdingRuns(ctx, p), readLease(ctx.tables, p.name)]);
  const now = ctx.now().getTime();
  return {
    generatedAt: ctx.now().toISOString(),
    pipeline,
    hold: holding.length
      ? { runIds: holding.map((r) => r.runId), message: `run(s) ${holding.map((r) => r.runId).join(', ')} failed validation; a new run is refused until they are acknowledged or rolled back` }
      : null,
    lease: lease
      ? {
          runId: lease.runId,
          owner: leaseOwnerText(lease),
          ownerHost: lease.ownerHost ?? null,
          ownerPid: lease.ownerPid ?? null,
          ownerInvocationId: lease.ownerInvocationId ?? null,
          acquiredAt: lease.acquiredAt,
          expiresAt: lease.expiresAt,
          ageMs: Math.max(0, now - Date.parse(lease.acquiredAt)),
          expired: Date.parse(lease.expiresAt) <= now,
        }
      : null,
    runs,
    limit,
  };
}

export async function uiRunDetail(ctx: EngineContext, name: string, runId: string): Promise<UiRunDetail> {
  pipelineOf(ctx, name);
  if (!RUN_ID_PATTERN.test(runId)) throw new UiInputError(`invalid run id ${JSON.stringify(runId)}: expected the form 20261124T021500Z-7f3a`);
  const stored = await ctx.tables.get<RunRecord>(TABLES.runs, name, runId);
  if (!stored) throw new NotFoundError(`run ${runId} of pipeline ${name} not found`);
  const rows = (await ctx.tables.list<ValidationRow>(TABLES.validations, name)).filter((r) => r.runId === runId);
  const run = toUiRun(stored.entity, groupValidations(rows).get(runId) ?? [], ctx.now());
  return { generatedAt: ctx.now().toISOString(), pipeline: name, run };
}
