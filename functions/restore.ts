import { app } from '@azure/functions';
import { restoreRoute } from '../shared/rollback/http.js';
import { httpHandler, httpOptions } from './http-adapter.js';

/** POST /api/pipelines/{name}/restore — replaces the target with a backup (admin key). */
export const restoreHandler = httpHandler(restoreRoute);

app.http(restoreRoute.name, httpOptions(restoreRoute));
