import { app } from '@azure/functions';
import { ackRoute } from '../shared/http/actions.js';
import { httpHandler, httpOptions } from './http-adapter.js';

/** POST /api/pipelines/{name}/ack — acknowledges failed validations so a held pipeline runs again. */
export const ackHandler = httpHandler(ackRoute);

app.http(ackRoute.name, httpOptions(ackRoute));
