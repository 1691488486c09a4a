import { z } from 'zod';
import { PIPELINE_NAME_PATTERN, RUN_ID_PATTERN } from '../config/identifiers.js';
import type { EngineContext } from '../engine/context.js';
import { endInFlightRun } from '../engine/end-run.js';
import { parseJsonBody } from '../engine/http-api.js';
import { NotFoundError, TerminalError } from '../errors.js';
import { readLease } from '../state/leases.js';
import { acknowledge } from '../validate/hold.js';
import type { ApiResponse, ApiRoute } from './route.js';

const runId = z.string().regex(RUN_ID_PATTERN, 'a run id like 20261124T021500Z-7f3a');
/** The bodies the handlers parse; the OpenAPI document is generated from these same schemas. */
export const ackBodySchema = z.strictObject({
  runId: runId.optional().describe('the failed run to acknowledge; every unacknowledged one when left out'),
});
export const cancelBodySchema = z.strictObject({
  runId: runId.optional().describe('cancel only if this is still the run in flight (what the caller saw); any in-flight run when left out'),
});

async function action<B>(ctx: EngineContext, name: string, bodyText: string, schema: z.ZodType<B>, fn: (body: B) => Promise<ApiResponse>): Promise<ApiResponse> {
  if (!PIPELINE_NAME_PATTERN.test(name)) return { status: 400, jsonBody: { error: 'invalid pipeline name: lowercase letters, digits and _' } };
  if (!ctx.project.pipelines.has(name)) return { status: 404, jsonBody: { error: `unknown pipeline ${name}` } };
  const body = parseJsonBody(bodyText);
  if (!body.ok) return body.result;
  const parsed = schema.safeParse(body.value);
  if (!parsed.success) return { status: 400, jsonBody: { error: 'invalid body', fields: parsed.error.issues.map((i) => ({ path: i.path.join('.') || '(root)', message: i.message })) } };
  try {
    return await fn(parsed.data);
  } catch (err) {
    if (err instanceof NotFoundError) return { status: 404, jsonBody: { error: err.message } };
    if (err instanceof TerminalError) return { status: 409, jsonBody: { error: err.message } };
    throw err;
  }
}

/** POST /api/pipelines/{name}/ack — lifts a validation hold (what `tidemark ack` does). */
export const ackRoute: ApiRoute = {
  name: 'ack',
  methods: ['POST'],
  route: 'pipelines/{name}/ack',
  authLevel: 'function',
  handle: (ctx, req) =>
    action(ctx, req.params.name ?? '', req.bodyText, ackBodySchema, async (b) => {
      const acknowledged = await acknowledge(ctx, { pipeline: req.params.name!, ...(b.runId ? { runId: b.runId } : {}), by: 'http' });
      return { status: 200, jsonBody: { pipeline: req.params.name, acknowledged } };
    }),
};

/**
 * POST /api/pipelines/{name}/cancel — ends the in-flight run (what `tidemark cancel` does): a
 * committed merge is completed, anything else applies nothing.
 */
export const cancelRoute: ApiRoute = {
  name: 'cancel',
  methods: ['POST'],
  route: 'pipelines/{name}/cancel',
  authLevel: 'function',
  handle: (ctx, req) =>
    action(ctx, req.params.name ?? '', req.bodyText, cancelBodySchema, async (b) => {
      const name = req.params.name!;
      if (b.runId) {
        // The caller saw this run stuck; a run started since must not be ended in its place.
        const lease = await readLease(ctx.tables, name);
        if (lease?.runId !== b.runId) return { status: 409, jsonBody: { error: `run ${b.runId} of ${name} is no longer in flight${lease ? `; ${lease.runId} holds the pipeline now` : ''}` } };
      }
      const ended = await endInFlightRun(ctx, name, { kind: 'cancelled', reason: 'cancelled over HTTP' });
      if (ended.kind === 'operation') return { status: 409, jsonBody: { error: `${name} is held by ${ended.holder}, a rollback or restore, not a run; it cannot be cancelled`, ...ended } };
      return { status: 200, jsonBody: { pipeline: name, ...ended } };
    }),
};
