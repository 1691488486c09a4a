import { app, type InvocationContext, type Timer } from '@azure/functions';
import { loadProject } from '../shared/config/load.js';
import { appContext, appProjectDir } from '../shared/engine/app-context.js';
import { startScheduledRun } from '../shared/engine/schedule.js';
import { invocationSink } from './log-sink.js';

/** One timer per scheduled pipeline, registered from the config when the worker loads. */
export function timerHandler(pipeline: string) {
  return async (timer: Timer, ic: InvocationContext): Promise<void> => {
    const ctx = await appContext(invocationSink(ic));
    await startScheduledRun(ctx, pipeline, { isPastDue: timer.isPastDue, invocationId: ic.invocationId });
  };
}

for (const p of loadProject(appProjectDir()).pipelines.values()) {
  if (p.schedule) app.timer(`timer-${p.name}`, { schedule: p.schedule, handler: timerHandler(p.name) });
}
