import type { EngineContext } from './context.js';
import { stageMessageSchema } from './messages.js';
import { failRun } from './run-lifecycle.js';
import { telemetryOf } from '../telemetry/telemetry.js';

/** Marks the run of a poisoned message failed; a message we cannot read is only logged. */
export async function failPoisonedRun(ctx: EngineContext, queue: string, message: unknown): Promise<void> {
  const parsed = stageMessageSchema.safeParse(message);
  if (!parsed.success) {
    telemetryOf(ctx).event('MessagePoisoned', { pipeline: '', runId: '', queue });
    ctx.log.log('error', `unreadable message in ${queue}-poison`, { message: JSON.stringify(message).slice(0, 500) });
    return;
  }
  const { pipeline, runId } = parsed.data;
  // Backs the "poison queue not empty" alert (infra/main.bicep).
  telemetryOf(ctx).event('MessagePoisoned', { pipeline, runId, queue });
  ctx.log.log('error', `message poisoned in ${queue}; failing the run`, { pipeline, runId });
  await failRun(ctx, pipeline, runId, `poisoned in ${queue}: the stage failed on every delivery (see the stage's log lines)`);
}
