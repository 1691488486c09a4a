import { join } from 'node:path';
import functionsPkg from '@azure/functions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getRunHandler } from '../../functions/get-run.js';
import { listPipelinesHandler } from '../../functions/list-pipelines.js';
import { listRunsHandler } from '../../functions/list-runs.js';
import { openApiHandler } from '../../functions/openapi.js';
import { startRunHandler } from '../../functions/start-run.js';
import { resetAppContext } from '../../shared/engine/app-context.js';
import { apiRoutes } from '../../shared/http/routes.js';
import type { AzuriteHandle } from '../../shared/local/azurite.js';
import { startHttpServer, type LocalHttpServer } from '../../shared/local/http-server.js';
import { openLocalStack, type LocalStack } from '../../shared/local/stack.js';
import { getRun, isTerminalStatus } from '../../shared/state/runs.js';
import { withAzurite } from '../support/azurite.js';
import { duckExec, makeProject } from '../support/project.js';

// @azure/functions is CommonJS; its classes are reached through the default export under ESM.
const { HttpRequest, InvocationContext } = functionsPkg;

const PIPELINE = `name: accounts
source:
  connection: SRC
  table: crm.accounts
  changeDetection: { mode: full }
key: [id]
target:
  warehouse: WH
  table: dw.dim_account
validation:
  rowCount: exact
  checksumColumns: [id, email]
`;

type Handler = (req: InstanceType<typeof HttpRequest>, ic: InstanceType<typeof InvocationContext>) => Promise<{ status?: number; jsonBody?: unknown; headers?: unknown }>;

async function call(h: Handler, o: { method: string; path: string; params?: Record<string, string>; body?: string }) {
  const req = new HttpRequest({
    method: o.method,
    url: `http://localhost:7071/api/${o.path}`,
    params: o.params ?? {},
    ...(o.body !== undefined ? { body: { string: o.body } } : {}),
  });
  const res = await h(req, new InvocationContext({ functionName: 'test' }));
  return { status: res.status ?? 200, body: res.jsonBody as Record<string, any>, headers: (res.headers ?? {}) as Record<string, string> };
}

describe('HTTP API on Azurite + DuckDB', () => {
  let az: AzuriteHandle;
  let stack: LocalStack;
  let dir: string;
  const saved = { ...process.env };

  beforeAll(async () => {
    az = await withAzurite();
    dir = makeProject({ pipelines: { accounts: PIPELINE } });
    await duckExec(
      join(dir, 'source.duckdb'),
      'create schema crm',
      'create table crm.accounts (id integer, name varchar, email varchar)',
      `insert into crm.accounts values (1, 'Ann', 'ann@x.com'), (2, 'Bob', 'bob@x.com')`,
    );
    // The Function App's context is built from app settings, as in Azure.
    process.env.TIDEMARK_PROJECT_DIR = dir;
    process.env.AzureWebJobsStorage = az.connectionString;
    process.env.TIDEMARK_WORK_DIR = join(dir, '.work');
    resetAppContext();
    stack = await openLocalStack({ projectDir: dir, connectionString: az.connectionString });
  });
  afterAll(async () => {
    process.env = saved;
    resetAppContext();
    await stack?.close();
    await az?.stop();
  });

  const drive = (runId: string) =>
    stack.host.runUntil(async () => isTerminalStatus((await getRun(stack.ctx.tables, 'accounts', runId)).status), 120_000);

  describe('through the functions/ handlers with HttpRequest objects', () => {
    let runId = '';

    it('POST runs → 202 with the run id and a status URL; a second POST while it is in flight → 409', async () => {
      const res = await call(startRunHandler, { method: 'POST', path: 'pipelines/accounts/runs', params: { name: 'accounts' }, body: '{"mode":"full"}' });
      expect(res.status).toBe(202);
      runId = res.body.runId;
      expect(runId).toMatch(/^\d{8}T\d{6}Z-[0-9a-f]{4}$/);
      expect(res.body.statusUrl).toBe(`http://localhost:7071/api/pipelines/accounts/runs/${runId}`);
      expect(res.headers.Location).toBe(res.body.statusUrl);

      const again = await call(startRunHandler, { method: 'POST', path: 'pipelines/accounts/runs', params: { name: 'accounts' }, body: '' });
      expect(again.status).toBe(409);
      expect(again.body.error).toContain(runId);
    });

    it('GET the run while queued, then after the host ran it: stage, counts, timings, validations', async () => {
      const queued = await call(getRunHandler, { method: 'GET', path: `pipelines/accounts/runs/${runId}`, params: { name: 'accounts', runId } });
      expect(queued.status).toBe(200);
      expect(queued.body).toMatchObject({ runId, status: 'queued', stage: 'extract', mode: 'full', trigger: 'http', validations: [] });

      await drive(runId);
      const done = await call(getRunHandler, { method: 'GET', path: `pipelines/accounts/runs/${runId}`, params: { name: 'accounts', runId } });
      expect(done.body).toMatchObject({ status: 'succeeded', stage: 'done', error: null, counts: { extracted: 2, inserted: 2 } });
      expect(Object.keys(done.body.timings).sort()).toEqual(['extract', 'merge', 'transform', 'validate']);
      expect(done.body.validations.map((v: { check: string; passed: boolean }) => [v.check, v.passed]).sort()).toEqual([
        ['checksum', true],
        ['row_count', true],
      ]);
      expect(done.body.finishedAt).toEqual(expect.any(String));
    });

    it('GET runs?limit= lists newest first and validates limit', async () => {
      const second = await call(startRunHandler, { method: 'POST', path: 'pipelines/accounts/runs', params: { name: 'accounts' }, body: '{}' });
      expect(second.status).toBe(202);
      await drive(second.body.runId);
      const all = await call(listRunsHandler, { method: 'GET', path: 'pipelines/accounts/runs', params: { name: 'accounts' } });
      expect(all.body.runs.map((r: { runId: string }) => r.runId)).toEqual([second.body.runId, runId]);
      const one = await call(listRunsHandler, { method: 'GET', path: 'pipelines/accounts/runs?limit=1', params: { name: 'accounts' } });
      expect(one.body.runs).toHaveLength(1);
      expect(one.body.runs[0]).toMatchObject({ runId: second.body.runId, status: 'succeeded', mode: 'incremental' });
      for (const bad of ['0', '201', 'ten']) {
        const r = await call(listRunsHandler, { method: 'GET', path: `pipelines/accounts/runs?limit=${bad}`, params: { name: 'accounts' } });
        expect(r.status).toBe(400);
        expect(r.body.fields[0].path).toBe('limit');
      }
    });

    it('GET pipelines shows each pipeline with its checkpoint and last run', async () => {
      const res = await call(listPipelinesHandler, { method: 'GET', path: 'pipelines' });
      expect(res.status).toBe(200);
      const [p] = res.body.pipelines;
      expect(p.name).toBe('accounts');
      expect(p.checkpoint.lastRunId).toBe(p.lastRun.runId);
      expect(p.checkpoint.committedAt).toEqual(expect.any(String));
      expect(p.runsUrl).toBe('http://localhost:7071/api/pipelines/accounts/runs');
    });

    it('bad input → 400 with field-level messages; unknown names → 404', async () => {
      const badBody = await call(startRunHandler, {
        method: 'POST',
        path: 'pipelines/accounts/runs',
        params: { name: 'accounts' },
        body: '{"mode":"sideways","extra":1}',
      });
      expect(badBody.status).toBe(400);
      expect(badBody.body.fields.map((f: { path: string }) => f.path).sort()).toEqual(['(root)', 'mode']);

      const badWindow = await call(startRunHandler, {
        method: 'POST',
        path: 'pipelines/accounts/runs',
        params: { name: 'accounts' },
        body: '{"mode":"backfill","from":"2026-01-02T00:00:00Z","to":"2026-01-01T00:00:00Z"}',
      });
      expect(badWindow.status).toBe(400);
      expect(badWindow.body.fields).toEqual([{ path: 'to', message: '"to" must be after "from"' }]);

      const notJson = await call(startRunHandler, { method: 'POST', path: 'pipelines/accounts/runs', params: { name: 'accounts' }, body: '{mode:' });
      expect(notJson.status).toBe(400);
      expect(notJson.body.error).toMatch(/not valid JSON/);

      const badName = await call(getRunHandler, { method: 'GET', path: 'pipelines/Acc%27/runs/x', params: { name: "Acc'", runId: 'x' } });
      expect(badName.status).toBe(400);
      expect(badName.body.fields[0].path).toBe('name');
      const badRun = await call(getRunHandler, { method: 'GET', path: 'pipelines/accounts/runs/x', params: { name: 'accounts', runId: "x' or 1=1" } });
      expect(badRun.status).toBe(400);
      expect(badRun.body.fields[0].path).toBe('runId');

      const unknownPipeline = await call(listRunsHandler, { method: 'GET', path: 'pipelines/nope/runs', params: { name: 'nope' } });
      expect(unknownPipeline.status).toBe(404);
      expect(unknownPipeline.body.error).toContain('known: accounts');
      const unknownRun = await call(getRunHandler, {
        method: 'GET',
        path: 'pipelines/accounts/runs/20200101T000000Z-abcd',
        params: { name: 'accounts', runId: '20200101T000000Z-abcd' },
      });
      expect(unknownRun.status).toBe(404);
    });

    it('serves the OpenAPI document', async () => {
      const res = await call(openApiHandler, { method: 'GET', path: 'openapi.json' });
      expect(res.status).toBe(200);
      expect(res.body.openapi).toBe('3.1.0');
      expect(res.body.servers).toEqual([{ url: 'http://localhost:7071/api' }]);
    });
  });

  describe('the timer function', () => {
    it('a past-due tick while a run is in flight logs both and starts nothing; a free tick starts a scheduled run', async () => {
      // Imported here: functions/timers.ts registers one timer per scheduled pipeline from the project at load.
      const { timerHandler } = await import('../../functions/timers.js');
      const lines: string[] = [];
      const ic = new InvocationContext({ functionName: 'timer-accounts', logHandler: (_level, ...args) => void lines.push(args.join(' ')) });
      const timer = { isPastDue: true, schedule: { adjustForDST: false }, scheduleStatus: { last: '', next: '', lastUpdated: '' } };
      const before = (await call(listRunsHandler, { method: 'GET', path: 'pipelines/accounts/runs', params: { name: 'accounts' } })).body.runs;
      const inFlight = before.find((r: { status: string }) => r.status === 'queued' || r.status === 'running');
      if (inFlight) await drive(inFlight.runId);
      await timerHandler('accounts')(timer, ic);
      expect(lines.some((l) => l.startsWith('timer is past due; starting now'))).toBe(true);
      const after = (await call(listRunsHandler, { method: 'GET', path: 'pipelines/accounts/runs', params: { name: 'accounts' } })).body.runs;
      expect(after[0]).toMatchObject({ trigger: 'schedule', status: 'queued' });
      await timerHandler('accounts')({ ...timer, isPastDue: false }, ic);
      expect(lines.some((l) => l.startsWith(`scheduled run skipped: run ${after[0].runId} of accounts is in flight`))).toBe(true);
      const again = (await call(listRunsHandler, { method: 'GET', path: 'pipelines/accounts/runs', params: { name: 'accounts' } })).body.runs;
      expect(again.length).toBe(after.length);
      await drive(after[0].runId);
    });
  });

  describe('through the local HTTP server', () => {
    let server: LocalHttpServer;
    beforeAll(async () => {
      server = await startHttpServer(stack.ctx, apiRoutes, 0);
    });
    afterAll(async () => server?.close());

    it('starts a backfill split into windows, answers 409 while it runs, and reports it', async () => {
      const post = await fetch(`${server.url}/api/pipelines/accounts/runs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-tidemark-token': server.token },
        body: JSON.stringify({ mode: 'backfill', from: '2026-01-01T00:00:00Z', to: '2026-01-01T12:00:00Z', windowSize: '6h' }),
      });
      expect(post.status).toBe(202);
      const accepted = (await post.json()) as { runId: string; statusUrl: string; windows: unknown[] };
      expect(accepted.windows).toEqual([
        { from: '2026-01-01T00:00:00.000Z', to: '2026-01-01T06:00:00.000Z' },
        { from: '2026-01-01T06:00:00.000Z', to: '2026-01-01T12:00:00.000Z' },
      ]);
      expect(accepted.statusUrl).toBe(`${server.url}/api/pipelines/accounts/runs/${accepted.runId}`);

      const conflict = await fetch(`${server.url}/api/pipelines/accounts/runs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-tidemark-token': server.token },
        body: '{}',
      });
      expect(conflict.status).toBe(409);

      const detail = (await (await fetch(accepted.statusUrl)).json()) as Record<string, unknown>;
      expect(detail).toMatchObject({
        mode: 'backfill',
        backfill: { from: '2026-01-01T00:00:00.000Z', to: '2026-01-01T06:00:00.000Z' },
        backfillRemaining: [{ from: '2026-01-01T06:00:00.000Z', to: '2026-01-01T12:00:00.000Z' }],
      });
    });

    it('answers 404 for unknown routes and unknown pipelines, 400 for a bad limit, and serves openapi.json', async () => {
      expect((await fetch(`${server.url}/api/nothing`)).status).toBe(404);
      expect((await fetch(`${server.url}/api/pipelines/ghost/runs`)).status).toBe(404);
      const bad = await fetch(`${server.url}/api/pipelines/accounts/runs?limit=-3`);
      expect(bad.status).toBe(400);
      const doc = (await (await fetch(`${server.url}/api/openapi.json`)).json()) as { paths: Record<string, unknown> };
      expect(Object.keys(doc.paths)).toContain('/pipelines/{name}/rollback');
      const list = (await (await fetch(`${server.url}/api/pipelines`)).json()) as { pipelines: Array<{ name: string }> };
      expect(list.pipelines.map((p) => p.name)).toEqual(['accounts']);
    });
  });
});
