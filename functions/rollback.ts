import { app } from '@azure/functions';
import { rollbackRoute } from '../shared/rollback/http.js';
import { httpHandler, httpOptions } from './http-adapter.js';

/** POST /api/pipelines/{name}/rollback — undoes the runs newer than body.toRunId (admin key). */
export const rollbackHandler = httpHandler(rollbackRoute);

app.http(rollbackRoute.name, httpOptions(rollbackRoute));
