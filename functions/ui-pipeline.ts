import { app } from '@azure/functions';
import { uiPipelineRoute } from '../shared/ui/routes.js';
import { httpHandler, httpOptions } from './http-adapter.js';

/** GET /api/ui/pipelines/{name} — a pipeline's recent runs for the charts. */
export const uiPipelineHandler = httpHandler(uiPipelineRoute);

app.http(uiPipelineRoute.name, httpOptions(uiPipelineRoute));
