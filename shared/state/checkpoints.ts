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
  /** Position of the head in the history rows (1, 2, …; 0 = never loaded). */
  position: number;
  /**
   * Committed runs, oldest first: lets rollback rewind without the blob listing. Read from one
   * row per committed run (HISTORY_ROW), never stored on this entity: a list in one property
   * outgrows Table Storage's 64 KiB limit (with a 40-character pipeline name, commit 196 failed).
   */
  history: HistoryEntry[];
}

export interface HistoryEntry {
  runId: string;
  watermark: string | null;
  snapshot: string | null;
}

interface HistoryRow extends TableEntity, HistoryEntry {
  position: number;
}

const ROW = 'checkpoint';
const HISTORY_ROW = 'history-';
/** Committed runs kept for rollback and snapshot housekeeping; older history rows are deleted. */
export const HISTORY_LIMIT = 200;
const historyKey = (position: number) => `${HISTORY_ROW}${String(position).padStart(12, '0')}`;

/** The checkpoint entity as stored: every field optional, as Table Storage drops nulls; `history` only on rows written before history rows. */
interface StoredHead extends TableEntity {
  pipeline: string;
  watermark?: string | null;
  snapshot?: string | null;
  lastRunId?: string | null;
  committedAt: string;
  position?: number;
  history?: HistoryEntry[];
}

type Head = Pick<Checkpoint, 'partitionKey' | 'rowKey' | 'pipeline' | 'watermark' | 'snapshot' | 'lastRunId' | 'committedAt' | 'position'>;

/** The checkpoint without its history: the committed head a run reads on from. */
export type CheckpointHead = Head;

export async function readCheckpoint(tables: TableStore, pipeline: string): Promise<{ checkpoint: Checkpoint; etag?: string }> {
  const { head, legacy, etag } = await readHead(tables, pipeline);
  const checkpoint: Checkpoint = { ...head, history: await readHistory(tables, head, legacy) };
  return etag === undefined ? { checkpoint } : { checkpoint, etag };
}

/**
 * The head row alone (one point read): what a run reads on from (its watermark, snapshot and base
 * run) and what a commit needs, without listing the partition's history rows. Only rollback,
 * restore, recovery and housekeeping need the history (readCheckpoint).
 */
export async function readCheckpointHead(tables: TableStore, pipeline: string): Promise<CheckpointHead> {
  return (await readHead(tables, pipeline)).head;
}

async function readHead(tables: TableStore, pipeline: string): Promise<{ head: Head; legacy?: HistoryEntry[]; etag?: string }> {
  const stored = await tables.get<StoredHead>(TABLES.checkpoints, pipeline, ROW);
  if (!stored) {
    return { head: { partitionKey: pipeline, rowKey: ROW, pipeline, watermark: null, snapshot: null, lastRunId: null, committedAt: '', position: 0 } };
  }
  // Table Storage drops null properties: a committed null watermark (full mode, or a backfill
  // before any incremental run) reads back as undefined and must be null again.
  const { history: legacy, ...e } = stored.entity;
  const head: Head = {
    ...e,
    partitionKey: pipeline,
    rowKey: ROW,
    pipeline: e.pipeline ?? pipeline,
    watermark: e.watermark ?? null,
    snapshot: e.snapshot ?? null,
    lastRunId: e.lastRunId ?? null,
    committedAt: e.committedAt ?? '',
    position: e.position ?? 0,
  };
  return { head, ...(legacy && legacy.length > 0 ? { legacy: legacy.map(entry) } : {}), etag: stored.etag };
}

/**
 * History rows up to the head. Rows above it are left from before a rewind and are not
 * history; the head's own row may be missing (a crash after the head was written), so the
 * head stands in for it. A checkpoint written before history rows existed carries its list.
 */
async function readHistory(tables: TableStore, head: Head, legacy: HistoryEntry[] | undefined): Promise<HistoryEntry[]> {
  if (head.lastRunId === null) return [];
  if (head.position === 0) return legacy ? legacy.map(entry) : [{ runId: head.lastRunId, watermark: head.watermark, snapshot: head.snapshot }];
  // Rows below the head only: the head itself stands for its own position (its row may be
  // missing after a crash, or be a leftover of a rewound run that a crash kept).
  const rows = (await tables.list<HistoryRow>(TABLES.checkpoints, head.pipeline))
    .filter((r) => r.rowKey.startsWith(HISTORY_ROW) && r.position < head.position)
    .sort((a, b) => a.position - b.position);
  return [...rows.map(entry), { runId: head.lastRunId, watermark: head.watermark, snapshot: head.snapshot }].slice(-HISTORY_LIMIT);
}

const entry = (h: HistoryEntry): HistoryEntry => ({ runId: h.runId, watermark: h.watermark ?? null, snapshot: h.snapshot ?? null });

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
  const { head: checkpoint, legacy, etag } = await readHead(tables, args.pipeline);
  if (checkpoint.lastRunId === args.runId) return 'already-committed';
  if (checkpoint.lastRunId !== args.baseRunId) {
    throw new TerminalError(
      `checkpoint of ${args.pipeline} moved from ${args.baseRunId ?? 'nothing'} to ${checkpoint.lastRunId} while run ${args.runId} was in flight; start a new run`,
    );
  }
  // A checkpoint from before history rows: its list becomes rows first (idempotent upserts).
  let position = checkpoint.position;
  if (position === 0 && legacy) {
    for (const [i, h] of legacy.entries()) await writeHistoryRow(tables, args.pipeline, i + 1, h);
    position = legacy.length;
  }
  const next: Head = {
    partitionKey: args.pipeline,
    rowKey: ROW,
    pipeline: args.pipeline,
    watermark: args.watermark,
    snapshot: args.snapshot,
    lastRunId: args.runId,
    committedAt: args.now.toISOString(),
    position: position + 1,
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
  // After the head: a row written first could overwrite the row of a commit that won the race.
  await writeHistoryRow(tables, args.pipeline, next.position, { runId: args.runId, watermark: args.watermark, snapshot: args.snapshot });
  if (next.position > HISTORY_LIMIT) await deleteHistoryRow(tables, args.pipeline, next.position - HISTORY_LIMIT);
  return 'committed';
}

async function writeHistoryRow(tables: TableStore, pipeline: string, position: number, h: HistoryEntry): Promise<void> {
  const row: HistoryRow = { partitionKey: pipeline, rowKey: historyKey(position), position, ...entry(h) };
  await tables.upsert(TABLES.checkpoints, row);
}

async function deleteHistoryRow(tables: TableStore, pipeline: string, position: number): Promise<void> {
  await tables.delete(TABLES.checkpoints, pipeline, historyKey(position));
}

/** Rewinds to the state after `toRunId` (null = never loaded). Used by rollback. */
export async function rewindCheckpoint(tables: TableStore, pipeline: string, toRunId: string | null, now: Date): Promise<Checkpoint> {
  const { checkpoint, etag } = await readCheckpoint(tables, pipeline);
  const idx = toRunId === null ? -1 : checkpoint.history.findIndex((h) => h.runId === toRunId);
  if (toRunId !== null && idx < 0) throw new TerminalError(`run ${toRunId} is not in the committed history of ${pipeline}`);
  const kept = checkpoint.history.slice(0, idx + 1);
  const last = kept[kept.length - 1];
  const dropped = checkpoint.history.length - kept.length;
  const legacy = checkpoint.position === 0 && checkpoint.history.length > 0;
  const position = legacy ? kept.length : checkpoint.position - dropped;
  if (legacy) for (const [i, h] of kept.entries()) await writeHistoryRow(tables, pipeline, i + 1, h);
  const next: Head = {
    partitionKey: pipeline,
    rowKey: ROW,
    pipeline,
    watermark: last?.watermark ?? null,
    snapshot: last?.snapshot ?? null,
    lastRunId: last?.runId ?? null,
    committedAt: now.toISOString(),
    position: last ? position : 0,
  };
  if (etag) await tables.replace(TABLES.checkpoints, next, etag);
  else await tables.insert(TABLES.checkpoints, next);
  // Rows above the new head are no longer history (readHistory ignores them); removed so the
  // next commits do not find them.
  for (let pos = next.position + 1; pos <= checkpoint.position; pos++) await deleteHistoryRow(tables, pipeline, pos);
  return { ...next, history: kept };
}
