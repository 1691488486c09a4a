import { Cron } from 'croner';
import type { EngineContext } from '../engine/context.js';
import { startScheduledRun } from '../engine/schedule.js';
import { errorMessage } from '../errors.js';

/** A tick later than this after its scheduled time counts as past due, as the Functions host reports it. */
export const PAST_DUE_MS = 5_000;

export interface LocalTimers {
  /** Pipeline → next fire time, for the `tidemark dev` banner. */
  next(): Array<{ pipeline: string; schedule: string; next: Date | null }>;
  stop(): void;
}

/**
 * The timers of `tidemark dev`: one croner job per scheduled pipeline, NCRONTAB (six fields,
 * seconds first) in UTC, calling the same startScheduledRun the Azure timer trigger calls.
 * croner does not overlap a job with itself (`protect`), like the host's singleton timers.
 */
export function startLocalTimers(ctx: EngineContext, onTick?: (pipeline: string, outcome: 'started' | 'skipped' | 'failed') => void): LocalTimers {
  const jobs: Array<{ pipeline: string; schedule: string; cron: Cron }> = [];
  for (const p of ctx.project.pipelines.values()) {
    if (!p.schedule) continue;
    const schedule = p.schedule;
    const cron = new Cron(schedule, { timezone: 'UTC', protect: true }, async (self: Cron) => {
      const scheduled = self.currentRun();
      const isPastDue = scheduled !== null && Date.now() - scheduled.getTime() > PAST_DUE_MS;
      try {
        // Not `onTick?.(…, await start…)`: an optional call skips evaluating its arguments.
        const outcome = await startScheduledRun(ctx, p.name, { isPastDue });
        onTick?.(p.name, outcome);
      } catch (err) {
        ctx.log.log('error', `timer of ${p.name} failed: ${errorMessage(err)}`, { pipeline: p.name });
        onTick?.(p.name, 'failed');
      }
    });
    jobs.push({ pipeline: p.name, schedule, cron });
  }
  return {
    next: () => jobs.map((j) => ({ pipeline: j.pipeline, schedule: j.schedule, next: j.cron.nextRun() })),
    stop: () => jobs.forEach((j) => j.cron.stop()),
  };
}
