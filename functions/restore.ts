import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { appContext } from '../shared/engine/app-context.js';
import { handleRestore } from '../shared/rollback/http.js';
import { invocationSink } from './log-sink.js';

/** POST /api/pipelines/{name}/restore — replaces the target with a backup (admin key). */
export async function restoreHandler(req: HttpRequest, ic: InvocationContext): Promise<HttpResponseInit> {
  const ctx = await appContext(invocationSink(ic));
  return handleRestore(ctx, { pipeline: req.params.name ?? '', bodyText: await req.text() });
}

app.http('restore', { methods: ['POST'], route: 'pipelines/{name}/restore', authLevel: 'admin', handler: restoreHandler });
