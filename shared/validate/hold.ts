import { getPipeline } from '../config/load.js';
import type { PipelineConfig } from '../config/schema.js';
import type { EngineContext } from '../engine/context.js';
import { ConflictError, NotFoundError, TerminalError } from '../errors.js';
import { findRun, listRuns, updateRun, type RunRecord } from '../state/runs.js';

/** Extra fields a failed run carries once acknowledged. */
export interface AckFields {
  acknowledgedAt?: string;
  acknowledgedBy?: string;
}

/** The next run of a pipeline is refused while this is thrown (validation.holdOnFailure). */
export class HeldError extends ConflictError {}

const HOLD_LOOKBACK = 500;

function unacknowledged(runs: readonly RunRecord[]): RunRecord[] {
  return runs.filter((r) => r.status === 'validation_failed' && !(r as RunRecord & AckFields).acknowledgedAt);
}

/**
 * With `validation.holdOnFailure`, a run that failed validation holds the pipeline until
 * someone acknowledges it (`tidemark ack`) or rolls it back (its status becomes rolled_back).
 */
export async function assertNotHeld(ctx: EngineContext, p: PipelineConfig): Promise<void> {
  const open = await holdingRuns(ctx, p);
  if (open.length === 0) return;
  const ids = open.map((r) => r.runId).join(', ');
  throw new HeldError(
    `${p.name} is held: run(s) ${ids} failed validation. Look at them (tidemark status), then acknowledge with \`tidemark ack ${p.name}\` or undo with \`tidemark rollback ${p.name} --to-run <run>\``,
  );
}

/** The runs that hold the pipeline (newest first): none unless `validation.holdOnFailure`. */
export async function holdingRuns(ctx: EngineContext, p: PipelineConfig): Promise<RunRecord[]> {
  if (!p.validation.holdOnFailure) return [];
  return unacknowledged(await listRuns(ctx.tables, p.name, HOLD_LOOKBACK));
}

/** Acknowledges one failed run, or every unacknowledged one; returns the run ids. */
export async function acknowledge(ctx: EngineContext, req: { pipeline: string; runId?: string; by: string }): Promise<string[]> {
  const p = getPipeline(ctx.project, req.pipeline);
  let targets: RunRecord[];
  if (req.runId) {
    const r = await findRun(ctx.tables, p.name, req.runId);
    if (!r) throw new NotFoundError(`run ${req.runId} of ${p.name} not found`);
    if (r.status !== 'validation_failed') throw new TerminalError(`run ${req.runId} of ${p.name} is ${r.status}, not validation_failed; nothing to acknowledge`);
    targets = [r];
  } else {
    targets = unacknowledged(await listRuns(ctx.tables, p.name, HOLD_LOOKBACK));
  }
  const at = ctx.now().toISOString();
  for (const r of targets) {
    await updateRun(ctx.tables, p.name, r.runId, (x) => ({ ...x, acknowledgedAt: at, acknowledgedBy: req.by }), ctx.now);
  }
  return targets.map((r) => r.runId);
}
