import { app } from '@azure/functions';
import { cancelRoute } from '../shared/http/actions.js';
import { httpHandler, httpOptions } from './http-adapter.js';

/** POST /api/pipelines/{name}/cancel — ends the pipeline's in-flight run. */
export const cancelHandler = httpHandler(cancelRoute);

app.http(cancelRoute.name, httpOptions(cancelRoute));
