import { app } from '@azure/functions';
import { startRunRoute } from '../shared/http/routes.js';
import { httpHandler, httpOptions } from './http-adapter.js';

/** POST /api/pipelines/{name}/runs — starts a run (202 + status URL). */
export const startRunHandler = httpHandler(startRunRoute);

app.http(startRunRoute.name, httpOptions(startRunRoute));
