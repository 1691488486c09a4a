import { errorMessage } from '../errors.js';
import { dropExpiredBackups } from '../rollback/backups.js';
import { isTerminalStatus, type RunRecord } from '../state/runs.js';
import type { AckFields } from '../validate/hold.js';
import { CONTAINERS, TABLES } from '../storage/layout.js';
import type { EngineContext } from './context.js';
import { newRunId } from './run-id.js';
import { pruneSnapshots } from './snapshots.js';

const DAY_MS = 24 * 3600_000;

/** TIDEMARK_RUN_FILES_KEEP_DAYS: how long a finished run's data files stay (default 7; 0 = until the next housekeeping). */
export function runFilesKeepMs(env: NodeJS.ProcessEnv): number {
  const raw = env.TIDEMARK_RUN_FILES_KEEP_DAYS ?? '7';
  const days = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(days) || days < 0) {
    throw new Error(`TIDEMARK_RUN_FILES_KEEP_DAYS must be a number of days (0 or more), got ${JSON.stringify(raw)}`);
  }
  return days * DAY_MS;
}

/**
 * Deletes the data files (Parquet) of a pipeline's finished runs older than the keep period:
 * the raw parts and the changes and sample files (the warehouse has the rows; nothing reads
 * them after validation). The manifests stay, small and useful: the schema-drift check reads the base
 * run's raw manifest, and they record what each run read and wrote. Runs still in flight, and
 * failed validations not yet acknowledged, are never touched, however old. Returns the number of blobs deleted.
 */
export async function pruneRunFiles(ctx: EngineContext, pipeline: string, keepMs: number): Promise<number> {
  // Run ids sort by start time: every run id below this one started before the cutoff.
  const cutoff = newRunId(new Date(ctx.now().getTime() - keepMs)).slice(0, 16);
  const runs = new Map((await ctx.tables.list<RunRecord>(TABLES.runs, pipeline)).map((r) => [r.runId, r]));
  let deleted = 0;
  for (const container of [CONTAINERS.raw, CONTAINERS.changes]) {
    const doomed: string[] = [];
    for await (const b of ctx.blobs.list(container, `${pipeline}/`)) {
      // Only data files: the manifests (and a partitioned extract's plan and markers) are JSON.
      const runId = b.name.split('/')[1];
      if (!runId || !b.name.endsWith('.parquet') || runId.slice(0, 16) >= cutoff) continue;
      const run = runs.get(runId);
      // No record: an attempt whose run record is gone (or never written); as old, as dead.
      if (run && !isTerminalStatus(run.status)) continue;
      // A failed validation nobody has acknowledged is still being looked into.
      if (run?.status === 'validation_failed' && !(run as RunRecord & AckFields).acknowledgedAt) continue;
      doomed.push(b.name);
    }
    for (const name of doomed) deleted += await ctx.blobs.deletePrefix(container, name);
  }
  return deleted;
}

/**
 * The daily timer's work: expired backups, then per pipeline the snapshot layers no run can be
 * rewound to and the data files of finished runs past TIDEMARK_RUN_FILES_KEEP_DAYS. One
 * pipeline's failure is logged and does not stop the others. Returns what was removed.
 */
export async function dailyHousekeeping(ctx: EngineContext): Promise<string[]> {
  const keepMs = runFilesKeepMs(ctx.env);
  const removed = (await dropExpiredBackups(ctx)).map((b) => `backup ${b}`);
  for (const p of ctx.project.pipelines.values()) {
    try {
      const pruned = await pruneSnapshots(ctx, p.name);
      if (pruned.length) removed.push(`${pruned.length} snapshot blob(s) of ${p.name}`);
      const files = await pruneRunFiles(ctx, p.name, keepMs);
      if (files) removed.push(`${files} run data file(s) of ${p.name}`);
    } catch (err) {
      ctx.log.log('warn', `housekeeping of ${p.name} skipped: ${errorMessage(err)}`, { pipeline: p.name });
    }
  }
  return removed;
}
