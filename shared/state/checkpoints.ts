import { ConflictError, TerminalError } from '../errors.js';
import { TABLES } from '../storage/layout.js';
import type { TableEntity, TableStore } from '../storage/ports.js';

export interface Checkpoint extends TableEntity {
  pipeline: string;
  /** Committed watermark (timestamp ISO, rowversion hex, LSN hex, CT version); null = never loaded. */
  watermark: string | null;
  /** Blob name in `state` of the committed snapshot (key → row hash of every current version). */
  snapshot: string | null;
  lastRunId: string | null;
  committedAt: string;
  /** Committed runs, oldest first: lets rollback rewind without the blob listing. */
  history: Array<{ runId: string; watermark: string | null; snapshot: string | null }>;
}

const ROW = 'checkpoint';
const HISTORY_LIMIT = 200;

export async function readCheckpoint(tables: TableStore, pipeline: string): Promise<{ checkpoint: Checkpoint; etag?: string }> {
  const stored = await tables.get<Checkpoint>(TABLES.checkpoints, pipeline, ROW);
  if (stored) {
    // Table Storage drops null properties: a committed null watermark (full mode, or a backfill
    // before any incremental run) reads back as undefined and must be null again.
    const e = stored.entity;
    return {
      checkpoint: { ...e, watermark: e.watermark ?? null, snapshot: e.snapshot ?? null, lastRunId: e.lastRunId ?? null, history: e.history ?? [] },
      etag: stored.etag,
    };
  }
  return {
    checkpoint: {
      partitionKey: pipeline,
      rowKey: ROW,
      pipeline,
      watermark: null,
      snapshot: null,
      lastRunId: null,
      committedAt: '',
      history: [],
    },
  };
}

export type CommitResult = 'committed' | 'already-committed';

/**
 * Advances the checkpoint to `runId` with ETag concurrency. Idempotent (a redelivered merge
 * finds its own run already committed) and ordered (the checkpoint must still point at the run
 * the extract read against; otherwise the window this run computed is stale).
 */
export async function commitCheckpoint(
  tables: TableStore,
  args: { pipeline: string; runId: string; baseRunId: string | null; watermark: string | null; snapshot: string; now: Date },
): Promise<CommitResult> {
  const { checkpoint, etag } = await readCheckpoint(tables, args.pipeline);
  if (checkpoint.lastRunId === args.runId) return 'already-committed';
  if (checkpoint.lastRunId !== args.baseRunId) {
    throw new TerminalError(
      `checkpoint of ${args.pipeline} moved from ${args.baseRunId ?? 'nothing'} to ${checkpoint.lastRunId} while run ${args.runId} was in flight; start a new run`,
    );
  }
  const next: Checkpoint = {
    ...checkpoint,
    watermark: args.watermark,
    snapshot: args.snapshot,
    lastRunId: args.runId,
    committedAt: args.now.toISOString(),
    history: [...checkpoint.history, { runId: args.runId, watermark: args.watermark, snapshot: args.snapshot }].slice(-HISTORY_LIMIT),
  };
  try {
    if (etag) await tables.replace(TABLES.checkpoints, next, etag);
    else await tables.insert(TABLES.checkpoints, next);
  } catch (err) {
    if (err instanceof ConflictError) {
      // Someone committed between our read and write: either our own duplicate delivery
      // (fine) or a foreign run (a real ordering violation, reported as such).
      const again = await readCheckpoint(tables, args.pipeline);
      if (again.checkpoint.lastRunId === args.runId) return 'already-committed';
      throw new TerminalError(`checkpoint of ${args.pipeline} was advanced concurrently to ${again.checkpoint.lastRunId}`, { cause: err });
    }
    throw err;
  }
  return 'committed';
}

/** Rewinds to the state after `toRunId` (null = never loaded). Used by rollback. */
export async function rewindCheckpoint(tables: TableStore, pipeline: string, toRunId: string | null, now: Date): Promise<Checkpoint> {
  const { checkpoint, etag } = await readCheckpoint(tables, pipeline);
  const idx = toRunId === null ? -1 : checkpoint.history.findIndex((h) => h.runId === toRunId);
  if (toRunId !== null && idx < 0) throw new TerminalError(`run ${toRunId} is not in the committed history of ${pipeline}`);
  const kept = checkpoint.history.slice(0, idx + 1);
  const last = kept[kept.length - 1];
  const next: Checkpoint = {
    ...checkpoint,
    watermark: last?.watermark ?? null,
    snapshot: last?.snapshot ?? null,
    lastRunId: last?.runId ?? null,
    committedAt: now.toISOString(),
    history: kept,
  };
  if (etag) await tables.replace(TABLES.checkpoints, next, etag);
  else await tables.insert(TABLES.checkpoints, next);
  return next;
}
