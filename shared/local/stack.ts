import { join } from 'node:path';
import { loadProject, type ResolvedProject } from '../config/load.js';
import { readProjectSettings } from '../config/settings.js';
import { createContext, ensureStorage, type EngineContext, type SourceFactory, type WarehouseFactory } from '../engine/context.js';
import { defaultSourceFor, defaultWarehouseFor } from '../engine/factories.js';
import { startRun, type StartRunRequest } from '../engine/start-run.js';
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
}

/** One whole run through the real queues and containers: start, then drive until it ends. */
export async function runOnce(stack: LocalStack, req: Omit<StartRunRequest, 'trigger'> & { trigger?: StartRunRequest['trigger'] }, timeoutMs?: number): Promise<RunSummary> {
  const run = await startRun(stack.ctx, { trigger: 'cli', ...req });
  await stack.host.runUntil(async () => isTerminalStatus((await getRun(stack.ctx.tables, run.pipeline, run.runId)).status), timeoutMs);
  return summarize(stack.ctx, run.pipeline, run.runId);
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
