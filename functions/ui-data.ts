import { app } from '@azure/functions';
import { uiDataRoute } from '../shared/ui/routes.js';
import { httpHandler, httpOptions } from './http-adapter.js';

/** GET /api/ui/data — every pipeline's last run, freshness, checkpoint, next run. */
export const uiDataHandler = httpHandler(uiDataRoute);

app.http(uiDataRoute.name, httpOptions(uiDataRoute));
