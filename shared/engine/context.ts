import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { stageClaimTtlMs } from './stage-timeout.js';
import { join } from 'node:path';
import type { ResolvedProject } from '../config/load.js';
import type { ConnectionConfig, PipelineConfig, WarehouseConfig } from '../config/schema.js';
import { silentLogger, type Logger } from '../telemetry/logger.js';
import { noopTelemetry, type Telemetry } from '../telemetry/telemetry.js';
import type { DuckSettings } from '../duckdb/session.js';
import type { Source } from '../extract/source.js';
import type { LeaseOwner } from '../state/leases.js';
import type { Warehouse } from '../merge/warehouse.js';
import { AzureBlobStore, AzureQueuePort } from '../storage/azure-storage.js';
import { AzureTableStore } from '../state/azure-tables.js';
import { connectionStringStorage, createStorageClients, resolveStorageConnection, type StorageClients } from '../storage/clients.js';
import { CONTAINERS, QUEUES, POISON_SUFFIX, TABLES, layout } from '../storage/layout.js';
import type { BlobStore, QueuePort, TableStore } from '../storage/ports.js';

export type SourceFactory = (ctx: EngineContext, conn: ConnectionConfig, pipeline: PipelineConfig) => Source;
export type WarehouseFactory = (ctx: EngineContext, wh: WarehouseConfig, pipeline: PipelineConfig) => Warehouse;

/** Everything a stage needs, passed in: no stage reaches for globals, so tests swap any port. */
export interface EngineContext {
  project: ResolvedProject;
  blobs: BlobStore;
  queues: QueuePort;
  tables: TableStore;
  /** Local scratch folder for Parquet parts and DuckDB spill files. */
  workDir: string;
  duck: DuckSettings;
  now: () => Date;
  log: Logger;
  env: NodeJS.ProcessEnv;
  /** How long a run may hold its pipeline's lease before it counts as stuck. */
  leaseTtlMs: number;
  /** How long one delivery of a stage holds its claim before a redelivery may take over (stage-claims.ts; derived from functionTimeout, stage-timeout.ts). */
  stageClaimTtlMs?: number;
  sourceFor: SourceFactory;
  warehouseFor: WarehouseFactory;
  /** Events and metrics (App Insights); optional so contexts built before it existed still compile. */
  telemetry?: Telemetry;
  /** Who this process is when it takes a lease (runs, rollbacks, restores); default the OS process (state/lease-owner.ts). */
  owner?: LeaseOwner;
}

export interface ContextOptions {
  project: ResolvedProject;
  env?: NodeJS.ProcessEnv;
  /** A storage connection string; omitted = the project's storage settings (connection string or identity). */
  connectionString?: string;
  /** Storage clients built already (the local stack shares them with its host). */
  storage?: StorageClients;
  workDir?: string;
  log?: Logger;
  now?: () => Date;
  sourceFor: SourceFactory;
  warehouseFor: WarehouseFactory;
  ports?: Partial<Pick<EngineContext, 'blobs' | 'queues' | 'tables'>>;
  telemetry?: Telemetry;
}

export function createContext(o: ContextOptions): EngineContext {
  const env = o.env ?? process.env;
  const setting = o.project.config.storage;
  const storage =
    o.storage ??
    createStorageClients(o.connectionString ? connectionStringStorage(setting, o.connectionString) : resolveStorageConnection(setting, env), env);
  const workDir = o.workDir ?? env.TIDEMARK_WORK_DIR ?? join(tmpdir(), 'tidemark');
  return {
    project: o.project,
    blobs: o.ports?.blobs ?? new AzureBlobStore(storage.blob),
    queues: o.ports?.queues ?? new AzureQueuePort(storage.queue),
    tables: o.ports?.tables ?? new AzureTableStore(storage),
    workDir,
    duck: {
      memoryLimit: o.project.config.duckdb.memoryLimit,
      threads: o.project.config.duckdb.threads,
      tempDir: join(workDir, 'duckdb-spill'),
    },
    now: o.now ?? (() => new Date()),
    log: o.log ?? silentLogger,
    env,
    leaseTtlMs: Number(env.TIDEMARK_LEASE_MINUTES ?? 60) * 60_000,
    stageClaimTtlMs: stageClaimTtlMs(env),
    sourceFor: o.sourceFor,
    warehouseFor: o.warehouseFor,
    telemetry: o.telemetry ?? noopTelemetry,
  };
}

/** Every container, queue and table tidemark uses, sorted: what ensureStorage creates and its marker names. */
function storageNames(): { containers: string[]; queues: string[]; tables: string[] } {
  return {
    containers: Object.values(CONTAINERS).sort(),
    queues: Object.values(QUEUES).flatMap((q) => [q, `${q}${POISON_SUFFIX}`]).sort(),
    tables: Object.values(TABLES).sort(),
  };
}

/**
 * Creates every container, queue and table tidemark uses; idempotent. The creates are 17 round
 * trips at every process start (each CLI command, each Function App cold start), so the last step
 * writes a marker blob named by the set of names, and a later start that finds it does one HEAD
 * instead (issue #19). A storage account that lost its data loses the marker with it; a release
 * that adds a container, queue or table has a new marker name and creates them once.
 */
export async function ensureStorage(ctx: EngineContext): Promise<void> {
  const names = storageNames();
  const marker = layout.storageReady(createHash('sha256').update(JSON.stringify(names)).digest('hex').slice(0, 12));
  if (await ctx.blobs.exists(CONTAINERS.state, marker)) return;
  await Promise.all([ctx.blobs.ensureContainers(names.containers), ctx.queues.ensureQueues(names.queues), ctx.tables.ensureTables(names.tables)]);
  await ctx.blobs.putText(CONTAINERS.state, marker, `${JSON.stringify(names)}\n`);
}

/** Resolves a path from config against the project folder. */
export function projectPath(ctx: Pick<EngineContext, 'project'>, p: string): string {
  return p.startsWith('/') ? p : join(ctx.project.dir, p);
}
