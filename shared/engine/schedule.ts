import { ConflictError } from '../errors.js';
import type { EngineContext } from './context.js';
import { startRun } from './start-run.js';

/**
 * A timer tick. A run still in flight makes the tick a no-op (the next tick catches up: the
 * window is computed from the checkpoint, not from the schedule), so overlapping ticks never
 * interleave runs.
 */
export async function startScheduledRun(ctx: EngineContext, pipeline: string, o: { isPastDue: boolean; invocationId?: string }): Promise<'started' | 'skipped'> {
  if (o.isPastDue) ctx.log.log('warn', 'timer is past due; starting now', { pipeline });
  try {
    await startRun(ctx, { pipeline, trigger: 'schedule', ...(o.invocationId ? { owner: { ownerInvocationId: o.invocationId } } : {}) });
    return 'started';
  } catch (err) {
    if (err instanceof ConflictError) {
      ctx.log.log('info', `scheduled run skipped: ${err.message}`, { pipeline });
      return 'skipped';
    }
    throw err;
  }
}
