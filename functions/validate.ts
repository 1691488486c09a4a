import { app, type InvocationContext } from '@azure/functions';
import { validateStage } from '../shared/engine/stages.js';
import { startRun } from '../shared/engine/start-run.js';
import { QUEUES } from '../shared/storage/layout.js';
import { queueStage } from './queue-stage.js';

/** Queue "validate": counts and checksums after the merge; the run's final status. */
export async function validateHandler(message: unknown, ic: InvocationContext): Promise<void> {
  await queueStage(QUEUES.validate, message, ic, (ctx, msg) => validateStage(ctx, msg, startRun));
}

app.storageQueue('validate', { queueName: QUEUES.validate, connection: 'AzureWebJobsStorage', handler: validateHandler });
