import { app } from '@azure/functions';
import { uiPageRoute } from '../shared/ui/routes.js';
import { httpHandler, httpOptions } from './http-adapter.js';

/** GET /api/ui — the run-history page. */
export const uiPageHandler = httpHandler(uiPageRoute);

app.http(uiPageRoute.name, httpOptions(uiPageRoute));
