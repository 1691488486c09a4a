import { app } from '@azure/functions';
import { listRunsRoute } from '../shared/http/routes.js';
import { httpHandler, httpOptions } from './http-adapter.js';

/** GET /api/pipelines/{name}/runs?limit= — runs, newest first. */
export const listRunsHandler = httpHandler(listRunsRoute);

app.http(listRunsRoute.name, httpOptions(listRunsRoute));
