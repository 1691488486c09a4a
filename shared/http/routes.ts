import { handleStartRun } from '../engine/http-api.js';
import { handleDryRun } from '../engine/dry-run-http.js';
import { openApiDocument } from './openapi.js';
import { handleGetRun, handleListPipelines, handleListRuns } from './pipelines-api.js';
import type { ApiRoute } from './route.js';
import { uiRoutes } from '../ui/routes.js';
import { restoreRoute, rollbackRoute } from '../rollback/http.js';
import { ackRoute, cancelRoute } from './actions.js';

export const startRunRoute: ApiRoute = {
  name: 'startRun',
  methods: ['POST'],
  route: 'pipelines/{name}/runs',
  authLevel: 'function',
  handle: (ctx, req) =>
    req.query.get('dryRun') === 'true'
      ? handleDryRun(ctx, { pipeline: req.params.name ?? '', query: req.query })
      : handleStartRun(ctx, { pipeline: req.params.name ?? '', bodyText: req.bodyText, baseUrl: req.baseUrl }),
};

export const listPipelinesRoute: ApiRoute = {
  name: 'listPipelines',
  methods: ['GET'],
  route: 'pipelines',
  authLevel: 'function',
  handle: (ctx, req) => handleListPipelines(ctx, req.baseUrl),
};

export const listRunsRoute: ApiRoute = {
  name: 'listRuns',
  methods: ['GET'],
  route: 'pipelines/{name}/runs',
  authLevel: 'function',
  handle: (ctx, req) => handleListRuns(ctx, req.params.name ?? '', req.query),
};

export const getRunRoute: ApiRoute = {
  name: 'getRun',
  methods: ['GET'],
  route: 'pipelines/{name}/runs/{runId}',
  authLevel: 'function',
  handle: (ctx, req) => handleGetRun(ctx, req.params.name ?? '', req.params.runId ?? ''),
};

/** Anonymous: the document describes the API, it reveals no pipeline or data. */
export const openApiRoute: ApiRoute = {
  name: 'openApi',
  methods: ['GET'],
  route: 'openapi.json',
  authLevel: 'anonymous',
  handle: async (_ctx, req) => ({ status: 200, jsonBody: openApiDocument(req.baseUrl) }),
};

/** Every route of the API, in the order the local server tries them. */
export const apiRoutes: ApiRoute[] = [startRunRoute, listPipelinesRoute, listRunsRoute, getRunRoute, rollbackRoute, restoreRoute, ackRoute, cancelRoute, openApiRoute, ...uiRoutes];
