import { z } from 'zod';
import { PIPELINE_NAME_PATTERN, RUN_ID_PATTERN } from '../config/identifiers.js';

/**
 * The zod schemas of the HTTP API: requests are parsed with them, and the OpenAPI document
 * (shared/http/openapi.ts) is generated from them, so the document cannot drift from the code.
 */
export const pipelineNameSchema = z.string().regex(PIPELINE_NAME_PATTERN, 'lowercase letters, digits and _, starting with a letter (at most 63)');
export const runIdSchema = z.string().regex(RUN_ID_PATTERN, 'a run id like 20261124T021500Z-7f3a');

export const MAX_RUNS_LIMIT = 200;

export const listRunsQuerySchema = z.strictObject({
  limit: z.coerce.number().int().min(1).max(MAX_RUNS_LIMIT).default(20),
});

/** POST /api/pipelines/{name}/rollback — served by the rollback handler (feat/validation). */
export const errorSchema = z.object({
  error: z.string(),
  fields: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
});

const countsSchema = z.object({
  extracted: z.number(),
  inserted: z.number(),
  updated: z.number(),
  deleted: z.number(),
  unchanged: z.number(),
  stale: z.number(),
  quarantined: z.number(),
  type1: z.number().optional(),
});

const statusSchema = z.enum(['queued', 'running', 'succeeded', 'failed', 'validation_failed', 'rolled_back', 'cancelled']);
const stageSchema = z.enum(['extract', 'transform', 'merge', 'checkpoint', 'validate', 'done']);

export const runAcceptedSchema = z.object({
  pipeline: z.string(),
  runId: z.string(),
  status: statusSchema,
  statusUrl: z.string(),
  windows: z.array(z.object({ from: z.string(), to: z.string() })).optional().describe('backfill windows when windowSize split the range; each is its own run'),
});

export const runSummarySchema = z.object({
  runId: z.string(),
  trigger: z.enum(['schedule', 'http', 'cli', 'retry']),
  mode: z.enum(['incremental', 'full', 'backfill', 'reconcile']),
  status: statusSchema,
  stage: stageSchema,
  createdAt: z.string(),
  finishedAt: z.string().nullable(),
  counts: countsSchema,
  error: z.string().nullable(),
  resumes: z
    .array(z.object({ at: z.string(), stage: stageSchema, from: z.string(), by: z.string() }))
    .optional()
    .describe('each time the run was taken over and resumed after its process died: when, at which stage, from and by which process'),
});

export const validationSchema = z.object({
  check: z.string(),
  passed: z.boolean(),
  expected: z.union([z.string(), z.number(), z.null()]),
  actual: z.union([z.string(), z.number(), z.null()]),
  detail: z.string().optional(),
});

export const runDetailSchema = runSummarySchema.extend({
  pipeline: z.string(),
  boundary: z.string(),
  updatedAt: z.string(),
  timings: z.record(z.string(), z.number()).describe('milliseconds spent per stage'),
  backfill: z.object({ from: z.string().optional(), to: z.string().optional() }).nullable(),
  backfillRemaining: z.array(z.object({ from: z.string(), to: z.string() })),
  dependencies: z
    .object({ since: z.string(), deadline: z.string(), waitingFor: z.array(z.string()) })
    .nullable()
    .describe('dependsOn: the window start, the deadline, and what the run still waits for'),
  validations: z.array(validationSchema),
});

export const pipelineSummarySchema = z.object({
  name: z.string(),
  description: z.string().nullable(),
  schedule: z.string().nullable(),
  dependsOn: z.array(z.string()),
  checkpoint: z.object({
    watermark: z.string().nullable(),
    lastRunId: z.string().nullable(),
    committedAt: z.string().nullable(),
  }),
  lastRun: runSummarySchema.nullable(),
  runsUrl: z.string(),
});

export const pipelineListSchema = z.object({ pipelines: z.array(pipelineSummarySchema) });
export const runListSchema = z.object({ pipeline: z.string(), runs: z.array(runSummarySchema) });
