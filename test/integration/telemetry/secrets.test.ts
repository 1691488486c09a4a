import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { InMemoryLogRecordExporter, LoggerProvider, SimpleLogRecordProcessor } from '@opentelemetry/sdk-logs';
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadProject } from '../../../shared/config/load.js';
import { runDoctor } from '../../../shared/engine/doctor.js';
import { apiRoutes } from '../../../shared/http/routes.js';
import { freePort, type AzuriteHandle } from '../../../shared/local/azurite.js';
import { startHttpServer } from '../../../shared/local/http-server.js';
import { SalesforceDouble } from '../../support/salesforce-server.js';
import { openLocalStack, runOnce, type LocalStack } from '../../../shared/local/stack.js';
import { listRuns } from '../../../shared/state/runs.js';
import { TABLES } from '../../../shared/storage/layout.js';
import { createLogger, type LogLevel } from '../../../shared/telemetry/logger.js';
import { otelLogSink, otelTelemetry } from '../../../shared/telemetry/otel.js';
import { withAzurite } from '../../support/azurite.js';
import { startPostgres, type PostgresHandle } from '../../support/postgres.js';
import { makeProject } from '../../support/project.js';

// Each marker is a secret a user would put in a setting; none may appear anywhere tidemark writes.
const PG_PASSWORD = 'pgPassMarker4f9c';
const PG_DOWN_PASSWORD = 'pgDownMarker81aa';
const MSSQL_PASSWORD = 'mssqlPassMarker77e2';
const HOOK_PATH_TOKEN = 'hookPathMarker3b6d';
const HOOK_QUERY_TOKEN = 'hookQueryMarker0c5e';
const HOOK_DOWN_TOKEN = 'hookDownMarker9a1f';
const SF_SECRET = 'sfSecretMarker62d0';
const SF_BAD_SECRET = 'sfBadSecretMarker1e7a';
/** The Salesforce double issues access tokens starting with this: the session token is a secret too. */
const SF_TOKEN = 'sfTokenMarker9b3c';
/** An account key (base64, as Azure shows them) in a storage connection string. */
const STORAGE_KEY = Buffer.from('storageKeyMarker44f1-storageKeyMarker44f1').toString('base64');
const MARKERS = [PG_PASSWORD, PG_DOWN_PASSWORD, MSSQL_PASSWORD, HOOK_PATH_TOKEN, HOOK_QUERY_TOKEN, HOOK_DOWN_TOKEN, SF_SECRET, SF_BAD_SECRET, SF_TOKEN, STORAGE_KEY];

const TIDEMARK = `storage: AzureWebJobsStorage
connections:
  PG: { kind: postgres, setting: PG_URL, requestTimeout: 30s }
  PG_DOWN: { kind: postgres, setting: PG_DOWN_URL, requestTimeout: 5s }
  CRM: { kind: mssql, setting: CRM_SQL, requestTimeout: 5s }
  SF: { kind: salesforce, instanceUrlSetting: SF_URL, auth: clientCredentials, clientIdSetting: SF_CLIENT_ID, secretSetting: SF_SECRET, apiVersion: '62.0' }
  SF_BAD: { kind: salesforce, instanceUrlSetting: SF_URL, auth: clientCredentials, clientIdSetting: SF_CLIENT_ID, secretSetting: SF_BAD_SECRET, apiVersion: '62.0' }
warehouses:
  WH: { kind: duckdb, path: warehouse.duckdb }
duckdb: { memoryLimit: 512MB, threads: 1 }
`;
const hooks = `notifications:
  webhooks:
    - { setting: HOOK_TOKEN_URL, on: [success, failure] }
    - { setting: HOOK_DOWN_URL, on: [failure], format: teams }
`;
/** A pipeline whose source cannot be reached: it fails on its first attempt. */
function unreachable(name: string, connection: string, table: string): string {
  return `name: ${name}
source: { connection: ${connection}, table: ${table} }
key: [id]
target: { warehouse: WH, table: dw.${name} }
retry: { attempts: 1 }
${hooks}`;
}

const PIPELINES = {
  pg_ok: `name: pg_ok
source: { connection: PG, table: crm.accounts, changeDetection: { mode: full } }
key: [id]
target: { warehouse: WH, table: dw.pg_ok }
validation:
  rowCount: exact
  rules:
    # The warehouse's error quotes the missing table's name, which carries a secret: a database
    # message echoing a secret, as drivers do with connection strings, must reach the details masked.
    - { name: broken_rule, sql: "select count(*) from no_such_table_${PG_PASSWORD}", expect: 0 }
${hooks}`,
  pg_down: unreachable('pg_down', 'PG_DOWN', 'crm.accounts'),
  crm_down: unreachable('crm_down', 'CRM', 'dbo.Accounts'),
  sf_ok: `name: sf_ok
source: { connection: SF, object: Account, fields: [Id, Name, SystemModstamp], changeDetection: { mode: timestamp } }
key: [Id]
target: { warehouse: WH, table: dw.sf_ok }
${hooks}`,
  // Its client secret is wrong: Salesforce refuses the login (terminal, no retry helps).
  sf_denied: `name: sf_denied
source: { connection: SF_BAD, object: Account, fields: [Id, Name, SystemModstamp], changeDetection: { mode: timestamp } }
key: [Id]
target: { warehouse: WH, table: dw.sf_denied }
retry: { attempts: 1 }
${hooks}`,
};

describe('secrets never reach logs, run records, validations, telemetry or errors', () => {
  let az: AzuriteHandle;
  let db: PostgresHandle;
  let stack: LocalStack;
  let hookServer: Server;
  let sf: SalesforceDouble;
  let env: NodeJS.ProcessEnv;
  let dir: string;
  const lines: Array<{ level: LogLevel; message: string; props: Record<string, unknown> }> = [];
  const hookHits: string[] = [];
  const logExporter = new InMemoryLogRecordExporter();
  const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const reader = new PeriodicExportingMetricReader({ exporter: metricExporter, exportIntervalMillis: 60_000 });
  const loggerProvider = new LoggerProvider({ processors: [new SimpleLogRecordProcessor({ exporter: logExporter })] });
  const meterProvider = new MeterProvider({ readers: [reader] });

  beforeAll(async () => {
    [az, db, sf] = await Promise.all([withAzurite(), startPostgres(), SalesforceDouble.start(40, { clientId: 'client-1', secret: SF_SECRET, tokenPrefix: SF_TOKEN })]);
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    await c.query('create schema if not exists crm');
    await c.query('create table crm.accounts (id integer primary key, name text)');
    await c.query("insert into crm.accounts values (1, 'Ann'), (2, 'Bob')");
    await c.end();
    hookServer = createServer((req, res) => {
      hookHits.push(req.url ?? '');
      req.resume();
      req.on('end', () => res.writeHead(500).end(`no: ${req.url}`));
    });
    await new Promise<void>((r) => hookServer.listen(0, '127.0.0.1', r));
    const hookPort = (hookServer.address() as AddressInfo).port;
    const closed = await freePort();
    const u = new URL(db.url);
    u.password = PG_PASSWORD; // PGlite's socket server trusts any password: the run succeeds with it
    env = {
      ...process.env,
      TIDEMARK_LOG_LEVEL: 'debug',
      TIDEMARK_WEBHOOK_RETRY_DELAY_MS: '5',
      PG_URL: u.toString(),
      PG_DOWN_URL: `postgres://tidemark:${PG_DOWN_PASSWORD}@127.0.0.1:${closed}/crm?sslmode=disable`,
      CRM_SQL: `Server=127.0.0.1,${closed};Database=crm;User Id=sa;Password=${MSSQL_PASSWORD};Encrypt=false;Connect Timeout=3`,
      HOOK_TOKEN_URL: `http://127.0.0.1:${hookPort}/services/T0/B0/${HOOK_PATH_TOKEN}?token=${HOOK_QUERY_TOKEN}`,
      HOOK_DOWN_URL: `http://127.0.0.1:${closed}/webhookb2/${HOOK_DOWN_TOKEN}`,
      SF_URL: sf.url,
      SF_CLIENT_ID: 'client-1',
      SF_SECRET,
      SF_BAD_SECRET,
    };
    dir = makeProject({ tidemark: TIDEMARK, pipelines: PIPELINES });
    const otelLogger = loggerProvider.getLogger('tidemark');
    const otelSink = otelLogSink(otelLogger);
    stack = await openLocalStack({
      projectDir: dir,
      connectionString: az.connectionString,
      env,
      // Debug level, every line: the terminal sink's JSON and the OpenTelemetry records both.
      log: createLogger((level, message, props) => {
        lines.push({ level, message, props });
        otelSink(level, message, props);
      }),
      host: { retryDelaySeconds: 0, maxDequeueCount: 1 },
    });
    stack.ctx.telemetry = otelTelemetry(otelLogger, meterProvider.getMeter('tidemark'));
  }, 60_000);
  afterAll(async () => {
    await stack?.close();
    await Promise.all([az?.stop(), db?.stop(), sf?.stop(), new Promise((r) => hookServer?.close(r))]);
    await meterProvider.shutdown();
    await loggerProvider.shutdown();
  });

  function expectNoMarker(what: string, value: unknown): void {
    const text = typeof value === 'string' ? value : JSON.stringify(value);
    for (const m of MARKERS) expect(text.includes(m), `${m} in ${what}: ${text.slice(Math.max(0, text.indexOf(m) - 200), text.indexOf(m) + 50)}`).toBe(false);
  }

  it('runs pipelines that succeed (PostgreSQL, Salesforce), fail on a database that is down (PostgreSQL, SQL Server) or on a refused Salesforce login, all with failing webhooks; no marker anywhere, HTTP answers included', async () => {
    const ok = await runOnce(stack, { pipeline: 'pg_ok' }, 60_000);
    expect(ok.status).toBe('validation_failed');
    const pgDown = await runOnce(stack, { pipeline: 'pg_down' }, 60_000);
    const crmDown = await runOnce(stack, { pipeline: 'crm_down' }, 60_000);
    const sfOk = await runOnce(stack, { pipeline: 'sf_ok' }, 60_000);
    const sfDenied = await runOnce(stack, { pipeline: 'sf_denied' }, 60_000);
    expect([pgDown.status, crmDown.status, sfOk.status, sfDenied.status]).toEqual(['failed', 'failed', 'succeeded', 'failed']);
    // The failures are real and reported: the errors name what failed, only without the secret.
    expect(pgDown.error).toMatch(/ECONNREFUSED|connect/i);
    expect(crmDown.error).toMatch(/connect|ECONNREFUSED/i);
    expect(sfDenied.error).toMatch(/Salesforce login failed.*invalid/i);
    // The Salesforce run really logged in with the secret and used the marked session token.
    expect(sfOk.counts.inserted).toBe(40);
    expect(sf.logins).toBeGreaterThan(0);
    // The webhooks were really attempted with their token URLs (the secret left only to its own endpoint).
    expect(hookHits.some((h) => h.includes(HOOK_PATH_TOKEN) && h.includes(HOOK_QUERY_TOKEN))).toBe(true);

    expect(lines.some((l) => l.level === 'debug')).toBe(true);
    expect(lines.some((l) => l.message.includes('webhook HOOK_TOKEN_URL failed'))).toBe(true);
    expectNoMarker('log lines', lines);
    expectNoMarker('OpenTelemetry log records and events', logExporter.getFinishedLogRecords().map((r) => ({ body: r.body, attributes: r.attributes })));
    await reader.forceFlush();
    expectNoMarker('metrics', metricExporter.getMetrics());
    for (const p of Object.keys(PIPELINES)) {
      expectNoMarker(`run records of ${p}`, await listRuns(stack.ctx.tables, p));
      expectNoMarker(`validations of ${p}`, await stack.ctx.tables.list(TABLES.validations, p));
      if (p === 'pg_ok') {
        const rows = (await stack.ctx.tables.list(TABLES.validations, p)) as unknown as Array<{ check: string; detail?: string }>;
        const rule = rows.find((v) => v.check.includes('broken_rule'));
        expect(rule?.detail, 'the failed rule keeps its database message, masked').toMatch(/no_such_table_\*\*\*/);
      }
    }
    expectNoMarker('run summaries', [ok, pgDown, crmDown, sfOk, sfDenied]);
    // The HTTP API (and the run-history page's data) show the failed runs with their errors, masked.
    const http = await startHttpServer(stack.ctx, apiRoutes, { port: 0 });
    try {
      const bodies: string[] = [];
      for (const path of ['pipelines', 'ui/data', ...Object.keys(PIPELINES).flatMap((p) => [`pipelines/${p}/runs`, `ui/pipelines/${p}`])]) {
        const res = await fetch(`${http.url}/api/${path}`);
        expect(res.status, path).toBe(200);
        bodies.push(await res.text());
      }
      for (const r of [pgDown, crmDown, sfDenied]) {
        const res = await fetch(`${http.url}/api/pipelines/${r.pipeline}/runs/${r.runId}`);
        const body = await res.text();
        expect(JSON.parse(body).error, r.pipeline).toBe(r.error);
        bodies.push(body);
      }
      // An answer that is an error names the setting's problem, never its value.
      const refused = await fetch(`${http.url}/api/pipelines/pg_down/runs/not-a-run`);
      expect(refused.status).toBeGreaterThanOrEqual(400);
      bodies.push(await refused.text());
      expect(bodies.join('\n')).toContain('ECONNREFUSED');
      expectNoMarker('HTTP answers', bodies);
    } finally {
      await http.close();
    }
    const events = logExporter.getFinishedLogRecords().filter((r) => r.attributes['microsoft.custom_event.name'] === 'WebhookFailed');
    expect(events.length).toBeGreaterThan(0);
  }, 180_000);

  it('doctor reports the failed connections without their passwords', async () => {
    const checks = await runDoctor(loadProject(dir), { env: { ...env, AzureWebJobsStorage: az.connectionString }, timeoutMs: 4000 });
    expect(checks.find((c) => c.name === 'PG_DOWN')?.status).toBe('fail');
    expect(checks.find((c) => c.name === 'CRM')?.status).toBe('fail');
    expect(checks.find((c) => c.name === 'SF_BAD')?.status).toBe('fail');
    expect(checks.find((c) => c.name === 'SF')?.status).toBe('ok');
    expectNoMarker('doctor', checks);
  }, 60_000);

  it('a storage connection string with an account key that cannot be reached: doctor shows no key', async () => {
    const closed = await freePort();
    const cs = ['DefaultEndpointsProtocol=http', 'AccountName=acct', `AccountKey=${STORAGE_KEY}`, ...['Blob', 'Queue', 'Table'].map((s) => `${s}Endpoint=http://127.0.0.1:${closed}/acct`)].join(';');
    const checks = await runDoctor(loadProject(dir), { env: { ...env, AzureWebJobsStorage: cs }, timeoutMs: 3000 });
    const storage = checks.filter((c) => c.area === 'storage');
    expect(storage.some((c) => c.status !== 'ok'), JSON.stringify(storage)).toBe(true);
    expectNoMarker('doctor on unreachable storage', checks);
  }, 60_000);
});
