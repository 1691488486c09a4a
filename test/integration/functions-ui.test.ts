import { HttpRequest, InvocationContext } from '@azure/functions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRunHandler } from '../../functions/start-run.js';
import { uiDataHandler } from '../../functions/ui-data.js';
import { uiPageHandler } from '../../functions/ui-page.js';
import { uiPipelineHandler } from '../../functions/ui-pipeline.js';
import { uiRunHandler } from '../../functions/ui-run.js';
import { resetAppContext } from '../../shared/engine/app-context.js';
import type { AzuriteHandle } from '../../shared/local/azurite.js';
import type { UiOverview, UiPipelineDetail, UiRunDetail } from '../../shared/ui/view-model.js';
import { withAzurite } from '../support/azurite.js';
import { makeProject } from '../support/project.js';

const PIPELINE = `name: accounts
schedule: "0 */15 * * * *"
source: { connection: SRC, table: accounts, changeDetection: { mode: full } }
key: [id]
target: { warehouse: WH, table: dim_account }
`;

const get = (path: string, params: Record<string, string> = {}) =>
  new HttpRequest({ method: 'GET', url: `http://localhost:7071/api/${path}`, params });

/** The run-history routes as the Functions host calls them: the page and its JSON data. */
describe('functions/ui-* handlers', () => {
  let az: AzuriteHandle;
  const saved = { ...process.env };

  beforeAll(async () => {
    az = await withAzurite();
    const dir = makeProject({ pipelines: { accounts: PIPELINE } });
    process.env.TIDEMARK_PROJECT_DIR = dir;
    process.env.AzureWebJobsStorage = az.connectionString;
    process.env.TIDEMARK_WORK_DIR = `${dir}/.work`;
    resetAppContext();
  });
  afterAll(async () => {
    process.env = saved;
    resetAppContext();
    await az?.stop();
  });

  it('GET /api/ui returns the page as HTML with a CSP', async () => {
    const res = await uiPageHandler(get('ui'), new InvocationContext());
    expect(res.status).toBe(200);
    expect((res.headers as Record<string, string>)['content-type']).toBe('text/html; charset=utf-8');
    expect((res.headers as Record<string, string>)['content-security-policy']).toMatch(/^default-src 'none'/);
    expect(String(res.body)).toMatch(/^<!doctype html>[\s\S]*<main id="app">[\s\S]*<script>/);
  });

  it('the data routes show a run started over HTTP, and refuse bad input', async () => {
    const started = await startRunHandler(
      new HttpRequest({ method: 'POST', url: 'http://localhost:7071/api/pipelines/accounts/runs', body: { string: '{}' }, params: { name: 'accounts' } }),
      new InvocationContext(),
    );
    expect(started.status).toBe(202);
    const { runId } = started.jsonBody as { runId: string };

    const data = await uiDataHandler(get('ui/data'), new InvocationContext());
    expect(data.status).toBe(200);
    const [p] = (data.jsonBody as UiOverview).pipelines;
    expect(p).toMatchObject({ name: 'accounts', runCount: 1, lastRun: { runId, status: 'queued', trigger: 'http' }, freshness: { state: 'never', thresholdMs: 30 * 60_000 } });

    const detail = await uiPipelineHandler(get('ui/pipelines/accounts?limit=5', { name: 'accounts' }), new InvocationContext());
    expect((detail.jsonBody as UiPipelineDetail).runs.map((r) => r.runId)).toEqual([runId]);
    expect((detail.jsonBody as UiPipelineDetail).limit).toBe(5);

    const run = await uiRunHandler(get(`ui/pipelines/accounts/runs/${runId}`, { name: 'accounts', runId }), new InvocationContext());
    expect((run.jsonBody as UiRunDetail).run).toMatchObject({ runId, status: 'queued', finishedAt: null });

    const unknown = await uiPipelineHandler(get('ui/pipelines/nope', { name: 'nope' }), new InvocationContext());
    expect(unknown).toMatchObject({ status: 404, jsonBody: { error: 'unknown pipeline nope; known: accounts' } });
    const badRun = await uiRunHandler(get('ui/pipelines/accounts/runs/x', { name: 'accounts', runId: 'x' }), new InvocationContext());
    expect(badRun.status).toBe(400);
    expect((badRun.jsonBody as { error: string }).error).toMatch(/invalid run id "x"/);
  });
});
