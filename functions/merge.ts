import { app, type InvocationContext } from '@azure/functions';
import { mergeStage } from '../shared/engine/stages.js';
import { QUEUES } from '../shared/storage/layout.js';
import { queueStage } from './queue-stage.js';

/** Queue "merge": SCD2 merge + ledger in one transaction, then the checkpoint. */
export async function mergeHandler(message: unknown, ic: InvocationContext): Promise<void> {
  await queueStage(QUEUES.merge, message, ic, mergeStage);
}

app.storageQueue('merge', { queueName: QUEUES.merge, connection: 'AzureWebJobsStorage', handler: mergeHandler });
