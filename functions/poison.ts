import { app, type InvocationContext } from '@azure/functions';
import { appContext } from '../shared/engine/app-context.js';
import { failPoisonedRun } from '../shared/engine/poison.js';
import { POISON_SUFFIX, QUEUES } from '../shared/storage/layout.js';
import { invocationSink } from './log-sink.js';

/** A message that failed maxDequeueCount times: fail its run so the pipeline is not wedged. */
export function poisonHandler(queue: string) {
  return async (message: unknown, ic: InvocationContext): Promise<void> => {
    const ctx = await appContext(invocationSink(ic));
    await failPoisonedRun(ctx, queue, message);
  };
}

for (const q of Object.values(QUEUES)) {
  app.storageQueue(`poison-${q}`, { queueName: `${q}${POISON_SUFFIX}`, connection: 'AzureWebJobsStorage', handler: poisonHandler(q) });
}
