import { join } from 'node:path';
import { z } from 'zod';
import { connectionOf } from '../config/load.js';
import { parseDuration } from '../config/duration.js';
import type { PipelineConfig } from '../config/schema.js';
import { TerminalError, errorMessage } from '../errors.js';
import { partitionCount, splitKeyRange } from '../extract/partitions.js';
import type { KeyRange, Source } from '../extract/source.js';
import { planWindow, type WindowInput } from '../extract/window.js';
import type { CheckpointHead } from '../state/checkpoints.js';
import type { RunRecord } from '../state/runs.js';
import { removeScratchDir, scratchDir } from '../storage/files.js';
import { CONTAINERS, QUEUES, layout } from '../storage/layout.js';
import { parseManifest, windowSchema } from '../storage/manifest.js';
import type { EngineContext } from './context.js';
import { withRetry } from '../retry.js';
import { publishRawManifest, uploadParts } from './raw-output.js';

/*
 * A partitioned full read (initial loads of tens of millions of rows): the first extract
 * message captures the window and the key range once, writes `_partitions.json` and enqueues
 * one extract message per key range ({ pipeline, runId, partition }: a pointer, never data).
 * Each partition writes its parts under `p<i>/` and then `p<i>/_done.json`; whichever
 * partition finds every `_done.json` present writes `_manifest.json`, which is what triggers
 * the transform, so the transform never starts on a partial extract. A failed partition is
 * retried alone (its own message); a done partition is never read twice.
 */

const rangeSchema = z.strictObject({ column: z.string(), lo: z.string(), hi: z.string(), last: z.boolean() });
const partSchema = z.strictObject({ name: z.string(), rows: z.number().int(), bytes: z.number().int(), md5: z.string() });
const planSchema = z.strictObject({
  kind: z.literal('partitions'),
  version: z.literal(1),
  pipeline: z.string(),
  runId: z.string(),
  baseRunId: z.string().nullable(),
  window: windowSchema,
  sourceRowCount: z.number().int().nullable(),
  ranges: z.array(rangeSchema).min(1),
  createdAt: z.string(),
});
const doneSchema = z.strictObject({
  partition: z.number().int(),
  parts: z.array(partSchema),
  schema: z.array(z.strictObject({ name: z.string(), type: z.string() })),
});
type PartitionPlan = z.infer<typeof planSchema>;

const planName = (p: string, runId: string) => `${layout.rawPrefix(p, runId)}_partitions.json`;
const partitionPrefix = (p: string, runId: string, i: number) => `${layout.rawPrefix(p, runId)}p${String(i).padStart(3, '0')}/`;
const doneName = (p: string, runId: string, i: number) => `${partitionPrefix(p, runId, i)}_done.json`;

function policy(p: PipelineConfig) {
  return { attempts: p.retry.attempts, backoff: p.retry.backoff, initialDelayMs: parseDuration(p.retry.initialDelay) };
}

/** True when this read should be split: partitions configured, a full read, a source that can. */
export function partitionsDue(p: PipelineConfig, window: WindowInput, source: Source): boolean {
  return p.source.partitions !== undefined && planWindow(window).fullRead && typeof source.keyStats === 'function';
}

/**
 * Plans the partitions and enqueues them. Returns false when there is nothing to split (empty
 * table): the caller then extracts in one piece as usual.
 */
export async function startPartitions(ctx: EngineContext, p: PipelineConfig, run: RunRecord, checkpoint: CheckpointHead, window: WindowInput): Promise<boolean> {
  const name = planName(p.name, run.runId);
  let plan: PartitionPlan;
  const existing = await ctx.blobs.getText(CONTAINERS.raw, name);
  if (existing !== undefined) {
    plan = parseManifest(planSchema, `raw/${name}`, existing);
  } else {
    const cfg = p.source.partitions!;
    const column = cfg.column ?? p.key[0]!;
    const stats = await withRetry(policy(p), async () => {
      const source = ctx.sourceFor(ctx, connectionOf(ctx.project, p), p);
      try {
        return await source.keyStats!({ window, column });
      } finally {
        await source.close();
      }
    });
    if (stats.min === null || stats.max === null) return false;
    plan = {
      kind: 'partitions',
      version: 1,
      pipeline: p.name,
      runId: run.runId,
      baseRunId: checkpoint.lastRunId,
      window: stats.window,
      sourceRowCount: stats.rows,
      ranges: splitKeyRange(column, stats.min, stats.max, partitionCount(cfg, stats.rows)),
      createdAt: ctx.now().toISOString(),
    };
    await ctx.blobs.putText(CONTAINERS.raw, name, JSON.stringify(plan, null, 2));
  }
  ctx.log.log('info', `extract split into ${plan.ranges.length} partitions of ${plan.ranges[0]!.column}`, { pipeline: p.name, runId: run.runId });
  let sent = 0;
  for (const [i] of plan.ranges.entries()) {
    if (await ctx.blobs.exists(CONTAINERS.raw, doneName(p.name, run.runId, i))) continue;
    await ctx.queues.send(QUEUES.extract, { pipeline: p.name, runId: run.runId, partition: i });
    sent++;
  }
  // Every partition done but no manifest (the last one's process died between the two, and a
  // resumed run has no partition message to finish it): write it here.
  if (sent === 0) await completeIfAllDone(ctx, p, run, plan);
  return true;
}

/** Extracts one partition, then writes the run's manifest if every partition is done. */
export async function extractPartition(ctx: EngineContext, p: PipelineConfig, run: RunRecord, index: number, window: WindowInput): Promise<'done'> {
  const text = await ctx.blobs.getText(CONTAINERS.raw, planName(p.name, run.runId));
  if (text === undefined) throw new TerminalError(`partition ${index} of run ${run.runId}: raw/${planName(p.name, run.runId)} is missing`);
  const plan = parseManifest(planSchema, `raw/${planName(p.name, run.runId)}`, text);
  const range: KeyRange | undefined = plan.ranges[index];
  if (!range) throw new TerminalError(`partition ${index} of run ${run.runId} does not exist (the plan has ${plan.ranges.length})`);
  const done = doneName(p.name, run.runId, index);
  if (!(await ctx.blobs.exists(CONTAINERS.raw, done))) {
    const dir = await scratchDir(ctx.workDir, p.name, run.runId, `extract-p${index}`);
    try {
      const result = await withRetry(
        policy(p),
        async () => {
          const source = ctx.sourceFor(ctx, connectionOf(ctx.project, p), p);
          try {
            return await source.extract({ window, outDir: join(dir, 'parts'), partRows: p.source.partRows, partBytes: p.source.partBytes, countSource: false, range });
          } finally {
            await source.close();
          }
        },
        (err, attempt, delay) =>
          ctx.log.log('warn', `partition ${index}: source read failed (attempt ${attempt}), retrying in ${delay} ms: ${errorMessage(err)}`, {
            pipeline: p.name,
            runId: run.runId,
          }),
      );
      const prefix = partitionPrefix(p.name, run.runId, index);
      const { parts, schema } = await uploadParts(ctx, result.files, result.schema, (j) => `${prefix}part-${String(j).padStart(5, '0')}.parquet`, prefix);
      const body: z.infer<typeof doneSchema> = { partition: index, parts, schema };
      await ctx.blobs.putText(CONTAINERS.raw, done, JSON.stringify(body, null, 2));
    } finally {
      await removeScratchDir(dir);
    }
  }
  await completeIfAllDone(ctx, p, run, plan);
  return 'done';
}

async function completeIfAllDone(ctx: EngineContext, p: PipelineConfig, run: RunRecord, plan: PartitionPlan): Promise<void> {
  const dones: Array<z.infer<typeof doneSchema>> = [];
  for (const [i] of plan.ranges.entries()) {
    const name = doneName(p.name, run.runId, i);
    const t = await ctx.blobs.getText(CONTAINERS.raw, name);
    if (t === undefined) return;
    dones.push(parseManifest(doneSchema, `raw/${name}`, t));
  }
  const parts = dones.flatMap((d) => d.parts);
  const schema = dones.find((d) => d.parts.length > 0)?.schema ?? dones[0]!.schema;
  // Deterministic content (createdAt from the plan): two partitions finishing together write
  // the same manifest, and the transform is idempotent by run id anyway.
  await publishRawManifest(ctx, {
    pipeline: p.name,
    runId: run.runId,
    baseRunId: plan.baseRunId,
    window: plan.window,
    // Partitions split full reads only (partitionsDue).
    read: { kind: 'full', from: null, to: plan.window.to, nullChangeColumnRows: null },
    sourceRowCount: plan.sourceRowCount,
    schema,
    parts,
    createdAt: plan.createdAt,
  });
}
