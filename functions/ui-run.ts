import { app } from '@azure/functions';
import { uiRunRoute } from '../shared/ui/routes.js';
import { httpHandler, httpOptions } from './http-adapter.js';

/** GET /api/ui/pipelines/{name}/runs/{runId} — one run's detail. */
export const uiRunHandler = httpHandler(uiRunRoute);

app.http(uiRunRoute.name, httpOptions(uiRunRoute));
