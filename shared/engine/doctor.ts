import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { BlobServiceClient } from '@azure/storage-blob';
import { QueueServiceClient } from '@azure/storage-queue';
import { TableServiceClient } from '@azure/data-tables';
import type { ResolvedProject } from '../config/load.js';
import type { ConnectionConfig, WarehouseConfig } from '../config/schema.js';
import type { SettingOrigin } from '../config/settings.js';
import { errorMessage } from '../errors.js';
import { sourceRelation } from '../extract/duckdb-source.js';
import { CONTAINERS, POISON_SUFFIX, QUEUES, TABLES } from '../storage/layout.js';
import { expandConnectionString, isLocalConnection } from '../storage/connection.js';
import { CONNECTION_STRING_SETTING } from '../telemetry/otel.js';
import { DuckSession } from '../transform/duckdb-session.js';
import { projectPath } from './context.js';

export type CheckStatus = 'ok' | 'warn' | 'fail';

export interface DoctorCheck {
  area: 'settings' | 'pipelines' | 'storage' | 'source' | 'warehouse' | 'telemetry';
  name: string;
  status: CheckStatus;
  detail: string;
}

/** Connectivity probes per driver; injectable so the SQL Server probe can be replaced in tests. */
export interface DoctorProbes {
  postgres(connectionString: string, timeoutMs: number): Promise<void>;
  mssql(connectionString: string, timeoutMs: number): Promise<void>;
}

export const defaultProbes: DoctorProbes = {
  async postgres(cs, timeoutMs) {
    const { default: pg } = await import('pg');
    const client = new pg.Client({ connectionString: cs, connectionTimeoutMillis: timeoutMs, query_timeout: timeoutMs });
    try {
      await client.connect();
      await client.query('select 1');
    } finally {
      await client.end().catch(() => undefined);
    }
  },
  async mssql(cs, timeoutMs) {
    const { default: sql } = await import('mssql');
    // mssql reads timeouts from the connection string too; the user's own value wins if it comes first.
    const pool = new sql.ConnectionPool(`${cs.replace(/;\s*$/, '')};Connect Timeout=${Math.ceil(timeoutMs / 1000)}`);
    try {
      await pool.connect();
      await pool.request().query('select 1');
    } finally {
      await pool.close().catch(() => undefined);
    }
  },
};

export interface DoctorOptions {
  env: NodeJS.ProcessEnv;
  /** Where each setting came from (environment or local.settings.json), shown in its check. */
  originOf?: (setting: string) => SettingOrigin | undefined;
  probes?: DoctorProbes;
  timeoutMs?: number;
}

/** Every setting the project names, with who needs it. */
export function namedSettings(project: ResolvedProject): Array<{ setting: string; usedBy: string; required: boolean }> {
  const out: Array<{ setting: string; usedBy: string; required: boolean }> = [];
  for (const [name, c] of Object.entries(project.config.connections)) if ('setting' in c) out.push({ setting: c.setting, usedBy: `connections.${name}`, required: true });
  for (const [name, w] of Object.entries(project.config.warehouses)) {
    if ('setting' in w) out.push({ setting: w.setting, usedBy: `warehouses.${name}`, required: true });
    if (w.kind === 'synapse' && w.stagingUrlSetting) out.push({ setting: w.stagingUrlSetting, usedBy: `warehouses.${name}.stagingUrlSetting`, required: true });
  }
  for (const p of project.pipelines.values()) {
    for (const h of p.notifications.webhooks) out.push({ setting: h.setting, usedBy: `pipelines/${p.name}.yaml notifications`, required: true });
  }
  return out;
}

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`no answer from ${what} within ${ms / 1000} s`)), ms).unref())]);
}

/** The account endpoint of a connection string, without its key, for messages. */
function endpointOf(cs: string): string {
  return /BlobEndpoint=([^;]+)/i.exec(cs)?.[1] ?? `account ${/AccountName=([^;]+)/i.exec(cs)?.[1] ?? '?'}`;
}

async function checkStorage(project: ResolvedProject, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<DoctorCheck[]> {
  const setting = project.config.storage;
  const raw = env[setting];
  if (!raw) {
    return [
      {
        area: 'storage',
        name: setting,
        status: 'warn',
        detail: `${setting} is not set: the CLI starts Azurite locally; in Azure set it (infra/main.bicep does)`,
      },
    ];
  }
  const cs = expandConnectionString(raw);
  const where = endpointOf(cs);
  const out: DoctorCheck[] = [];
  try {
    const blobs = BlobServiceClient.fromConnectionString(cs);
    const queues = QueueServiceClient.fromConnectionString(cs);
    const tables = TableServiceClient.fromConnectionString(cs, { allowInsecureConnection: /^DefaultEndpointsProtocol=http;|TableEndpoint=http:/i.test(cs) });
    const have = { containers: new Set<string>(), queues: new Set<string>(), tables: new Set<string>() };
    await within(
      (async () => {
        for await (const c of blobs.listContainers()) have.containers.add(c.name);
        for await (const q of queues.listQueues()) have.queues.add(q.name);
        for await (const t of tables.listTables()) if (t.name) have.tables.add(t.name);
      })(),
      timeoutMs,
      where,
    );
    out.push({ area: 'storage', name: setting, status: 'ok', detail: `reached ${where}` });
    const missing = [
      ...Object.values(CONTAINERS).filter((c) => !have.containers.has(c)).map((c) => `container ${c}`),
      ...Object.values(QUEUES).flatMap((q) => [q, `${q}${POISON_SUFFIX}`]).filter((q) => !have.queues.has(q)).map((q) => `queue ${q}`),
      ...Object.values(TABLES).filter((t) => !have.tables.has(t)).map((t) => `table ${t}`),
    ];
    if (missing.length) {
      out.push({
        area: 'storage',
        name: 'layout',
        status: 'warn',
        detail: `missing ${missing.join(', ')}: created on the first start of the app or CLI (infra/main.bicep creates them in Azure)`,
      });
    }
  } catch (err) {
    const local = isLocalConnection(cs);
    out.push({
      area: 'storage',
      name: setting,
      status: local ? 'warn' : 'fail',
      detail: local
        ? `Azurite is not reachable at ${where} (${errorMessage(err)}); tidemark run/dev start it when nothing listens`
        : `cannot reach ${where}: ${errorMessage(err)}. Check the connection string in ${setting}, the storage firewall, and that the account exists`,
    });
  }
  return out;
}

async function checkDuckSource(project: ResolvedProject, name: string, c: Extract<ConnectionConfig, { kind: 'duckdb' }>): Promise<DoctorCheck[]> {
  const file = projectPath({ project }, c.path);
  if (!existsSync(file)) return [{ area: 'source', name, status: 'fail', detail: `DuckDB file ${c.path} does not exist (relative to the project folder)` }];
  let s: DuckSession | undefined;
  const out: DoctorCheck[] = [];
  try {
    s = await DuckSession.open(file, { memoryLimit: '256MB', threads: 1, tempDir: join(tmpdir(), 'tidemark-doctor') });
    for (const p of project.pipelines.values()) {
      if (p.source.connection !== name) continue;
      try {
        await s.run(`SELECT * FROM ${sourceRelation(p)} LIMIT 0`);
        out.push({ area: 'source', name: `${name} → ${p.name}`, status: 'ok', detail: `${p.source.table ?? 'source.query'} is readable` });
      } catch (err) {
        out.push({ area: 'source', name: `${name} → ${p.name}`, status: 'fail', detail: `pipelines/${p.name}.yaml source ${p.source.table ?? 'query'}: ${errorMessage(err).split('\n')[0]}` });
      }
    }
    if (out.length === 0) out.push({ area: 'source', name, status: 'ok', detail: `${c.path} opens (no pipeline reads it)` });
  } catch (err) {
    out.push({ area: 'source', name, status: 'fail', detail: `cannot open ${c.path}: ${errorMessage(err).split('\n')[0]} (another process holding the file locks it)` });
  } finally {
    s?.close();
  }
  return out;
}

async function probe(
  area: 'source' | 'warehouse',
  name: string,
  kind: 'postgres' | 'mssql',
  setting: string,
  env: NodeJS.ProcessEnv,
  probes: DoctorProbes,
  timeoutMs: number,
): Promise<DoctorCheck> {
  const cs = env[setting];
  if (!cs) return { area, name, status: 'fail', detail: `not checked: app setting ${setting} is not set` };
  try {
    await within(probes[kind](cs, timeoutMs), timeoutMs + 1000, `${name} (${kind})`);
    return { area, name, status: 'ok', detail: `${kind} connection through ${setting} answers` };
  } catch (err) {
    return { area, name, status: 'fail', detail: `${kind} connection through ${setting} failed: ${errorMessage(err)}` };
  }
}

function checkDuckWarehouse(project: ResolvedProject, name: string, w: Extract<WarehouseConfig, { kind: 'duckdb' }>): DoctorCheck {
  const file = projectPath({ project }, w.path);
  if (existsSync(file)) return { area: 'warehouse', name, status: 'ok', detail: `${w.path} exists` };
  return {
    area: 'warehouse',
    name,
    status: 'ok',
    detail: existsSync(dirname(file)) ? `${w.path} will be created by the first merge` : `${w.path} and its folder will be created by the first merge`,
  };
}

/**
 * `tidemark doctor`: settings, storage, every source and warehouse, telemetry. Each check says
 * what is wrong and where to fix it; nothing is written.
 */
export async function runDoctor(project: ResolvedProject, o: DoctorOptions): Promise<DoctorCheck[]> {
  const probes = o.probes ?? defaultProbes;
  const timeoutMs = o.timeoutMs ?? 10_000;
  const checks: DoctorCheck[] = [];
  const from = (setting: string) => {
    const origin = o.originOf?.(setting);
    return origin === 'environment' ? ' in the environment' : origin ? ` in ${origin}` : '';
  };
  for (const [name, err] of project.broken ?? []) {
    checks.push({ area: 'pipelines', name, status: 'fail', detail: `${err.message}\n(the other pipelines still load and run)` });
  }
  for (const s of namedSettings(project)) {
    const set = !!o.env[s.setting];
    checks.push({
      area: 'settings',
      name: s.setting,
      status: set ? 'ok' : s.required ? 'fail' : 'warn',
      detail: set ? `set${from(s.setting)} (used by ${s.usedBy})` : `not set; ${s.usedBy} needs it: add it to local.settings.json "Values" or the environment, or the Function App's app settings`,
    });
  }
  checks.push(
    o.env[CONNECTION_STRING_SETTING]
      ? { area: 'telemetry', name: CONNECTION_STRING_SETTING, status: 'ok', detail: 'set: events and metrics go to Application Insights' }
      : { area: 'telemetry', name: CONNECTION_STRING_SETTING, status: 'warn', detail: 'not set: telemetry is off (fine locally; infra/main.bicep sets it in Azure)' },
  );
  const storage = await checkStorage(project, o.env, timeoutMs);
  const origin = from(project.config.storage);
  if (origin && storage[0]) storage[0] = { ...storage[0], detail: `${storage[0].detail} (${project.config.storage} set${origin})` };
  checks.push(...storage);
  for (const [name, c] of Object.entries(project.config.connections)) {
    if (c.kind === 'duckdb') checks.push(...(await checkDuckSource(project, name, c)));
    else checks.push(await probe('source', name, c.kind, c.setting, o.env, probes, timeoutMs));
  }
  for (const [name, w] of Object.entries(project.config.warehouses)) {
    if (w.kind === 'duckdb') checks.push(checkDuckWarehouse(project, name, w));
    else checks.push(await probe('warehouse', name, w.kind === 'synapse' ? 'mssql' : 'postgres', w.setting, o.env, probes, timeoutMs));
  }
  return checks;
}

/** 0 when nothing failed (warnings allowed), 1 when a check failed. Config errors exit 2 before this. */
export function doctorExitCode(checks: readonly DoctorCheck[]): 0 | 1 {
  return checks.some((c) => c.status === 'fail') ? 1 : 0;
}
