import { app, type InvocationContext } from '@azure/functions';
import { extractStage } from '../shared/engine/stages.js';
import { QUEUES } from '../shared/storage/layout.js';
import { queueStage } from './queue-stage.js';

/** Queue "extract": stream the run's window from the source into Parquet parts + manifest. */
export async function extractHandler(message: unknown, ic: InvocationContext): Promise<void> {
  await queueStage(QUEUES.extract, message, ic, extractStage);
}

app.storageQueue('extract', { queueName: QUEUES.extract, connection: 'AzureWebJobsStorage', handler: extractHandler });
