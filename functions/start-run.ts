import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { appContext } from '../shared/engine/app-context.js';
import { handleStartRun } from '../shared/engine/http-api.js';
import { invocationSink } from './log-sink.js';

/** POST /api/pipelines/{name}/runs — starts a run (202 + status URL). */
export async function startRunHandler(req: HttpRequest, ic: InvocationContext): Promise<HttpResponseInit> {
  const ctx = await appContext(invocationSink(ic));
  return handleStartRun(ctx, { pipeline: req.params.name ?? '', bodyText: await req.text(), baseUrl: new URL(req.url).origin });
}

app.http('startRun', { methods: ['POST'], route: 'pipelines/{name}/runs', authLevel: 'function', handler: startRunHandler });
