import { app } from '@azure/functions';
import { openApiRoute } from '../shared/http/routes.js';
import { httpHandler, httpOptions } from './http-adapter.js';

/** GET /api/openapi.json — the OpenAPI document, generated from the zod schemas. */
export const openApiHandler = httpHandler(openApiRoute);

app.http(openApiRoute.name, httpOptions(openApiRoute));
