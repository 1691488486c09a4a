import { PIPELINE_NAME_PATTERN } from '../config/identifiers.js';
import { NotFoundError, NotSupportedError, TerminalError } from '../errors.js';
import type { EngineContext } from './context.js';
import { dryRun } from './dry-run.js';
import { previewReconcile } from './reconcile.js';
import type { HttpResult } from './http-api.js';

/** POST /api/pipelines/{name}/runs?dryRun=true[&mode=full|reconcile[&deletes=true[&allowEmpty=true]]]: what the run would do; 200 and nothing written. */
export async function handleDryRun(ctx: EngineContext, req: { pipeline: string; query: URLSearchParams }): Promise<HttpResult> {
  if (!PIPELINE_NAME_PATTERN.test(req.pipeline)) return { status: 400, jsonBody: { error: 'invalid pipeline name: lowercase letters, digits and _' } };
  if (!ctx.project.pipelines.has(req.pipeline)) return { status: 404, jsonBody: { error: `unknown pipeline ${req.pipeline}` } };
  const mode = req.query.get('mode') ?? 'incremental';
  if (mode !== 'incremental' && mode !== 'full' && mode !== 'reconcile') return { status: 400, jsonBody: { error: 'mode must be incremental, full or reconcile for a dry run' } };
  const flag = (n: string) => req.query.get(n) === 'true';
  try {
    if (mode === 'reconcile') {
      // What a reconcile would find and do, like `tidemark reconcile --dry-run`.
      return { status: 200, jsonBody: { ...(await previewReconcile(ctx, { pipeline: req.pipeline, deletes: flag('deletes'), allowEmpty: flag('allowEmpty') })), dryRun: true } };
    }
    return { status: 200, jsonBody: await dryRun(ctx, { pipeline: req.pipeline, mode }) };
  } catch (err) {
    if (err instanceof NotFoundError) return { status: 404, jsonBody: { error: err.message } };
    if (err instanceof NotSupportedError || err instanceof TerminalError) return { status: 422, jsonBody: { error: err.message } };
    throw err;
  }
}
