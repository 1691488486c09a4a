import { app, type InvocationContext } from '@azure/functions';
import { appContext } from '../shared/engine/app-context.js';
import { failPoisonedBlob } from '../shared/engine/blob-poison.js';
import { BLOB_POISON_QUEUE } from '../shared/local/host.js';
import { invocationSink } from './log-sink.js';

/** The transform (blob trigger) failed on every attempt: fail its run and raise the poison alert. */
export async function blobPoisonHandler(message: unknown, ic: InvocationContext): Promise<void> {
  const ctx = await appContext(invocationSink(ic));
  await failPoisonedBlob(ctx, message);
}

app.storageQueue('poison-blob-transform', { queueName: BLOB_POISON_QUEUE, connection: 'AzureWebJobsStorage', handler: blobPoisonHandler });
