import { app } from '@azure/functions';
import { listPipelinesRoute } from '../shared/http/routes.js';
import { httpHandler, httpOptions } from './http-adapter.js';

/** GET /api/pipelines — every pipeline with its checkpoint and last run. */
export const listPipelinesHandler = httpHandler(listPipelinesRoute);

app.http(listPipelinesRoute.name, httpOptions(listPipelinesRoute));
