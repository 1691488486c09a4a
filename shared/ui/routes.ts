import type { ApiResponse, ApiRoute } from '../http/route.js';
import { NotFoundError, errorMessage } from '../errors.js';
import type { EngineContext } from '../engine/context.js';
import { UiInputError, parseRunLimit, uiOverview, uiPipelineDetail, uiRunDetail } from './data.js';
import { renderUiPage } from './page.js';

const NO_STORE = { 'cache-control': 'no-store' };

/** Bad input → 400, unknown pipeline/run → 404, both with a message naming the thing. */
async function json(ctx: EngineContext, produce: () => Promise<unknown>): Promise<ApiResponse> {
  try {
    return { status: 200, jsonBody: await produce(), headers: NO_STORE };
  } catch (err) {
    if (err instanceof UiInputError) return { status: 400, jsonBody: { error: err.message } };
    if (err instanceof NotFoundError) return { status: 404, jsonBody: { error: err.message } };
    ctx.log.log('error', `run-history data failed: ${errorMessage(err)}`);
    throw err;
  }
}

/** GET /api/ui — the run-history page (HTML with its script and styles inline). */
export const uiPageRoute: ApiRoute = {
  name: 'uiPage',
  methods: ['GET'],
  route: 'ui',
  authLevel: 'function',
  handle: async () => {
    const { html, headers } = renderUiPage();
    return { status: 200, body: html, headers };
  },
};

/** GET /api/ui/data — every pipeline's health at a glance. */
export const uiDataRoute: ApiRoute = {
  name: 'uiData',
  methods: ['GET'],
  route: 'ui/data',
  authLevel: 'function',
  handle: (ctx) => json(ctx, () => uiOverview(ctx)),
};

/** GET /api/ui/pipelines/{name}?limit=50 — one pipeline with its recent runs for the charts. */
export const uiPipelineRoute: ApiRoute = {
  name: 'uiPipeline',
  methods: ['GET'],
  route: 'ui/pipelines/{name}',
  authLevel: 'function',
  handle: (ctx, req) => json(ctx, () => uiPipelineDetail(ctx, req.params.name ?? '', parseRunLimit(req.query.get('limit')))),
};

/** GET /api/ui/pipelines/{name}/runs/{runId} — one run with its counts, timings and validations. */
export const uiRunRoute: ApiRoute = {
  name: 'uiRun',
  methods: ['GET'],
  route: 'ui/pipelines/{name}/runs/{runId}',
  authLevel: 'function',
  handle: (ctx, req) => json(ctx, () => uiRunDetail(ctx, req.params.name ?? '', req.params.runId ?? '')),
};

export const uiRoutes: ApiRoute[] = [uiPageRoute, uiDataRoute, uiPipelineRoute, uiRunRoute];
