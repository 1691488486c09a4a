import { handleStartRun } from '../engine/http-api.js';
import type { ApiRoute } from './route.js';
import { uiRoutes } from '../ui/routes.js';

export const startRunRoute: ApiRoute = {
  name: 'startRun',
  methods: ['POST'],
  route: 'pipelines/{name}/runs',
  authLevel: 'function',
  handle: (ctx, req) => handleStartRun(ctx, { pipeline: req.params.name ?? '', bodyText: req.bodyText, baseUrl: req.baseUrl }),
};

/** Every route of the API, in the order the local server tries them. */
export const apiRoutes: ApiRoute[] = [startRunRoute, ...uiRoutes];
