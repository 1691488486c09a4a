import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { splitQualified } from '../config/identifiers.js';
import { connectionOf, getPipeline, warehouseOf } from '../config/load.js';
import { parseDuration } from '../config/duration.js';
import type { PipelineConfig } from '../config/schema.js';
import { NotSupportedError, TerminalError } from '../errors.js';
import { planDuckExtract, sourceRelation } from '../extract/duckdb-source.js';
import { completeWindow, planWindow, type WindowInput } from '../extract/window.js';
import type { Dialect, ExistingColumn, Statement } from '../merge/dialect.js';
import { duckdbDialect } from '../merge/duckdb/dialect.js';
import { planColumnsFromDuck } from '../merge/duckdb/warehouse.js';
import type { MergePlan } from '../merge/plan.js';
import { readCheckpoint } from '../state/checkpoints.js';
import type { RunMode } from '../state/runs.js';
import type { ExtractWindow } from '../storage/manifest.js';
import { DuckSession, duckLiteral } from '../transform/duckdb-session.js';
import { ledgerName } from '../merge/scd-sql.js';
import { projectPath, type EngineContext } from './context.js';

export interface DryRunReport {
  pipeline: string;
  mode: RunMode;
  /** What the run would read: from / to watermark (or the whole table), and where the next run would continue. */
  window: ExtractWindow & { fullRead: boolean };
  source: { sql: string; parameters: readonly unknown[] };
  /** Rows the read would return now (a count of the same window). */
  estimatedRows: number;
  target: { table: string; exists: boolean; ddl: Statement[] };
  /** Always "none": nothing was written to storage, queues, tables or the warehouse. */
  writes: 'none';
}

/** The window the extract stage would use for this run, from the committed checkpoint (read only). */
export async function plannedWindowInput(ctx: EngineContext, p: PipelineConfig, mode: RunMode): Promise<WindowInput> {
  const { checkpoint } = await readCheckpoint(ctx.tables, p.name);
  const cd = p.source.changeDetection;
  return {
    mode: cd.mode,
    ...(cd.column ? { column: cd.column } : {}),
    lagMs: cd.lag ? parseDuration(cd.lag) : 0,
    saved: checkpoint.watermark,
    runMode: checkpoint.lastRunId === null && mode === 'incremental' ? 'full' : mode,
  };
}

/**
 * What a run would do now, writing nothing: the window (captured from the source as the
 * extract would), the source SQL from the same pure planner, a count of that window, and the
 * target DDL the merge would apply (create, new columns, widening). The source and a DuckDB
 * warehouse are attached READ_ONLY, so not even a checkpoint of their files can happen.
 */
export async function dryRun(ctx: EngineContext, req: { pipeline: string; mode?: RunMode }): Promise<DryRunReport> {
  const p = getPipeline(ctx.project, req.pipeline);
  const mode = req.mode ?? 'incremental';
  if (mode === 'backfill') throw new NotSupportedError('--dry-run of a backfill', 'dry-run an incremental or full run');
  const conn = connectionOf(ctx.project, p);
  if (conn.kind !== 'duckdb') throw new NotSupportedError(`--dry-run for ${conn.kind} sources`, 'built for duckdb sources; the run itself works');
  const input = await plannedWindowInput(ctx, p, mode);
  const file = projectPath(ctx, conn.path);
  if (!existsSync(file)) throw new TerminalError(`source database ${file} does not exist; check connections.${p.source.connection}.path`);
  const s = await DuckSession.open(':memory:', ctx.duck);
  try {
    await s.run(`SET TimeZone = 'UTC'`);
    await s.run(`ATTACH ${duckLiteral(resolve(file))} AS src (READ_ONLY)`);
    await s.run('USE src');
    const planned = planWindow(input);
    const plan0 = planDuckExtract(p, { from: planned.from, to: null, fullRead: planned.fullRead });
    const captured = plan0.upper && input.mode !== 'full' ? ((await s.one<{ upper: string | null }>(plan0.upper.sql))?.upper ?? null) : null;
    const window = completeWindow(input, captured);
    const schema = (await s.rows<{ column_name: string; column_type: string }>(`DESCRIBE SELECT * FROM ${sourceRelation(p)}`)).map((r) => ({ name: r.column_name, type: r.column_type }));
    const columnType = schema.find((c) => c.name === p.source.changeDetection.column)?.type;
    const plan = planDuckExtract(p, { from: window.from, to: window.to, fullRead: planned.fullRead, ...(columnType ? { columnType } : {}) });
    const nothing = !planned.fullRead && window.to === null;
    const estimatedRows = nothing ? 0 : Number((await s.one<{ n: bigint }>(`SELECT count(*)::BIGINT AS n FROM (${plan.select.sql})`, plan.select.parameters))?.n ?? 0);
    // The transform's output columns, from the user SQL over an empty `extract` of the same shape.
    await s.run(`CREATE TEMP VIEW extract AS SELECT * FROM ${sourceRelation(p)} LIMIT 0`);
    const out = p.transform.sql
      ? (await s.rows<{ column_name: string; column_type: string }>(`DESCRIBE ${p.transform.sql}`)).map((r) => ({ name: r.column_name, type: r.column_type }))
      : schema;
    const target = splitQualified(p.target.table);
    const { dialect, existing } = await targetState(ctx, p, s);
    const mergePlan: MergePlan = {
      pipeline: p.name,
      runId: 'dry-run',
      boundary: ctx.now().toISOString(),
      target,
      stage: { name: '_tm_stage' },
      keys: p.key,
      columns: planColumnsFromDuck(out),
      type1Columns: p.target.type1Columns,
      deletes: p.target.deletes,
      scd: p.target.scd,
      allowTypeWidening: p.target.allowTypeWidening,
      counts: { inserted: 0, updated: 0, deleted: 0, type1: 0 },
      // Only the DDL of this plan is rendered: a dry run commits nothing.
      commit: { baseRunId: null, runSeq: null, readTo: null, snapshot: '' },
    };
    const exists = existing !== undefined && existing.length > 0;
    return {
      pipeline: p.name,
      mode: input.runMode,
      window: { ...window, fullRead: planned.fullRead },
      source: { sql: plan.select.sql, parameters: plan.select.parameters },
      estimatedRows,
      // The target's own DDL: the run ledger's idempotent upkeep (CREATE / ADD COLUMN IF NOT
      // EXISTS on _tm_ledger) is bookkeeping, not a change to the user's table.
      target: {
        table: p.target.table,
        exists,
        ddl: dialect.ensureTarget(mergePlan, existing).filter((st) => !st.sql.includes(dialect.qualify(ledgerName(mergePlan))) && (!exists || /ALTER TABLE/.test(st.sql))),
      },
      writes: 'none',
    };
  } finally {
    s.close();
  }
}

/** The target's columns, read without opening a DuckDB warehouse for writing (a missing file stays missing). */
async function targetState(ctx: EngineContext, p: PipelineConfig, s: DuckSession): Promise<{ dialect: Dialect; existing: ExistingColumn[] | undefined }> {
  const wh = warehouseOf(ctx.project, p);
  const target = splitQualified(p.target.table);
  if (wh.kind === 'duckdb') {
    const file = projectPath(ctx, wh.path);
    if (!existsSync(file)) return { dialect: duckdbDialect, existing: undefined };
    await s.run(`ATTACH ${duckLiteral(resolve(file))} AS wh (READ_ONLY)`);
    await s.run('USE wh');
    const st = duckdbDialect.describeTarget(target);
    return { dialect: duckdbDialect, existing: await s.rows<ExistingColumn>(st.sql, st.parameters) };
  }
  const w = ctx.warehouseFor(ctx, wh, p);
  try {
    return { dialect: w.dialect, existing: await w.describe(target) };
  } finally {
    await w.close();
  }
}
