import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { appContext } from '../shared/engine/app-context.js';
import { handleRollback } from '../shared/rollback/http.js';
import { invocationSink } from './log-sink.js';

/** POST /api/pipelines/{name}/rollback — undoes the runs newer than body.toRunId (admin key). */
export async function rollbackHandler(req: HttpRequest, ic: InvocationContext): Promise<HttpResponseInit> {
  const ctx = await appContext(invocationSink(ic));
  return handleRollback(ctx, { pipeline: req.params.name ?? '', bodyText: await req.text() });
}

app.http('rollback', { methods: ['POST'], route: 'pipelines/{name}/rollback', authLevel: 'admin', handler: rollbackHandler });
