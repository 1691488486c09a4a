import { app } from '@azure/functions';
import { getRunRoute } from '../shared/http/routes.js';
import { httpHandler, httpOptions } from './http-adapter.js';

/** GET /api/pipelines/{name}/runs/{runId} — stage, counts, timings, error, validations. */
export const getRunHandler = httpHandler(getRunRoute);

app.http(getRunRoute.name, httpOptions(getRunRoute));
