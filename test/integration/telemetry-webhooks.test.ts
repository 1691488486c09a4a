import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { InMemoryLogRecordExporter, LoggerProvider, SimpleLogRecordProcessor } from '@opentelemetry/sdk-logs';
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { failPoisonedBlob } from '../../shared/engine/blob-poison.js';
import { onRunEnded } from '../../shared/engine/run-events.js';
import type { AzuriteHandle } from '../../shared/local/azurite.js';
import { openLocalStack, runOnce, type LocalStack } from '../../shared/local/stack.js';
import { getRun, newRunRecord } from '../../shared/state/runs.js';
import { writeValidations } from '../../shared/state/validations.js';
import { TABLES } from '../../shared/storage/layout.js';
import { createLogger } from '../../shared/telemetry/logger.js';
import { CUSTOM_EVENT_ATTRIBUTE, otelLogSink, otelTelemetry } from '../../shared/telemetry/otel.js';
import { withAzurite } from '../support/azurite.js';
import { duckExec, makeProject } from '../support/project.js';

const ACCOUNTS = `name: accounts
source: { connection: SRC, table: crm.accounts }
key: [id]
target: { warehouse: WH, table: dw.dim_account }
notifications:
  webhooks:
    - { setting: HOOK_SLACK, on: [success, failure] }
    - { setting: HOOK_TEAMS, on: [failure], format: teams }
    - { setting: HOOK_UNSET, on: [success] }
`;
const BROKEN = `name: broken
source: { connection: SRC, table: crm.missing }
key: [id]
target: { warehouse: WH, table: dw.broken }
retry: { attempts: 1 }
notifications:
  webhooks:
    - { setting: HOOK_TEAMS, on: [failure], format: teams }
`;

interface Hit {
  path: string;
  body: any;
}

describe('telemetry (OpenTelemetry in-memory exporters) and webhooks, on Azurite + DuckDB', () => {
  let az: AzuriteHandle;
  let stack: LocalStack;
  let hooks: Server;
  const hits: Hit[] = [];
  let slackFailuresLeft = 1;
  const logExporter = new InMemoryLogRecordExporter();
  const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const reader = new PeriodicExportingMetricReader({ exporter: metricExporter, exportIntervalMillis: 60_000 });
  const loggerProvider = new LoggerProvider({ processors: [new SimpleLogRecordProcessor({ exporter: logExporter })] });
  const meterProvider = new MeterProvider({ readers: [reader] });

  const events = () =>
    logExporter
      .getFinishedLogRecords()
      .filter((r) => r.attributes[CUSTOM_EVENT_ATTRIBUTE] !== undefined)
      .map((r) => ({ name: String(r.attributes[CUSTOM_EVENT_ATTRIBUTE]), attrs: r.attributes, body: r.body as { measurements: Record<string, number> } }));

  async function metricPoints(name: string): Promise<Array<{ attributes: Record<string, unknown>; value: any }>> {
    await reader.forceFlush();
    const all = metricExporter.getMetrics().at(-1)?.scopeMetrics.flatMap((s) => s.metrics) ?? [];
    return all.filter((m) => m.descriptor.name === name).flatMap((m) => m.dataPoints.map((d) => ({ attributes: d.attributes, value: d.value })));
  }

  beforeAll(async () => {
    az = await withAzurite();
    hooks = createServer((req, res) => {
      let text = '';
      req.on('data', (c) => (text += c));
      req.on('end', () => {
        hits.push({ path: req.url ?? '', body: JSON.parse(text) });
        if (req.url === '/slack' && slackFailuresLeft-- > 0) {
          res.writeHead(503).end('try later');
          return;
        }
        res.writeHead(200).end('ok');
      });
    });
    await new Promise<void>((r) => hooks.listen(0, '127.0.0.1', r));
    const hookUrl = `http://127.0.0.1:${(hooks.address() as AddressInfo).port}`;
    const dir = makeProject({ pipelines: { accounts: ACCOUNTS, broken: BROKEN } });
    await duckExec(
      join(dir, 'source.duckdb'),
      'create schema crm',
      'create table crm.accounts (id integer, name varchar)',
      `insert into crm.accounts values (1, 'Ann'), (2, 'Bob'), (3, 'Cy')`,
    );
    const otelLogger = loggerProvider.getLogger('tidemark');
    stack = await openLocalStack({
      projectDir: dir,
      connectionString: az.connectionString,
      env: { ...process.env, HOOK_SLACK: `${hookUrl}/slack`, HOOK_TEAMS: `${hookUrl}/teams`, TIDEMARK_WEBHOOK_RETRY_DELAY_MS: '20' },
      log: createLogger(otelLogSink(otelLogger)),
      host: { retryDelaySeconds: 0, maxDequeueCount: 2 },
    });
    stack.ctx.telemetry = otelTelemetry(otelLogger, meterProvider.getMeter('tidemark'));
  });
  afterAll(async () => {
    await stack?.close();
    await az?.stop();
    await new Promise((r) => hooks?.close(r));
    await meterProvider.shutdown();
    await loggerProvider.shutdown();
  });

  it('a successful run emits RunStarted and RunSucceeded with pipeline and run id, rows per operation, stage durations and freshness lag', async () => {
    const s = await runOnce(stack, { pipeline: 'accounts' });
    expect(s.status).toBe('succeeded');
    const mine = events().filter((e) => e.attrs.runId === s.runId && e.name.startsWith('Run'));
    expect(mine.map((e) => e.name)).toEqual(['RunStarted', 'RunSucceeded']);
    expect(mine[0]!.attrs).toMatchObject({ pipeline: 'accounts', runId: s.runId, trigger: 'cli', mode: 'incremental' });
    expect(mine[1]!.body.measurements).toMatchObject({ inserted: 3, updated: 0, deleted: 0 });

    const rows = (await metricPoints('tidemark.rows')).filter((p) => p.attributes.runId === s.runId);
    const byOp = Object.fromEntries(rows.map((p) => [p.attributes.operation, p.value.sum]));
    expect(byOp).toMatchObject({ extracted: 3, inserted: 3, updated: 0, deleted: 0, unchanged: 0 });
    expect(rows.every((p) => p.attributes.pipeline === 'accounts')).toBe(true);

    const stages = (await metricPoints('tidemark.stage.duration')).filter((p) => p.attributes.runId === s.runId).map((p) => p.attributes.stage);
    expect(stages.sort()).toEqual(['extract', 'merge', 'transform', 'validate']);
    const lag = (await metricPoints('tidemark.freshness.lag')).filter((p) => p.attributes.runId === s.runId);
    expect(lag).toHaveLength(1);
    expect(lag[0]!.value.sum).toBeGreaterThanOrEqual(0);

    // Every log line of the run carries its run id.
    const lines = logExporter.getFinishedLogRecords().filter((r) => r.attributes[CUSTOM_EVENT_ATTRIBUTE] === undefined);
    const runLines = lines.filter((r) => String(r.body).includes('run started') || String(r.body).startsWith('merge '));
    expect(runLines.length).toBeGreaterThanOrEqual(2);
    for (const l of runLines) expect(l.attributes.runId).toBe(s.runId);
  });

  it('the success webhook is retried after a 503 and carries Slack JSON; a missing URL setting is reported, not thrown', async () => {
    const slack = hits.filter((h) => h.path === '/slack');
    expect(slack).toHaveLength(2); // 503, then 200
    expect(slack[1]!.body).toEqual(slack[0]!.body);
    expect(slack[1]!.body.text).toMatch(/^✅ tidemark: accounts run \S+ succeeded\n.*inserted 3/);
    expect(hits.filter((h) => h.path === '/teams')).toHaveLength(0); // failure only
    const failed = events().filter((e) => e.name === 'WebhookFailed');
    expect(failed.map((e) => e.attrs.setting)).toEqual(['HOOK_UNSET']);
  });

  it('a failing run emits RunFailed with the error and sends the Teams card', async () => {
    const s = await runOnce(stack, { pipeline: 'broken' });
    expect(s.status).toBe('failed');
    const failed = events().find((e) => e.name === 'RunFailed' && e.attrs.runId === s.runId);
    expect(failed?.attrs).toMatchObject({ pipeline: 'broken', runId: s.runId, status: 'failed' });
    expect(String(failed?.attrs.error)).toMatch(/missing/i);
    const teams = hits.filter((h) => h.path === '/teams');
    expect(teams).toHaveLength(1);
    expect(teams[0]!.body.type).toBe('message');
    const card = teams[0]!.body.attachments[0];
    expect(card.contentType).toBe('application/vnd.microsoft.card.adaptive');
    expect(card.content.body[1].facts).toEqual(expect.arrayContaining([{ title: 'Pipeline', value: 'broken' }, { title: 'Run', value: s.runId }]));
  });

  it('a validation failure emits ValidationFailed per failed check and RunFailed', async () => {
    const now = new Date('2026-03-01T00:00:00Z');
    const run = { ...newRunRecord({ pipeline: 'accounts', runId: '20260301T000000Z-0abc', trigger: 'schedule', mode: 'incremental', now }), status: 'validation_failed' as const, stage: 'done' as const, finishedAt: now.toISOString() };
    await stack.ctx.tables.insert(TABLES.runs, run);
    await writeValidations(stack.ctx.tables, 'accounts', run.runId, [
      { check: 'row_count', passed: false, expected: 3, actual: 2 },
      { check: 'checksum', passed: true, expected: 'a', actual: 'a' },
    ], now);
    await onRunEnded(stack.ctx, 'accounts', run.runId);
    const mine = events().filter((e) => e.attrs.runId === run.runId && e.name !== 'WebhookFailed');
    expect(mine.map((e) => e.name)).toEqual(['ValidationFailed', 'RunFailed']);
    expect(mine[0]!.attrs).toMatchObject({ pipeline: 'accounts', check: 'row_count', expected: '3', actual: '2' });
    expect(mine[1]!.attrs).toMatchObject({ status: 'validation_failed' });
    const slack = hits.filter((h) => h.path === '/slack').at(-1)!;
    expect(slack.body.text).toContain('validation failed');
    expect(slack.body.text).toContain('failed checks: row_count');
  });
  it('a poisoned transform (webjobs-blobtrigger-poison) fails its run and emits MessagePoisoned; an unreadable one still alerts', async () => {
    const run = newRunRecord({ pipeline: 'accounts', runId: '20260302T000000Z-0def', trigger: 'schedule', mode: 'incremental', now: new Date('2026-03-02T00:00:00Z') });
    await stack.ctx.tables.insert(TABLES.runs, { ...run, status: 'running', stage: 'transform' });
    // The shape the Functions host writes for a poisoned blob trigger.
    await failPoisonedBlob(stack.ctx, JSON.stringify({ Type: 'BlobTrigger', FunctionId: 'Host.Functions.transform', BlobType: 'BlockBlob', ContainerName: 'raw', BlobName: `accounts/${run.runId}/_manifest.json`, ETag: '"0x1"' }));
    expect(await getRun(stack.ctx.tables, 'accounts', run.runId)).toMatchObject({ status: 'failed', error: expect.stringContaining('poisoned in the transform blob trigger') });
    await failPoisonedBlob(stack.ctx, 'garbage');
    const poisoned = events().filter((e) => e.name === 'MessagePoisoned');
    expect(poisoned.map((e) => [e.attrs.pipeline, e.attrs.runId, e.attrs.queue])).toEqual([
      ['accounts', run.runId, 'webjobs-blobtrigger'],
      ['', '', 'webjobs-blobtrigger'],
    ]);
  });
});
