import type { InvocationContext } from '@azure/functions';
import type { EngineContext } from '../shared/engine/context.js';
import { appContext } from '../shared/engine/app-context.js';
import { deferBusyDelivery, parseStageMessage, type StageMessage } from '../shared/engine/messages.js';
import type { StageOutcome } from '../shared/engine/stages.js';
import { StageBusyError, errorMessage } from '../shared/errors.js';
import { invocationSink } from './log-sink.js';

/**
 * The shape every queue-triggered stage shares: parse the message, call the stage. A message
 * that does not parse is dropped with an error log (redelivering it cannot help); the stage
 * itself fails the run on terminal errors and throws transient ones so the host retries; a
 * delivery another one is working on is deferred (deferBusyDelivery), not retried.
 */
export async function queueStage(
  queue: string,
  message: unknown,
  ic: InvocationContext,
  stage: (ctx: EngineContext, msg: StageMessage) => Promise<StageOutcome>,
): Promise<void> {
  const ctx = await appContext(invocationSink(ic));
  let msg: StageMessage;
  try {
    msg = parseStageMessage(queue, message);
  } catch (err) {
    ic.error(`dropped: ${errorMessage(err)}`);
    return;
  }
  try {
    await stage(ctx, msg);
  } catch (err) {
    if (!(err instanceof StageBusyError)) throw err;
    await deferBusyDelivery(ctx.queues, queue, msg, err);
    ic.log(`deferred: ${errorMessage(err)}`);
  }
}
