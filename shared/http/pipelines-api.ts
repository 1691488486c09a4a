import type { z } from 'zod';
import type { EngineContext } from '../engine/context.js';
import { readCheckpoint } from '../state/checkpoints.js';
import { findRun, listRuns } from '../state/runs.js';
import { runSummary } from '../state/run-view.js';
import { readValidations } from '../state/validations.js';
import {
  listRunsQuerySchema,
  pipelineNameSchema,
  runIdSchema,
  type pipelineListSchema,
  type runDetailSchema,
  type runListSchema,
} from './api-schemas.js';
import type { ApiResponse } from './route.js';

type Fields = Array<{ path: string; message: string }>;

function bad(fields: Fields): ApiResponse {
  return { status: 400, jsonBody: { error: `invalid ${fields.map((f) => f.path).join(', ')}`, fields } };
}

function notFound(error: string): ApiResponse {
  return { status: 404, jsonBody: { error } };
}

/** Validates the {name} route parameter and that the project declares it. */
function checkPipeline(ctx: EngineContext, name: string): ApiResponse | undefined {
  const parsed = pipelineNameSchema.safeParse(name);
  if (!parsed.success) return bad([{ path: 'name', message: parsed.error.issues[0]!.message }]);
  if (!ctx.project.pipelines.has(name)) {
    return notFound(`unknown pipeline ${name}; known: ${[...ctx.project.pipelines.keys()].join(', ') || 'none'}`);
  }
  return undefined;
}

/** GET /api/pipelines — every pipeline with its checkpoint and last run. */
export async function handleListPipelines(ctx: EngineContext, baseUrl: string): Promise<ApiResponse> {
  const out: z.infer<typeof pipelineListSchema> = { pipelines: [] };
  for (const p of ctx.project.pipelines.values()) {
    const { checkpoint } = await readCheckpoint(ctx.tables, p.name);
    const last = (await listRuns(ctx.tables, p.name, 1))[0];
    out.pipelines.push({
      name: p.name,
      description: p.description ?? null,
      schedule: p.schedule ?? null,
      dependsOn: p.dependsOn,
      checkpoint: { watermark: checkpoint.watermark, lastRunId: checkpoint.lastRunId, committedAt: checkpoint.committedAt || null },
      lastRun: last ? runSummary(last) : null,
      runsUrl: `${baseUrl}/api/pipelines/${p.name}/runs`,
    });
  }
  return { status: 200, jsonBody: out };
}

/** GET /api/pipelines/{name}/runs?limit= — newest first. */
export async function handleListRuns(ctx: EngineContext, name: string, query: URLSearchParams): Promise<ApiResponse> {
  const invalid = checkPipeline(ctx, name);
  if (invalid) return invalid;
  const parsed = listRunsQuerySchema.safeParse(Object.fromEntries(query.entries()));
  if (!parsed.success) return bad(parsed.error.issues.map((i) => ({ path: i.path.join('.') || 'query', message: i.message })));
  const runs = await listRuns(ctx.tables, name, parsed.data.limit);
  const body: z.infer<typeof runListSchema> = { pipeline: name, runs: runs.map(runSummary) };
  return { status: 200, jsonBody: body };
}

/** GET /api/pipelines/{name}/runs/{runId} — stage, counts, timings, error, validations. */
export async function handleGetRun(ctx: EngineContext, name: string, runId: string): Promise<ApiResponse> {
  const invalid = checkPipeline(ctx, name);
  if (invalid) return invalid;
  const id = runIdSchema.safeParse(runId);
  if (!id.success) return bad([{ path: 'runId', message: id.error.issues[0]!.message }]);
  const r = await findRun(ctx.tables, name, runId);
  if (!r) return notFound(`run ${runId} of pipeline ${name} not found`);
  const validations = await readValidations(ctx.tables, name, runId);
  const body: z.infer<typeof runDetailSchema> = {
    ...runSummary(r),
    pipeline: r.pipeline,
    boundary: r.boundary,
    updatedAt: r.updatedAt,
    timings: r.timings,
    backfill: r.backfill ?? null,
    backfillRemaining: r.backfillRemaining ?? [],
    dependencies: r.dependsSince
      ? { since: r.dependsSince, deadline: r.dependsDeadline ?? r.dependsSince, waitingFor: r.waitingFor ?? [] }
      : null,
    validations,
  };
  return { status: 200, jsonBody: body };
}
