import { z } from 'zod';
import { PIPELINE_NAME_PATTERN, RUN_ID_PATTERN } from '../config/identifiers.js';
import type { EngineContext } from '../engine/context.js';
import type { ApiRoute } from '../http/route.js';
import { parseJsonBody, type HttpResult } from '../engine/http-api.js';
import { ConflictError, NotFoundError, TerminalError } from '../errors.js';
import { RefusedError } from './refused.js';
import { restoreBackup } from './backups.js';
import { rollbackPipeline } from './undo-runs.js';

const runIdField = z.string().regex(RUN_ID_PATTERN, 'a run id like 20261124T021500Z-7f3a');
/** The bodies the handlers parse; the OpenAPI document is generated from these same schemas. */
export const rollbackBodySchema = z.strictObject({
  toRunId: runIdField.describe('the committed run to roll back to; every newer run is undone, newest first'),
});
export const restoreBodySchema = z.strictObject({
  backupId: runIdField.describe('the backup to restore (tidemark backups lists them)'),
});

function fields(err: z.ZodError): Array<{ path: string; message: string }> {
  return err.issues.map((i) => ({ path: i.path.join('.') || '(root)', message: i.message }));
}

async function admin<B>(
  ctx: EngineContext,
  req: { pipeline: string; bodyText: string },
  schema: z.ZodType<B>,
  fn: (body: B) => Promise<unknown>,
): Promise<HttpResult> {
  if (!PIPELINE_NAME_PATTERN.test(req.pipeline)) return { status: 400, jsonBody: { error: 'invalid pipeline name: lowercase letters, digits and _' } };
  if (!ctx.project.pipelines.has(req.pipeline)) return { status: 404, jsonBody: { error: `unknown pipeline ${req.pipeline}` } };
  const body = parseJsonBody(req.bodyText);
  if (!body.ok) return body.result;
  const parsed = schema.safeParse(body.value);
  if (!parsed.success) return { status: 400, jsonBody: { error: 'invalid body', fields: fields(parsed.error) } };
  try {
    return { status: 200, jsonBody: await fn(parsed.data) };
  } catch (err) {
    if (err instanceof NotFoundError) return { status: 404, jsonBody: { error: err.message } };
    if (err instanceof RefusedError || err instanceof ConflictError) return { status: 409, jsonBody: { error: err.message } };
    if (err instanceof TerminalError) return { status: 422, jsonBody: { error: err.message } };
    throw err;
  }
}

/** POST /api/pipelines/{name}/rollback  body `{ "toRunId": "…" }` (admin key). */
export function handleRollback(ctx: EngineContext, req: { pipeline: string; bodyText: string }): Promise<HttpResult> {
  return admin(ctx, req, rollbackBodySchema, (b) => rollbackPipeline(ctx, { pipeline: req.pipeline, toRunId: b.toRunId, by: 'http' }));
}

/** POST /api/pipelines/{name}/restore  body `{ "backupId": "…" }` (admin key). */
export function handleRestore(ctx: EngineContext, req: { pipeline: string; bodyText: string }): Promise<HttpResult> {
  return admin(ctx, req, restoreBodySchema, (b) => restoreBackup(ctx, { pipeline: req.pipeline, backupId: b.backupId, by: 'http' }));
}

/** The admin routes, for functions/ and the local server's route list (shared/http/routes.ts). */
export const rollbackRoute: ApiRoute = {
  name: 'rollback',
  methods: ['POST'],
  route: 'pipelines/{name}/rollback',
  authLevel: 'admin',
  handle: (ctx, req) => handleRollback(ctx, { pipeline: req.params.name ?? '', bodyText: req.bodyText }),
};

export const restoreRoute: ApiRoute = {
  name: 'restore',
  methods: ['POST'],
  route: 'pipelines/{name}/restore',
  authLevel: 'admin',
  handle: (ctx, req) => handleRestore(ctx, { pipeline: req.params.name ?? '', bodyText: req.bodyText }),
};
