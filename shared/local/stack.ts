import { join } from 'node:path';
import { loadProject, type ResolvedProject } from '../config/load.js';
import { readProjectSettings } from '../config/settings.js';
import { createContext, ensureStorage, type EngineContext, type SourceFactory, type WarehouseFactory } from '../engine/context.js';
import { defaultSourceFor, defaultWarehouseFor } from '../engine/factories.js';
import { completeCommittedRun, failRun, startRun, type StartRunRequest } from '../engine/start-run.js';
import { RunResumedError, orphanText, takeOverOrphan, type OrphanOutcome } from '../engine/resume.js';
import { readLease } from '../state/leases.js';
import { isLocalOwnerGone, thisProcessOwner } from '../state/lease-owner.js';
import { getRun, isTerminalStatus, type RunRecord } from '../state/runs.js';
import { readValidations, type ValidationResult } from '../state/validations.js';
import { connectionStringStorage, createStorageClients, resolveStorageConnection, type StorageConnection } from '../storage/clients.js';
import type { Logger } from '../telemetry/logger.js';
import { ensureAzurite, type AzuriteHandle } from './azurite.js';
import { LocalHost, type LocalHostOptions } from './host.js';
import { shownCounts, validationView, type ShownCounts } from '../state/run-view.js';

export interface LocalStack {
  project: ResolvedProject;
  ctx: EngineContext;
  host: LocalHost;
  azurite?: AzuriteHandle;
  close(): Promise<void>;
}

export interface OpenStackOptions {
  projectDir: string;
  /** A storage connection string; omitted = the project's settings (a connection string or the identity-based `<setting>__…`), or Azurite started here. */
  connectionString?: string;
  env?: NodeJS.ProcessEnv;
  log?: Logger;
  now?: () => Date;
  sourceFor?: SourceFactory;
  warehouseFor?: WarehouseFactory;
  host?: Omit<LocalHostOptions, 'queueService'>;
  ports?: Parameters<typeof createContext>[0]['ports'];
}

/** Whether identity-based storage settings (`<setting>__…`) are present. */
function hasIdentitySettings(setting: string, env: NodeJS.ProcessEnv): boolean {
  return Object.keys(env).some((k) => k.startsWith(`${setting}__`) && !!env[k]);
}

/** The local stack of docs/design.md §13: the project, storage (Azurite unless told otherwise), the host. */
export async function openLocalStack(o: OpenStackOptions): Promise<LocalStack> {
  // One broken pipeline file must not stop the others: it is set aside and named by what needs it.
  const project = loadProject(o.projectDir, { broken: 'collect' });
  const env = readProjectSettings(project.dir, o.env ?? process.env).env;
  const cs = o.connectionString ?? env[project.config.storage];
  const setting = project.config.storage;
  let azurite: AzuriteHandle | undefined;
  let connection: StorageConnection;
  if (cs && !/^\s*UseDevelopmentStorage=true/i.test(cs)) connection = connectionStringStorage(setting, cs);
  else if (!cs && hasIdentitySettings(setting, env)) connection = resolveStorageConnection(setting, env);
  else {
    azurite = await ensureAzurite(project.dir);
    connection = connectionStringStorage(setting, azurite.connectionString);
  }
  const storage = createStorageClients(connection, env);
  const ctx = createContext({
    project,
    env,
    storage,
    workDir: env.TIDEMARK_WORK_DIR ?? join(project.dir, '.tidemark', 'work'),
    ...(o.log ? { log: o.log } : {}),
    ...(o.now ? { now: o.now } : {}),
    sourceFor: o.sourceFor ?? defaultSourceFor,
    warehouseFor: o.warehouseFor ?? defaultWarehouseFor,
    ...(o.ports ? { ports: o.ports } : {}),
  });
  await ensureStorage(ctx);
  const host = new LocalHost(ctx, { ...o.host, queueService: storage.queue });
  // Work this process enqueues or publishes goes to a free worker at once, not at the next poll.
  ctx.queues = host.watchQueues(ctx.queues);
  ctx.blobs = host.watchBlobs(ctx.blobs);
  return {
    project,
    ctx,
    host,
    ...(azurite ? { azurite } : {}),
    close: async () => {
      host.stop();
      await azurite?.stop();
    },
  };
}

export interface RunSummary {
  pipeline: string;
  runId: string;
  status: RunRecord['status'];
  counts: ShownCounts;
  validations: ValidationResult[];
  error?: string;
  timings: RunRecord['timings'];
  /** The pipeline's orphaned run (its process had died) that this command resumed and drove to its end first. */
  resumed?: ResumedSummary;
}

export type ResumedSummary = Omit<RunSummary, 'resumed' | 'timings'> & {
  stage: string;
  from: string;
  /** The resumed run is the run asked for: resumed at its extract, it read the source after this command began, in the mode asked. */
  covers: boolean;
};

/**
 * One whole run through the real queues and containers: start, then drive until it ends. When
 * the start finds the pipeline's run orphaned (its process died) and resumes it, that run is
 * driven to its end here first. Then this run starts as asked, unless the resumed run already
 * is that run: resumed at its extract (so it read the source after this command began), in the
 * mode asked, and succeeded. A run resumed at a later stage read the source before the command
 * began, so the command's own run follows to read what changed since.
 */
export async function runOnce(
  stack: LocalStack,
  req: Omit<StartRunRequest, 'trigger'> & { trigger?: StartRunRequest['trigger'] },
  timeoutMs?: number,
  onResumed?: (text: string) => void,
): Promise<RunSummary> {
  const untilEnded = (pipeline: string, runId: string) => stack.host.runUntil(async () => isTerminalStatus((await getRun(stack.ctx.tables, pipeline, runId)).status), timeoutMs);
  let resumed: ResumedSummary | undefined;
  let run: RunRecord;
  try {
    run = await startRun(stack.ctx, { trigger: 'cli', ...req });
  } catch (err) {
    if (!(err instanceof RunResumedError)) throw err;
    const { runId, stage, from } = err.outcome;
    onResumed?.(orphanText(req.pipeline, err.outcome));
    await untilEnded(req.pipeline, runId);
    const done = await summarize(stack.ctx, req.pipeline, runId);
    const dead = await getRun(stack.ctx.tables, req.pipeline, runId);
    const covers = stage === 'extract' && done.status === 'succeeded' && dead.mode === (req.mode ?? 'incremental') && !req.backfill && !req.reconcile;
    const { timings: _t, resumed: _r, ...shown } = done;
    resumed = { ...shown, stage, from, covers };
    if (covers) return { ...done, resumed };
    run = await startRun(stack.ctx, { trigger: 'cli', ...req });
  }
  await untilEnded(run.pipeline, run.runId);
  return { ...(await summarize(stack.ctx, run.pipeline, run.runId)), ...(resumed ? { resumed } : {}) };
}

/**
 * The local host's start (`tidemark dev`): every pipeline whose in-flight run lost its process
 * (this host, pid gone) is taken over now, not at its next timer tick: resumed, completed or
 * failed (shared/engine/resume.ts). Returns one line per run handled.
 */
export async function resumeOrphans(ctx: EngineContext): Promise<string[]> {
  const lines: string[] = [];
  for (const p of ctx.project.pipelines.values()) {
    const lease = await readLease(ctx.tables, p.name);
    if (!lease || !isLocalOwnerGone(lease)) continue;
    let out: OrphanOutcome;
    try {
      out = await takeOverOrphan(ctx, p, lease, { owner: ctx.owner ?? thisProcessOwner(), enders: { completeCommittedRun, failRun } });
    } catch (err) {
      lines.push(`${p.name}: orphaned run ${lease.runId} not taken over: ${(err as Error).message}`);
      continue;
    }
    if (out.kind !== 'not-a-run') lines.push(orphanText(p.name, out));
  }
  return lines;
}

export async function summarize(ctx: EngineContext, pipeline: string, runId: string): Promise<RunSummary> {
  const r = await getRun(ctx.tables, pipeline, runId);
  const v = await readValidations(ctx.tables, pipeline, runId);
  return {
    pipeline,
    runId,
    status: r.status,
    counts: shownCounts(r.counts),
    validations: v.map(validationView),
    ...(r.error ? { error: r.error } : {}),
    timings: r.timings,
  };
}
