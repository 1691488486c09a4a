import { ConflictError, NotFoundError } from '../errors.js';
import { redact } from '../telemetry/redact.js';
import type { Counts } from '../storage/manifest.js';
import { emptyCounts } from '../storage/manifest.js';
import { TABLES } from '../storage/layout.js';
import type { StoredEntity, TableEntity, TableStore } from '../storage/ports.js';
import { forget, recall, remember } from './known-versions.js';

export type RunStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'validation_failed' | 'rolled_back' | 'cancelled';
export type RunStage = 'extract' | 'transform' | 'merge' | 'checkpoint' | 'validate' | 'done';
export type RunMode = 'incremental' | 'full' | 'backfill' | 'reconcile';

/** What a `reconcile` run does beside rebuilding the snapshot (shared/engine/reconcile.ts). */
export interface ReconcileOptions {
  /** Read the source's keys and delete the keys current in the warehouse that it no longer has. */
  deletes: boolean;
  /** Apply the deletes even when the source returned no key at all (every current key goes). */
  allowEmpty: boolean;
}
export type RunTrigger = 'schedule' | 'http' | 'cli' | 'retry';

export const TERMINAL_STATUSES: readonly RunStatus[] = ['succeeded', 'failed', 'validation_failed', 'rolled_back', 'cancelled'];
export const RUN_STATUSES: readonly RunStatus[] = ['queued', 'running', ...TERMINAL_STATUSES];

export function isTerminalStatus(s: RunStatus): boolean {
  return TERMINAL_STATUSES.includes(s);
}

export interface RunRecord extends TableEntity {
  pipeline: string;
  runId: string;
  /** Per-pipeline run order, assigned at start (state/run-sequence.ts); absent on runs started before it existed. */
  seq?: number;
  trigger: RunTrigger;
  mode: RunMode;
  status: RunStatus;
  stage: RunStage;
  /** Valid-from of the versions this run opens (UTC ISO-8601); fixed at start so retries agree. */
  boundary: string;
  createdAt: string;
  updatedAt: string;
  finishedAt?: string;
  counts: Counts;
  /** Milliseconds spent per stage. */
  timings: Partial<Record<RunStage, number>>;
  error?: string;
  backfill?: { from?: string; to?: string };
  /** mode reconcile: what the run does (its report is in the run's changes manifest). */
  reconcile?: ReconcileOptions;
  /** Backfill windows still to run after this one, in order (shared/engine/backfill.ts). */
  backfillRemaining?: Array<{ from: string; to: string }>;
  /** dependsOn: dependencies must have succeeded at or after this time (shared/engine/dependencies.ts). */
  dependsSince?: string;
  /** dependsOn: the run fails if its dependencies have not succeeded by then. */
  dependsDeadline?: string;
  /** dependsOn: the dependencies this run is still waiting for. */
  waitingFor?: string[];
  /** Each time the run was taken over from a process that died and resumed (shared/engine/resume.ts). */
  resumes?: ResumeNote[];
}

/** A run resumed by another process after its own died. */
export interface ResumeNote {
  at: string;
  /** The stage it was resumed at. */
  stage: RunStage;
  /** The process that had died, as a person reads it (`pid 4242 on build-7`). */
  from: string;
  /** The process that took it over. */
  by: string;
}

export function newRunRecord(init: {
  pipeline: string;
  runId: string;
  trigger: RunTrigger;
  mode: RunMode;
  now: Date;
  backfill?: { from?: string; to?: string };
  reconcile?: ReconcileOptions;
}): RunRecord {
  const iso = init.now.toISOString();
  return {
    partitionKey: init.pipeline,
    rowKey: init.runId,
    pipeline: init.pipeline,
    runId: init.runId,
    trigger: init.trigger,
    mode: init.mode,
    status: 'queued',
    stage: 'extract',
    boundary: iso,
    createdAt: iso,
    updatedAt: iso,
    counts: emptyCounts(),
    timings: {},
    ...(init.backfill ? { backfill: init.backfill } : {}),
    ...(init.reconcile ? { reconcile: init.reconcile } : {}),
  };
}

export async function getRun(tables: TableStore, pipeline: string, runId: string): Promise<RunRecord> {
  const r = await readRunVersion(tables, pipeline, runId);
  if (!r) throw new NotFoundError(`run ${runId} of pipeline ${pipeline} not found`);
  return r.entity;
}

/** Always a fresh read (decisions are taken on it); it also tells updateRun the version it saw. */
export async function findRun(tables: TableStore, pipeline: string, runId: string): Promise<RunRecord | undefined> {
  return (await readRunVersion(tables, pipeline, runId))?.entity;
}

async function readRunVersion(tables: TableStore, pipeline: string, runId: string): Promise<StoredEntity<RunRecord> | undefined> {
  const r = await tables.get<RunRecord>(TABLES.runs, pipeline, runId);
  if (r) remember(tables, TABLES.runs, r);
  else forget(tables, TABLES.runs, pipeline, runId);
  return r;
}

/** Inserts a new run record (a second insert of one run id conflicts); its version is remembered for the first update. */
export async function insertRun(tables: TableStore, record: RunRecord): Promise<void> {
  const { etag } = await tables.insert(TABLES.runs, record);
  remember(tables, TABLES.runs, { entity: record, etag });
}

/**
 * Read-modify-write with the entity's ETag; retried when another writer got there first. A
 * change of `status` is refused unless it comes from the run lifecycle (transitionRun in
 * shared/engine/run-lifecycle.ts), which checks it against the allowed transitions; only that
 * (and a test staging a crash state by hand) passes `statusChange`.
 */
export async function updateRun(
  tables: TableStore,
  pipeline: string,
  runId: string,
  mutate: (r: RunRecord) => RunRecord | undefined,
  now: () => Date = () => new Date(),
  opts: { statusChange?: boolean } = {},
): Promise<RunRecord> {
  // The first attempt is made on the version this process last read or wrote (every stage reads
  // the record under its claim, then writes it two or three times), not on a new read: the
  // replace is ETag-guarded, so if anyone wrote the record since, it fails with 412 and the loop
  // reads and decides again, as after a read that went stale before its write. Only a write is
  // ever based on the remembered version; a decision to write nothing is taken on a fresh read.
  let stored: StoredEntity<RunRecord> | undefined = recall<RunRecord>(tables, TABLES.runs, pipeline, runId);
  let remembered = stored !== undefined;
  for (let attempt = 0; ; attempt++) {
    if (!remembered) {
      stored = await readRunVersion(tables, pipeline, runId);
      if (!stored) throw new NotFoundError(`run ${runId} of pipeline ${pipeline} not found`);
    }
    if (!stored) throw new NotFoundError(`run ${runId} of pipeline ${pipeline} not found`);
    const next = mutate(structuredClone(stored.entity));
    const refuse = !next || (next.status !== stored.entity.status && !opts.statusChange);
    if (refuse && remembered) {
      // Not written on a remembered version: read it and decide again.
      remembered = false;
      attempt--;
      continue;
    }
    if (!next) return stored.entity;
    if (next.status !== stored.entity.status && !opts.statusChange) {
      throw new Error(
        `run ${runId} of pipeline ${pipeline}: status ${stored.entity.status} → ${next.status} written outside the run lifecycle; use transitionRun (shared/engine/run-lifecycle.ts)`,
      );
    }
    next.updatedAt = now().toISOString();
    // A run's error is shown by the CLI, the API and the page: never with a secret in it.
    if (next.error) next.error = redact(next.error);
    try {
      const { etag } = await tables.replace(TABLES.runs, next, stored.etag);
      remember(tables, TABLES.runs, { entity: next, etag });
      return next;
    } catch (err) {
      forget(tables, TABLES.runs, pipeline, runId);
      if (err instanceof ConflictError && remembered) {
        // The remembered version was stale: not a lost race, so not counted as one.
        remembered = false;
        attempt--;
        continue;
      }
      remembered = false;
      if (err instanceof ConflictError && attempt < 10) continue;
      throw err;
    }
  }
}

/**
 * Start order of two runs, oldest first. The sequence number (state/run-sequence.ts) where both
 * carry one: run ids only sort by the second they started in, and two runs started within one
 * second sort by their random suffix. Runs from before sequence numbers fall back to the id.
 */
export function compareRunStart(a: Pick<RunRecord, 'runId' | 'seq'>, b: Pick<RunRecord, 'runId' | 'seq'>): number {
  if (typeof a.seq === 'number' && typeof b.seq === 'number' && a.seq !== b.seq) return a.seq - b.seq;
  const ta = runIdSecond(a.runId);
  const tb = runIdSecond(b.runId);
  if (ta !== tb) return ta < tb ? -1 : 1;
  return a.runId < b.runId ? -1 : a.runId > b.runId ? 1 : 0;
}

/** The start second a run id carries (`20261202T003440Z-491a` → `20261202T003440Z`). */
export function runIdSecond(runId: string): string {
  const dash = runId.indexOf('-');
  return dash < 0 ? runId : runId.slice(0, dash);
}

/** Newest first, in start order (compareRunStart). */
export async function listRuns(tables: TableStore, pipeline: string, limit = 50): Promise<RunRecord[]> {
  const all = await tables.list<RunRecord>(TABLES.runs, pipeline);
  return all.sort((a, b) => compareRunStart(b, a)).slice(0, limit);
}
