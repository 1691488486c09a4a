import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type * as Mssql from 'mssql';
import type * as Pg from 'pg';
import type { ResolvedProject } from '../config/load.js';
import type { ConnectionConfig, WarehouseConfig } from '../config/schema.js';
import type { SettingOrigin } from '../config/settings.js';
import { errorMessage } from '../errors.js';
import { lazyModule } from '../lazy-module.js';
import { sourceRelation } from '../extract/duckdb-source.js';
import { SalesforceClient, type SfConnectionConfig } from '../extract/salesforce/client.js';
import { CONTAINERS, POISON_SUFFIX, QUEUES, TABLES } from '../storage/layout.js';
import { createStorageClients, describeStorage, resolveStorageConnection, type StorageClients, type StorageConnection } from '../storage/clients.js';
import { redact, registerSecret } from '../telemetry/redact.js';
import { CONNECTION_STRING_SETTING } from '../telemetry/telemetry.js';
import { DuckSession } from '../duckdb/session.js';
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

// By require, like the sources' own drivers: the CLI bundle runs as a vm.Script, where import() has no loader.
const pgLib = lazyModule<typeof Pg>('pg');
const mssqlLib = lazyModule<typeof Mssql>('mssql');

export const defaultProbes: DoctorProbes = {
  async postgres(cs, timeoutMs) {
    const pg = pgLib();
    const client = new pg.Client({ connectionString: cs, connectionTimeoutMillis: timeoutMs, query_timeout: timeoutMs });
    try {
      await client.connect();
      await client.query('select 1');
    } finally {
      await client.end().catch(() => undefined);
    }
  },
  async mssql(cs, timeoutMs) {
    const sql = mssqlLib();
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
  /** Builds the storage clients; tests pass a fake at the SDK boundary (no Azure RBAC runs here). */
  storageClients?: (c: StorageConnection, env: NodeJS.ProcessEnv) => StorageClients;
}

/** Every setting the project names, with who needs it. */
export function namedSettings(project: ResolvedProject): Array<{ setting: string; usedBy: string; required: boolean }> {
  const out: Array<{ setting: string; usedBy: string; required: boolean }> = [];
  for (const [name, c] of Object.entries(project.config.connections)) if ('setting' in c) out.push({ setting: c.setting, usedBy: `connections.${name}`, required: true });
  /* salesforce connection (issue 18) */
  for (const [name, c] of Object.entries(project.config.connections)) {
    if (c.kind !== 'salesforce') continue;
    for (const [field, setting] of [['instanceUrlSetting', c.instanceUrlSetting], ['clientIdSetting', c.clientIdSetting], ['secretSetting', c.secretSetting], ['privateKeySetting', c.privateKeySetting]] as const) {
      if (setting) out.push({ setting, usedBy: `connections.${name}.${field}`, required: true });
    }
  }
  /* end salesforce connection */
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

/** The data role each service needs, as infra/main.bicep assigns them to the app identity. */
export const STORAGE_ROLES = {
  blob: 'Storage Blob Data Owner',
  queue: 'Storage Queue Data Contributor',
  table: 'Storage Table Data Contributor',
} as const;

/**
 * Where doctor proves the write half of each role with an identity: a queue and a table no
 * trigger or engine code reads (left behind empty), and a blob under state/_doctor/ it deletes.
 */
export const DOCTOR_PROBE = { blobPrefix: '_doctor/', queue: 'tidemark-doctor', table: 'tidemarkdoctor' } as const;

function statusOf(err: unknown): number | undefined {
  return (err as { statusCode?: number })?.statusCode;
}

/** The storage account a service URL belongs to, as a role assignment's scope names it. */
function scopeOf(url: string): string {
  const host = /^https?:\/\/([^/]+)/.exec(url)?.[1] ?? url;
  const account = /^([a-z0-9]+)\.(blob|queue|table)\./.exec(host)?.[1];
  return account ? `storage account ${account}` : url;
}

async function checkStorage(project: ResolvedProject, env: NodeJS.ProcessEnv, timeoutMs: number, clientsFor: DoctorOptions['storageClients']): Promise<DoctorCheck[]> {
  const setting = project.config.storage;
  let connection: StorageConnection;
  try {
    connection = resolveStorageConnection(setting, env);
  } catch (err) {
    const unset = !Object.keys(env).some((k) => (k === setting || k.startsWith(`${setting}__`)) && !!env[k]);
    return [
      unset
        ? { area: 'storage', name: setting, status: 'warn', detail: `${setting} is not set: the CLI starts Azurite locally; in Azure set ${setting}__accountName (infra/main.bicep does)` }
        : { area: 'storage', name: setting, status: 'fail', detail: errorMessage(err) },
    ];
  }
  const where = describeStorage(connection);
  const out: DoctorCheck[] = [];
  if (connection.kind === 'connectionString') {
    out.push(
      connection.local
        ? { area: 'storage', name: 'credential', status: 'ok', detail: `connection string to the local emulator (${setting})` }
        : {
            area: 'storage',
            name: 'credential',
            status: 'warn',
            detail: `${setting} is a connection string with a shared key; Azure recommends identity: set ${setting}__accountName instead and turn shared-key access off (infra/main.bicep does both)`,
          },
    );
  } else {
    out.push({ area: 'storage', name: 'credential', status: 'ok', detail: `identity-based (${setting}__…): ${where}` });
  }
  const clients = (clientsFor ?? createStorageClients)(connection, env);
  const have = { containers: new Set<string>(), queues: new Set<string>(), tables: new Set<string>() };
  const urls = { blob: clients.blob.url, queue: clients.queue.url, table: clients.table.url };
  // One read per service, and with an identity one write of what the app does there (a Reader
  // role would pass the read): what fails with 403 is a missing data role, named with its scope.
  const probeId = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
  const probes: Array<[keyof typeof STORAGE_ROLES, () => Promise<void>, () => Promise<void>, string]> = [
    [
      'blob',
      async () => { for await (const c of clients.blob.listContainers()) have.containers.add(c.name); },
      async () => {
        const container = clients.blob.getContainerClient(CONTAINERS.state);
        await container.createIfNotExists();
        const blob = container.getBlockBlobClient(`${DOCTOR_PROBE.blobPrefix}${probeId}`);
        await blob.upload('', 0);
        await blob.delete();
        have.containers.add(CONTAINERS.state);
      },
      `listed containers, wrote and deleted ${CONTAINERS.state}/${DOCTOR_PROBE.blobPrefix}…`,
    ],
    [
      'queue',
      async () => { for await (const q of clients.queue.listQueues()) have.queues.add(q.name); },
      async () => {
        const queue = clients.queue.getQueueClient(DOCTOR_PROBE.queue);
        await queue.createIfNotExists();
        await queue.sendMessage(probeId);
        // Receive and delete, as a queue trigger does (a sender-only role would stop here).
        for (const m of (await queue.receiveMessages({ numberOfMessages: 32, visibilityTimeout: 30 })).receivedMessageItems) await queue.deleteMessage(m.messageId, m.popReceipt);
      },
      `listed queues, sent, received and deleted a message on ${DOCTOR_PROBE.queue}`,
    ],
    [
      'table',
      async () => { for await (const t of clients.table.listTables()) if (t.name) have.tables.add(t.name); },
      async () => {
        await clients.table.createTable(DOCTOR_PROBE.table);
        const table = clients.tableClient(DOCTOR_PROBE.table);
        await table.upsertEntity({ partitionKey: 'doctor', rowKey: probeId }, 'Replace');
        await table.deleteEntity('doctor', probeId);
      },
      `listed tables, wrote and deleted a row of ${DOCTOR_PROBE.table}`,
    ],
  ];
  let reached = 0;
  for (const [service, read, write, did] of probes) {
    let step: 'read' | 'write' = 'read';
    try {
      await within(read(), timeoutMs, urls[service]);
      if (connection.kind === 'identity') {
        step = 'write';
        await within(write(), timeoutMs, urls[service]);
      }
      reached++;
      if (connection.kind === 'identity') {
        out.push({ area: 'storage', name: `role ${STORAGE_ROLES[service]}`, status: 'ok', detail: `${did} on ${scopeOf(urls[service])}` });
      }
    } catch (err) {
      const status = statusOf(err);
      if (connection.kind === 'identity' && /CredentialUnavailableError|AuthenticationError/.test((err as Error)?.name ?? '')) {
        // No token at all: the credential check fails instead of three role checks.
        out.splice(out.findIndex((c) => c.name === 'credential'), 1, {
          area: 'storage',
          name: 'credential',
          status: 'fail',
          detail: `no token for ${where}: ${redact(errorMessage(err).split('\n')[0]!)}. Locally run az login (or set AZURE_CLIENT_ID / AZURE_TENANT_ID / AZURE_CLIENT_SECRET); in Azure give the Function App its managed identity`,
        });
        return out;
      }
      if (connection.kind === 'identity' && status === 403) {
        out.push({
          area: 'storage',
          name: `role ${STORAGE_ROLES[service]}`,
          status: 'fail',
          detail: `the identity lacks ${STORAGE_ROLES[service]} on ${scopeOf(urls[service])} (${step === 'write' ? `it can read ${service} data but a write` : 'a read'} answered 403 from ${urls[service]}: ${redact(errorMessage(err).split('\n')[0]!)}); assign that role at the storage account scope (infra/main.bicep does for the app identity; for yourself: az role assignment create --role "${STORAGE_ROLES[service]}" --assignee <you> --scope <storage account id>)`,
        });
      } else if (connection.kind === 'connectionString' && connection.local) {
        out.push({ area: 'storage', name: setting, status: 'warn', detail: `Azurite is not reachable at ${where} (${redact(errorMessage(err))}); tidemark run/dev start it when nothing listens` });
        return out;
      } else {
        out.push({
          area: 'storage',
          name: `${setting} ${service}`,
          status: 'fail',
          detail: `cannot reach ${urls[service]}: ${redact(errorMessage(err))}. Check ${connection.kind === 'identity' ? `the credential (az login locally; the managed identity in Azure) and ${setting}__…` : `the connection string in ${setting}`}, the storage firewall, and that the account exists`,
        });
      }
    }
  }
  if (reached === probes.length) {
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
    await s?.close();
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
  registerSecret(cs);
  if (!cs) return { area, name, status: 'fail', detail: `not checked: app setting ${setting} is not set` };
  try {
    await within(probes[kind](cs, timeoutMs), timeoutMs + 1000, `${name} (${kind})`);
    return { area, name, status: 'ok', detail: `${kind} connection through ${setting} answers` };
  } catch (err) {
    return { area, name, status: 'fail', detail: `${kind} connection through ${setting} failed: ${errorMessage(err)}` };
  }
}

/* salesforce connection (issue 18): the login and the API requests left today. */
async function checkSalesforce(name: string, c: SfConnectionConfig, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<DoctorCheck> {
  try {
    const r = await within(
      (async () => {
        const client = await SalesforceClient.connect(c, env, { retry: { attempts: 1, backoff: 'fixed', initialDelayMs: 0 }, what: `connections.${name}` });
        return (await client.limits()).DailyApiRequests;
      })(),
      timeoutMs + 1000,
      `${name} (salesforce)`,
    );
    if (!r) return { area: 'source', name, status: 'ok', detail: 'salesforce login works (limits did not report DailyApiRequests)' };
    const left = r.Remaining / Math.max(1, r.Max);
    return {
      area: 'source',
      name,
      status: left < 0.1 ? 'warn' : 'ok',
      detail: `salesforce login works; ${r.Remaining} of ${r.Max} daily API requests left${left < 0.1 ? ': runs may hit REQUEST_LIMIT_EXCEEDED' : ''}`,
    };
  } catch (err) {
    return { area: 'source', name, status: 'fail', detail: `salesforce login through ${c.instanceUrlSetting} / ${c.clientIdSetting} failed: ${errorMessage(err)}` };
  }
}
/* end salesforce connection */

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
  const storage = await checkStorage(project, o.env, timeoutMs, o.storageClients);
  const origin = from(project.config.storage);
  // Where the setting came from goes on the check named after it (the credential check comes first).
  const at = Math.max(0, storage.findIndex((c) => c.name === project.config.storage));
  if (origin && storage[at]) storage[at] = { ...storage[at], detail: `${storage[at].detail} (${project.config.storage} set${origin})` };
  checks.push(...storage);
  for (const [name, c] of Object.entries(project.config.connections)) {
    if (c.kind === 'duckdb') checks.push(...(await checkDuckSource(project, name, c)));
    else if (c.kind === 'salesforce') checks.push(await checkSalesforce(name, c, o.env, timeoutMs));
    else checks.push(await probe('source', name, c.kind, c.setting, o.env, probes, timeoutMs));
  }
  for (const [name, w] of Object.entries(project.config.warehouses)) {
    if (w.kind === 'duckdb') checks.push(checkDuckWarehouse(project, name, w));
    else checks.push(await probe('warehouse', name, w.kind === 'synapse' || w.kind === 'mssql' ? 'mssql' : 'postgres', w.setting, o.env, probes, timeoutMs));
  }
  return checks;
}

/** 0 when nothing failed (warnings allowed), 1 when a check failed. Config errors exit 2 before this. */
export function doctorExitCode(checks: readonly DoctorCheck[]): 0 | 1 {
  return checks.some((c) => c.status === 'fail') ? 1 : 0;
}
