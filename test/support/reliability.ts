import { copyFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { projectPath } from '../../shared/engine/context.js';
import { defaultSourceFor, defaultWarehouseFor } from '../../shared/engine/factories.js';
import { startRun } from '../../shared/engine/start-run.js';
import { DuckDbWarehouse, type StatementExecutor } from '../../shared/merge/duckdb/warehouse.js';
import type { AzuriteHandle } from '../../shared/local/azurite.js';
import type { LocalHostOptions } from '../../shared/local/host.js';
import { openLocalStack, summarize, type LocalStack, type RunSummary } from '../../shared/local/stack.js';
import { readCheckpoint } from '../../shared/state/checkpoints.js';
import { getRun, isTerminalStatus, listRuns } from '../../shared/state/runs.js';
import { AzureBlobStore, AzureQueuePort } from '../../shared/storage/azure-storage.js';
import { AzureTableStore } from '../../shared/state/azure-tables.js';
import { connectionStringStorage, createStorageClients } from '../../shared/storage/clients.js';
import type { BlobStore, QueuePort, TableStore } from '../../shared/storage/ports.js';
import type { WarehouseFactory } from '../../shared/engine/context.js';
import { expandConnectionString } from '../../shared/storage/connection.js';
import { createLogger, type LogLevel } from '../../shared/telemetry/logger.js';
import { FaultPlan, faultyBlobs, faultyExecutor, faultyQueues, faultySourceFor, faultyTables, faultyWarehouseFor } from './faults.js';
import { duckExec, duckQuery, makeProject } from './project.js';

/** A full-compare pipeline with tiny retry delays, so the suite spends its time on work, not waiting. */
export const ACCOUNTS = `name: accounts
source:
  connection: SRC
  table: crm.accounts
  changeDetection: { mode: full }
  partRows: 1000
key: [id]
transform:
  sql: select id, trim(name) as name, city, amount from extract
target:
  warehouse: WH
  table: dw.dim_account
  deletes: retire
validation:
  rowCount: exact
  checksumColumns: [id, city]
retry: { attempts: 3, backoff: exponential, initialDelay: 20ms }
`;

export const T0 = Date.parse('2026-01-01T00:00:00Z');
export const HOUR = 3_600_000;

/** 2500 rows, so a full extract writes three Parquet parts (partRows 1000). */
export async function seedAccounts(dir: string): Promise<void> {
  await duckExec(
    join(dir, 'source.duckdb'),
    'create schema crm',
    'create table crm.accounts (id integer, name varchar, city varchar, amount decimal(12,2))',
    `insert into crm.accounts select i, ' n' || i || ' ', 'c' || (i % 7), (i * 1.25)::decimal(12,2) from range(1, 2501) t(i)`,
  );
}

/** The second day: updates, a touched row, deletes and inserts. */
export async function changeAccounts(dir: string): Promise<void> {
  await duckExec(
    join(dir, 'source.duckdb'),
    `update crm.accounts set city = 'moved' where id % 10 = 0`,
    `update crm.accounts set name = name where id = 3`,
    `delete from crm.accounts where id % 97 = 0`,
    `insert into crm.accounts select i, 'new' || i, 'c1', 1.00 from range(2501, 2551) t(i)`,
  );
}

export interface FaultStackOptions {
  az: AzuriteHandle;
  dir: string;
  plan?: FaultPlan;
  clock: { t: number };
  env?: NodeJS.ProcessEnv;
  host?: Omit<LocalHostOptions, 'queueService'>;
  /** Replaces the queue port (e.g. duplicatingQueues); the fault wrapper goes around it. */
  queues?: (inner: QueuePort) => QueuePort;
  logLevel?: LogLevel;
  logs?: Array<{ level: LogLevel; message: string; props: Record<string, unknown> }>;
}

export function duckWarehouseWith(execute: StatementExecutor): WarehouseFactory {
  return (ctx, wh, pipeline) => (wh.kind === 'duckdb' ? new DuckDbWarehouse(projectPath(ctx, wh.path), ctx.duck, execute) : defaultWarehouseFor(ctx, wh, pipeline));
}

/** The local stack with every port wrapped by the fault plan. */
export async function openFaultyStack(o: FaultStackOptions): Promise<LocalStack & { plan: FaultPlan }> {
  const plan = o.plan ?? new FaultPlan();
  const cs = expandConnectionString(o.az.connectionString);
  const storage = createStorageClients(connectionStringStorage('AzureWebJobsStorage', cs), {});
  let queues: QueuePort = new AzureQueuePort(storage.queue);
  if (o.queues) queues = o.queues(queues);
  const blobs: BlobStore = faultyBlobs(new AzureBlobStore(storage.blob), plan);
  const tables: TableStore = faultyTables(new AzureTableStore(storage), plan);
  const stack = await openLocalStack({
    projectDir: o.dir,
    connectionString: cs,
    env: { ...process.env, TIDEMARK_WORK_DIR: join(o.dir, 'work'), ...o.env },
    now: () => new Date(o.clock.t),
    sourceFor: faultySourceFor(defaultSourceFor, plan),
    warehouseFor: faultyWarehouseFor(duckWarehouseWith(faultyExecutor(plan)), plan),
    host: { maxDequeueCount: 5, retryDelaySeconds: 0, idlePollMs: 20, ...o.host },
    ports: { blobs, queues: faultyQueues(queues, plan), tables },
    ...(o.logs ? { log: createLogger((level, message, props) => o.logs!.push({ level, message, props })) } : {}),
  });
  return Object.assign(stack, { plan });
}

/** Starts a run and drives the host until the run ends; host errors of one pass are tolerated (outages). */
export async function runThroughHost(stack: LocalStack, pipeline: string, opts: { tolerateHostErrors?: boolean; timeoutMs?: number } = {}): Promise<RunSummary> {
  const run = await startRun(stack.ctx, { pipeline, trigger: 'cli' });
  await driveUntilEnded(stack, pipeline, run.runId, opts);
  return summarize(stack.ctx, pipeline, run.runId);
}

export async function driveUntilEnded(
  stack: LocalStack,
  pipeline: string,
  runId: string,
  opts: { tolerateHostErrors?: boolean; timeoutMs?: number } = {},
): Promise<void> {
  const deadline = Date.now() + (opts.timeoutMs ?? 90_000);
  for (;;) {
    try {
      if (isTerminalStatus((await getRun(stack.ctx.tables, pipeline, runId)).status)) return;
      if ((await stack.host.pollOnce()) === 0) await sleep(20);
    } catch (err) {
      if (!opts.tolerateHostErrors) throw err;
      await sleep(200);
    }
    if (Date.now() > deadline) throw new Error(`run ${runId} did not end within ${opts.timeoutMs ?? 90_000} ms`);
  }
}

/** Polls until nothing is left to do (e.g. duplicate messages after a run ended). */
export async function drain(stack: LocalStack, idlePasses = 3): Promise<void> {
  let idle = 0;
  while (idle < idlePasses) {
    idle = (await stack.host.pollOnce()) === 0 ? idle + 1 : 0;
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface PipelineState {
  dimension: Record<string, unknown>[];
  ledger: Record<string, unknown>[];
  checkpoint: Record<string, unknown>;
  runs: Record<string, unknown>[];
}

/**
 * Whole tables, with run ids replaced by their ordinal (`run#1`, …): run ids carry a random
 * suffix, so two executions of the same inputs agree only after this. Wall-clock-only fields
 * (stage timings, the ledger's committed_at) are left out; everything else is compared.
 */
export async function pipelineState(stack: LocalStack, dir: string, pipeline: string, table = 'dw.dim_account'): Promise<PipelineState> {
  const runs = (await listRuns(stack.ctx.tables, pipeline, 1000)).reverse();
  const aliases = new Map(runs.map((r, i) => [r.runId, `run#${i + 1}`]));
  const norm = <T>(v: T): T => {
    let text = JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x));
    for (const [id, alias] of aliases) text = text.split(id).join(alias);
    return JSON.parse(text) as T;
  };
  const wh = join(dir, 'warehouse.duckdb');
  const dimension = existsSync(wh)
    ? await duckQuery(wh, `select * exclude (_tm_valid_from, _tm_valid_to), strftime(_tm_valid_from, '%Y-%m-%dT%H:%M:%S') vf, strftime(_tm_valid_to, '%Y-%m-%dT%H:%M:%S') vt from ${table} order by all`).catch(() => [])
    : [];
  const ledger = existsSync(wh)
    ? await duckQuery(wh, `select * exclude (committed_at, boundary), strftime(boundary, '%Y-%m-%dT%H:%M:%S') boundary from dw._tm_ledger order by run_id`).catch(() => [])
    : [];
  const { checkpoint } = await readCheckpoint(stack.ctx.tables, pipeline);
  const { etag: _e, timestamp: _ts, 'odata.metadata': _m, ...cp } = checkpoint as Record<string, unknown>;
  return norm({
    dimension,
    ledger,
    checkpoint: cp,
    runs: runs.map((r) => {
      const { timings: _t, etag: _etag, timestamp: _time, 'odata.metadata': _meta, ...rest } = r as unknown as Record<string, unknown>;
      return rest;
    }),
  });
}

/** A project folder with the accounts pipeline and its seeded source. */
export async function accountsProject(pipelineYaml = ACCOUNTS): Promise<string> {
  const dir = makeProject({ pipelines: { accounts: pipelineYaml } });
  await seedAccounts(dir);
  return dir;
}

export function copySource(from: string, to: string): void {
  copyFileSync(join(from, 'source.duckdb'), join(to, 'source.duckdb'));
}

export async function readRun(stack: LocalStack, pipeline: string, runId: string) {
  return getRun(stack.ctx.tables, pipeline, runId);
}
