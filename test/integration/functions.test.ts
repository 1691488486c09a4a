import { join } from 'node:path';
import { HttpRequest, InvocationContext } from '@azure/functions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { extractHandler } from '../../functions/extract.js';
import { mergeHandler } from '../../functions/merge.js';
import { startRunHandler } from '../../functions/start-run.js';
import { transformHandler } from '../../functions/transform.js';
import { validateHandler } from '../../functions/validate.js';
import { loadAppProject, resetAppContext } from '../../shared/engine/app-context.js';
import { createLogger } from '../../shared/telemetry/logger.js';
import type { AzuriteHandle } from '../../shared/local/azurite.js';
import { getRun } from '../../shared/state/runs.js';
import { decodeQueueMessage } from '../../shared/storage/azure-storage.js';
import { withAzurite } from '../support/azurite.js';
import { duckExec, duckQuery, makeProject } from '../support/project.js';
import { storageOf } from '../support/storage-clients.js';

const PIPELINE = `name: accounts
source: { connection: SRC, table: accounts, changeDetection: { mode: full } }
key: [id]
target: { warehouse: WH, table: dim_account }
`;

/** The Azure Functions handlers themselves, fed by real Azurite queues, in the order the host would call them. */
describe('functions/ handlers drive a run end to end', () => {
  let az: AzuriteHandle;
  let dir: string;
  const saved = { ...process.env };

  beforeAll(async () => {
    az = await withAzurite();
    // A broken file beside it: the worker must still load, and only runs of that pipeline fail.
    dir = makeProject({ pipelines: { accounts: PIPELINE, broken: 'name: broken\nsource: { connection: SRC\n' } });
    await duckExec(join(dir, 'source.duckdb'), `create table accounts as select range::int as id, 'n' || range as name from range(5)`);
    process.env.TIDEMARK_PROJECT_DIR = dir;
    process.env.AzureWebJobsStorage = az.connectionString;
    process.env.TIDEMARK_WORK_DIR = join(dir, '.work');
    resetAppContext();
  });
  afterAll(async () => {
    process.env = saved;
    resetAppContext();
    await az?.stop();
  });

  async function take(queue: string): Promise<unknown> {
    const q = storageOf(az.connectionString).clients.queue.getQueueClient(queue);
    const r = await q.receiveMessages({ numberOfMessages: 1 });
    const m = r.receivedMessageItems[0];
    expect(m, `a message in ${queue}`).toBeDefined();
    await q.deleteMessage(m!.messageId, m!.popReceipt);
    return decodeQueueMessage(m!.messageText);
  }

  it('POST /runs → extract → blob trigger → merge → validate', async () => {
    const ic = () => new InvocationContext({ functionName: 'test' });
    const res = await startRunHandler(
      new HttpRequest({ method: 'POST', url: 'http://localhost:7071/api/pipelines/accounts/runs', body: { string: '{"mode":"incremental"}' }, params: { name: 'accounts' } }),
      ic(),
    );
    expect(res.status).toBe(202);
    const { runId, statusUrl } = res.jsonBody as { runId: string; statusUrl: string };
    expect(statusUrl).toBe(`http://localhost:7071/api/pipelines/accounts/runs/${runId}`);

    await extractHandler(await take('extract'), ic());
    await transformHandler(null, new InvocationContext({ functionName: 'transform', triggerMetadata: { pipeline: 'accounts', runId } }));
    await mergeHandler(await take('merge'), ic());
    await validateHandler(await take('validate'), ic());

    const run = await getRun(storageOf(az.connectionString).tables, 'accounts', runId);
    expect(run.status).toBe('succeeded');
    expect(run.counts.inserted).toBe(5);
    expect(await duckQuery(join(dir, 'warehouse.duckdb'), 'select count(*)::int n from dim_account where _tm_is_current')).toEqual([{ n: 5 }]);
  });

  it('answers 409 while a run is in flight and 400/404 on bad input', async () => {
    const post = (name: string, body: string) =>
      startRunHandler(new HttpRequest({ method: 'POST', url: `http://localhost/api/pipelines/${name}/runs`, body: { string: body }, params: { name } }), new InvocationContext());
    const first = await post('accounts', '');
    expect(first.status).toBe(202);
    const second = await post('accounts', '{}');
    expect(second.status).toBe(409);
    expect((second.jsonBody as { error: string }).error).toContain('is in flight');
    expect((await post('accounts', '{"mode":"sometimes"}')).status).toBe(400);
    expect((await post('accounts', '{not json')).status).toBe(400);
    expect((await post('nope', '{}')).status).toBe(404);
    expect((await post('../etc', '{}')).status).toBe(400);
    const broken = await post('broken', '{}');
    expect(broken.status).toBe(422);
    expect((broken.jsonBody as { error: string }).error).toContain('pipelines/broken.yaml');
  });

  it('loads the deployed project with the broken file set aside and logged', async () => {
    const lines: Array<[string, string, Record<string, unknown>]> = [];
    const project = loadAppProject(dir, createLogger((level, message, props) => lines.push([level, message, props])));
    expect([...project.pipelines.keys()]).toEqual(['accounts']);
    expect(lines).toEqual([['error', 'PipelineConfigBroken', expect.objectContaining({ pipeline: 'broken', file: 'pipelines/broken.yaml' })]]);
  });

  it('drops a malformed queue message instead of retrying it', async () => {
    await expect(extractHandler({ pipeline: '../../x', runId: 'nope' }, new InvocationContext())).resolves.toBeUndefined();
  });
});
