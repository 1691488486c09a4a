import { join } from 'node:path';
import { getPipeline } from '../config/load.js';
import type { EngineContext } from '../engine/context.js';
import { removeDir, scratchDir } from '../storage/files.js';
import { compareRunStart, findRun, type RunStatus } from '../state/runs.js';
import { CONTAINERS, layout } from '../storage/layout.js';
import { DuckSession, duckLiteral } from '../duckdb/session.js';

export interface QuarantinedRow {
  runId: string;
  /** Names of the quality rules (onFail: quarantine) the row failed. */
  rules: string[];
  row: Record<string, unknown>;
  /** The run's status: 'rolled_back' means the run's load was undone, so these rows belong to no live load. */
  runStatus: RunStatus | 'unknown';
}

/** Rows quarantined by a pipeline's runs (or one run), newest run first, at most `limit`. */
export async function listQuarantine(ctx: EngineContext, req: { pipeline: string; runId?: string; limit?: number; includeRolledBack?: boolean }): Promise<QuarantinedRow[]> {
  const p = getPipeline(ctx.project, req.pipeline);
  const names: string[] = [];
  if (req.runId) {
    const name = layout.quarantine(p.name, req.runId);
    if (await ctx.blobs.exists(CONTAINERS.quarantine, name)) names.push(name);
  } else {
    for await (const b of ctx.blobs.list(CONTAINERS.quarantine, `${p.name}/`)) if (b.name.endsWith('/quarantine.parquet')) names.push(b.name);
  }
  // Newest run first by the runs' start order (seq), never by run-id text: two runs started in
  // the same second would otherwise sort by their random suffix.
  const runs = await Promise.all(
    names.map(async (name) => {
      const runId = name.split('/')[1]!;
      const run = await findRun(ctx.tables, p.name, runId);
      return { name, runId, seq: run?.seq, runStatus: run?.status ?? ('unknown' as const) };
    }),
  );
  runs.sort((a, b) => compareRunStart(b, a));
  const limit = req.limit ?? 1000;
  const out: QuarantinedRow[] = [];
  const dir = await scratchDir(ctx.workDir, p.name, 'quarantine', `list-${process.pid}-${Date.now()}`);
  try {
    for (const [i, { name, runId, runStatus }] of runs.entries()) {
      if (out.length >= limit) break;
      // Rows of a rolled-back run are listed only when asked for, and then marked (runStatus).
      if (runStatus === 'rolled_back' && req.includeRolledBack === false) continue;
      const local = join(dir, `q-${i}.parquet`);
      await ctx.blobs.downloadToFile(CONTAINERS.quarantine, name, local);
      const s = await DuckSession.open(':memory:', ctx.duck);
      try {
        const rows = await s.rows<Record<string, unknown>>(`SELECT * FROM read_parquet(${duckLiteral(local)}) LIMIT ${limit - out.length}`);
        for (const r of rows) {
          const { _tm_failed_rules: rules, ...row } = r;
          out.push({ runId, runStatus, rules: Array.isArray(rules) ? rules.map(String) : [], row });
        }
      } finally {
        await s.close();
      }
    }
  } finally {
    await removeDir(dir);
  }
  return out;
}
