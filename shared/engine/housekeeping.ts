import { errorMessage } from '../errors.js';
import { dropExpiredBackups } from '../rollback/backups.js';
import type { EngineContext } from './context.js';
import { pruneSnapshots } from './snapshots.js';

/**
 * The daily timer's work: expired backups, then unreachable snapshot layers per pipeline. One
 * pipeline's failure is logged and does not stop the others. Returns what was removed.
 */
export async function dailyHousekeeping(ctx: EngineContext): Promise<string[]> {
  const removed = (await dropExpiredBackups(ctx)).map((b) => `backup ${b}`);
  for (const p of ctx.project.pipelines.values()) {
    try {
      const pruned = await pruneSnapshots(ctx, p.name);
      if (pruned.length) removed.push(`${pruned.length} snapshot blob(s) of ${p.name}`);
    } catch (err) {
      ctx.log.log('warn', `snapshot pruning skipped: ${errorMessage(err)}`, { pipeline: p.name });
    }
  }
  return removed;
}
