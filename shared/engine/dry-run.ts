import { z } from 'zod';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { splitQualified } from '../config/identifiers.js';
import { connectionOf, getPipeline, warehouseOf } from '../config/load.js';
import { parseDuration } from '../config/duration.js';
import type { PipelineConfig } from '../config/schema.js';
import { NotSupportedError } from '../errors.js';
import { parquetStats } from '../extract/parquet-stats.js';
import type { ExtractResult } from '../extract/source.js';
import type { WindowInput } from '../extract/window.js';
import type { Dialect, ExistingColumn } from '../merge/dialect.js';
import { duckdbDialect } from '../merge/duckdb/dialect.js';
import { planColumnsFromDuck } from '../merge/duckdb/warehouse.js';
import type { MergePlan } from '../merge/plan.js';
import { ledgerName } from '../merge/scd-sql.js';
import { readCheckpoint } from '../state/checkpoints.js';
import type { RunMode } from '../state/runs.js';
import { validationSchema } from '../http/api-schemas.js';
import { removeScratchDir, scratchDir } from '../storage/files.js';
import { countsSchema, hashRuleOf, windowSchema } from '../storage/manifest.js';
import { DuckSession, duckLiteral } from '../duckdb/session.js';
import { firstLoadHashRule, hashFormatOf } from '../canonical/row-hash.js';
import { runTransform } from '../transform/run-transform.js';
import { checkExtract } from '../validate/extract.js';
import { projectPath, type EngineContext } from './context.js';
import { loadSnapshot } from './snapshots.js';

const statementSchema = z.object({
  sql: z.string(),
  parameters: z.array(z.unknown()).readonly().describe('bound parameters, in order (SQL Server: { name, value })'),
});

/**
 * The answer of a dry run (`run --dry-run --json`, `POST …/runs?dryRun=true`); the OpenAPI
 * document is generated from it.
 */
export const dryRunReportSchema = z.strictObject({
  pipeline: z.string(),
  mode: z.enum(['incremental', 'full', 'backfill']).describe('the run mode the checkpoint gives: a first incremental run is a full one'),
  window: windowSchema
    .extend({ fullRead: z.boolean().describe('true: every source row is read, so absent keys are deletes') })
    .describe('what the run would read: from (exclusive) / to (inclusive) watermark, LSN or version, and the watermark it would commit (next)'),
  source: statementSchema.describe('the statement the read ran; empty SQL when the window held nothing to read'),
  estimatedRows: z.number().int().min(0).describe('rows the read returned now; a run started next reads the same window unless the source moves meanwhile'),
  changes: countsSchema.omit({ extracted: true }).describe("what the merge would apply: the transform's classification of those rows against the committed snapshot"),
  checks: z.array(validationSchema).describe('validation.extract checks on this read; a failed one would stop the run before the transform'),
  warnings: z.array(z.string()),
  target: z.strictObject({
    table: z.string(),
    exists: z.boolean(),
    ddl: z.array(statementSchema).describe("the target's DDL the merge would run first: create, new columns, widening"),
  }),
  writes: z.literal('none').describe('nothing was written to storage, queues, tables, the source or the warehouse'),
});

export type DryRunReport = z.infer<typeof dryRunReportSchema>;

/** The window the extract stage would use for this run, from the committed checkpoint (read only). */
export async function plannedWindowInput(ctx: EngineContext, p: PipelineConfig, mode: Exclude<RunMode, 'reconcile'>): Promise<WindowInput & { runMode: Exclude<RunMode, 'reconcile'> }> {
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
 * What a run would do now, writing nothing the run's stages read: the source is read by the
 * same Source as the extract (DuckDB attached READ_ONLY, PostgreSQL in a READ ONLY
 * transaction, SQL Server by SELECTs only), into a local scratch folder; the transform
 * classifies those rows against the committed snapshot (downloaded, never rewritten); the
 * target's DDL comes from the merge dialect over the target's described columns. The scratch
 * folder is removed; storage, queues, tables and the warehouse are only read.
 */
export async function dryRun(ctx: EngineContext, req: { pipeline: string; mode?: Exclude<RunMode, 'reconcile'> }): Promise<DryRunReport> {
  const p = getPipeline(ctx.project, req.pipeline);
  const mode = req.mode ?? 'incremental';
  if (mode === 'backfill') throw new NotSupportedError('--dry-run of a backfill', 'dry-run an incremental or full run');
  const conn = connectionOf(ctx.project, p);
  const input = await plannedWindowInput(ctx, p, mode);
  const { checkpoint } = await readCheckpoint(ctx.tables, p.name);
  const dir = await scratchDir(ctx.workDir, p.name, `dry-run-${randomBytes(4).toString('hex')}`, 'dry-run');
  try {
    const source = ctx.sourceFor(ctx, conn, p);
    let read: ExtractResult;
    try {
      read = await source.extract({ window: input, outDir: join(dir, 'parts'), partRows: p.source.partRows, partBytes: p.source.partBytes, countSource: false });
    } finally {
      await source.close();
    }
    const stats = await parquetStats(read.files, ctx.duck);
    const rows = stats.rows.reduce((a, b) => a + b, 0);
    const fullRead = read.read.kind === 'full';
    const checks = checkExtract(p, { rowCount: rows, schema: read.schema, read: { ...read.read, rows }, window: read.window });
    const committed = await loadSnapshot(ctx, p.name, checkpoint.snapshot, dir);
    const out = await runTransform({
      pipeline: p,
      parts: read.files,
      schema: read.schema,
      snapshot: committed?.input,
      fullRead,
      hashRule: hashRuleOf(committed) ?? firstLoadHashRule(p.target.hashFormat),
      boundary: ctx.now().toISOString(),
      sourceRowCount: null,
      outDir: dir,
      duck: ctx.duck,
    });
    const target = splitQualified(p.target.table);
    const { dialect, existing } = await targetState(ctx, p);
    const mergePlan: MergePlan = {
      pipeline: p.name,
      runId: 'dry-run',
      boundary: ctx.now().toISOString(),
      target,
      stage: { name: '_tm_stage' },
      keys: p.key,
      columns: planColumnsFromDuck(out.schema),
      type1Columns: p.target.type1Columns,
      deletes: p.target.deletes,
      scd: p.target.scd,
      allowTypeWidening: p.target.allowTypeWidening,
      hashFormat: hashFormatOf(out.hashRule),
      counts: { inserted: out.counts.inserted, updated: out.counts.updated, deleted: out.counts.deleted, type1: out.counts.type1 },
      // Only the DDL of this plan is rendered: a dry run commits nothing.
      commit: { baseRunId: null, runSeq: null, readTo: null, snapshot: '' },
    };
    const exists = existing !== undefined && existing.length > 0;
    return {
      pipeline: p.name,
      mode: input.runMode,
      window: { ...read.window, fullRead },
      source: read.statement ?? { sql: '', parameters: [] },
      estimatedRows: rows,
      changes: out.counts,
      checks,
      warnings: [...(read.warnings ?? []).map((w) => w.message), ...out.warnings],
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
    await removeScratchDir(dir);
  }
}

/** The target's columns, read without opening a DuckDB warehouse for writing (a missing file stays missing). */
async function targetState(ctx: EngineContext, p: PipelineConfig): Promise<{ dialect: Dialect; existing: ExistingColumn[] | undefined }> {
  const wh = warehouseOf(ctx.project, p);
  const target = splitQualified(p.target.table);
  if (wh.kind === 'duckdb') {
    const file = projectPath(ctx, wh.path);
    if (!existsSync(file)) return { dialect: duckdbDialect, existing: undefined };
    const s = await DuckSession.open(':memory:', ctx.duck);
    try {
      await s.run(`ATTACH ${duckLiteral(resolve(file))} AS wh (READ_ONLY)`);
      await s.run('USE wh');
      const st = duckdbDialect.describeTarget(target);
      return { dialect: duckdbDialect, existing: await s.rows<ExistingColumn>(st.sql, st.parameters) };
    } finally {
      await s.close();
    }
  }
  const w = ctx.warehouseFor(ctx, wh, p);
  try {
    return { dialect: w.dialect, existing: await w.describe(target) };
  } finally {
    await w.close();
  }
}
