import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCommand } from '../../../cli/commands/run.js';
import { exitCodeFor } from '../../../cli/common.js';
import { loadProject } from '../../../shared/config/load.js';
import { MAX_BODY_BYTES, handleStartRun } from '../../../shared/engine/http-api.js';
import { startRun } from '../../../shared/engine/start-run.js';
import { extractStage, transformStage } from '../../../shared/engine/stages.js';
import { ConfigError } from '../../../shared/errors.js';
import { startAzurite, type AzuriteHandle } from '../../../shared/local/azurite.js';
import type { LocalStack } from '../../../shared/local/stack.js';
import { readLease } from '../../../shared/state/leases.js';
import { getRun, listRuns } from '../../../shared/state/runs.js';
import { CONTAINERS, layout } from '../../../shared/storage/layout.js';
import { md5File } from '../../../shared/storage/files.js';
import { duckExec } from '../../support/project.js';
import { ACCOUNTS, HOUR, T0, accountsProject, drain, openFaultyStack, pipelineState, runThroughHost, type PipelineState } from '../../support/reliability.js';
import { storageOf } from '../../support/storage-clients.js';

/**
 * Bad input is refused with a message that names the thing and the fix, and changes nothing:
 * after each refusal the warehouse (dimension and ledger) and checkpoint equal what they were.
 */
describe('bad input: clear refusals, nothing changed', () => {
  let az: AzuriteHandle;
  let stack: LocalStack;
  let dir: string;
  const clock = { t: T0 };
  let committed: PipelineState;

  const unchanged = async () => {
    const now = await pipelineState(stack, dir, 'accounts');
    expect(now.dimension).toEqual(committed.dimension);
    expect(now.ledger).toEqual(committed.ledger);
    expect(now.checkpoint).toEqual(committed.checkpoint);
    expect(await readLease(stack.ctx.tables, 'accounts')).toBeUndefined();
  };

  /** Starts a run and runs its extract only; the test then tampers with what the extract wrote. */
  const extracted = async () => {
    clock.t += HOUR;
    const run = await startRun(stack.ctx, { pipeline: 'accounts', trigger: 'cli' });
    expect(await extractStage(stack.ctx, { pipeline: 'accounts', runId: run.runId })).toBe('done');
    return { runId: run.runId, manifest: layout.rawManifest('accounts', run.runId) };
  };

  const failsWith = async (runId: string, manifest: string, message: string | RegExp) => {
    expect(await transformStage(stack.ctx, manifest)).toBe('failed');
    const r = await getRun(stack.ctx.tables, 'accounts', runId);
    expect(r.status).toBe('failed');
    if (typeof message === 'string') expect(r.error).toBe(message);
    else expect(r.error).toMatch(message);
    const written = [];
    for await (const b of stack.ctx.blobs.list(CONTAINERS.changes, `accounts/${runId}/`)) written.push(b.name);
    expect(written).toEqual([]);
    await unchanged();
  };

  beforeAll(async () => {
    az = await startAzurite();
    dir = await accountsProject(ACCOUNTS.replace('validation:\n', 'validation:\n  extract: { minRows: 1 }\n'));
    stack = await openFaultyStack({ az, dir, clock });
    expect((await runThroughHost(stack, 'accounts')).status).toBe('succeeded');
    await drain(stack);
    committed = await pipelineState(stack, dir, 'accounts');
  });
  afterAll(async () => {
    await stack?.close();
    await az?.stop();
  });

  describe('invalid configuration is refused before anything runs', () => {
    const cases: Array<[string, (y: string) => string, string]> = [
      ['unknown field', (y) => y.replace('key: [id]', 'key: [id]\nkeys: [id]'), 'pipelines/accounts.yaml: unknown field "keys"'],
      ['wrong type', (y) => y.replace('partRows: 1000', 'partRows: lots'), 'pipelines/accounts.yaml at source.partRows: Invalid input: expected number, received string'],
      [
        'unsafe identifier',
        (y) => y.replace('table: dw.dim_account', 'table: dw.dim_account; drop table x'),
        'pipelines/accounts.yaml at target.table: must be table or schema.table, each part letters, digits and _',
      ],
      [
        'unknown connection',
        (y) => y.replace('connection: SRC', 'connection: CRM'),
        'pipelines/accounts.yaml at source.connection: unknown connection "CRM"; declare it under connections in tidemark.yaml (known: SRC)',
      ],
      ['bad cron', (y) => `${y}schedule: "*/15 * * * *"\n`, 'pipelines/accounts.yaml at schedule: NCRONTAB needs six fields (second minute hour day month day-of-week), got 5: "*/15 * * * *"'],
      ['invalid YAML', (y) => `${y}key: [id\n`, 'pipelines/accounts.yaml: invalid YAML'],
    ];
    for (const [name, edit, message] of cases) {
      it(name, async () => {
        const file = join(dir, 'pipelines', 'accounts.yaml');
        const good = ACCOUNTS.replace('validation:\n', 'validation:\n  extract: { minRows: 1 }\n');
        writeFileSync(file, edit(good));
        try {
          let err: unknown;
          try {
            loadProject(dir);
          } catch (e) {
            err = e;
          }
          expect(err).toBeInstanceOf(ConfigError);
          expect((err as Error).message.startsWith(message)).toBe(true);
          expect(exitCodeFor(err)).toBe(2);
        } finally {
          writeFileSync(file, good);
        }
        await unchanged();
      });
    }
  });

  it('a manifest that is not JSON', async () => {
    const { runId, manifest } = await extracted();
    await stack.ctx.blobs.putText(CONTAINERS.raw, manifest, 'garbage{');
    await failsWith(runId, manifest, /^transform: malformed manifest raw\/accounts\/.*\/_manifest\.json: not JSON \(truncated or corrupt\)/);
  });

  it('a truncated manifest', async () => {
    const { runId, manifest } = await extracted();
    const text = (await stack.ctx.blobs.getText(CONTAINERS.raw, manifest))!;
    await stack.ctx.blobs.putText(CONTAINERS.raw, manifest, text.slice(0, Math.floor(text.length / 2)));
    await failsWith(runId, manifest, /^transform: malformed manifest .*: not JSON \(truncated or corrupt\)/);
  });

  it('a manifest pointing at a missing part', async () => {
    const { runId, manifest } = await extracted();
    const m = JSON.parse((await stack.ctx.blobs.getText(CONTAINERS.raw, manifest))!);
    m.parts[1].name = `accounts/${runId}/part-00099.parquet`;
    await stack.ctx.blobs.putText(CONTAINERS.raw, manifest, JSON.stringify(m));
    await failsWith(runId, manifest, `transform: malformed manifest raw/${manifest}: part accounts/${runId}/part-00099.parquet is missing from storage`);
  });

  it('a Parquet part whose schema differs from its manifest', async () => {
    const { runId, manifest } = await extracted();
    const m = JSON.parse((await stack.ctx.blobs.getText(CONTAINERS.raw, manifest))!);
    const other = join(dir, 'other.parquet');
    await duckExec(':memory:', `copy (select 1::bigint as id, 'x' as name) to '${other}' (format parquet)`);
    await stack.ctx.blobs.uploadFile(CONTAINERS.raw, m.parts[0].name, other);
    m.parts[0].md5 = await md5File(other);
    m.parts[0].rows = 1;
    await stack.ctx.blobs.putText(CONTAINERS.raw, manifest, JSON.stringify(m));
    await failsWith(runId, manifest, /^transform: the parts of raw\/accounts\/.*\/_manifest\.json do not have the schema their manifest declares/);
  });

  it('duplicate keys in a full extract', async () => {
    await duckExec(join(dir, 'source.duckdb'), `insert into crm.accounts values (7, 'again', 'c0', 1.00)`);
    try {
      const { runId, manifest } = await extracted();
      await failsWith(
        runId,
        manifest,
        "transform: duplicate keys in the extract of accounts: (7) ×2; a full read is the whole table, where the key must be unique: fix the source, widen the key, or keep one row per key in transform.sql (e.g. QUALIFY row_number() OVER (PARTITION BY id ORDER BY …) = 1)",
      );
    } finally {
      await duckExec(join(dir, 'source.duckdb'), `delete from crm.accounts where name = 'again'`);
    }
  });

  it('zero rows where the pipeline expects some (validation.extract.minRows), e.g. an emptied source table', async () => {
    await duckExec(join(dir, 'source.duckdb'), 'create table crm.keep as select * from crm.accounts', 'delete from crm.accounts');
    try {
      const { runId, manifest } = await extracted();
      await failsWith(
        runId,
        manifest,
        'transform: extract validation failed (extract_min_rows: expected >= 1, got 0); nothing was transformed or merged. Fix the source or pipelines/accounts.yaml validation.extract',
      );
    } finally {
      await duckExec(join(dir, 'source.duckdb'), 'insert into crm.accounts select * from crm.keep', 'drop table crm.keep');
    }
  });

  describe('HTTP bodies and names', () => {
    const post = (pipeline: string, bodyText: string) => handleStartRun(stack.ctx, { pipeline, bodyText, baseUrl: 'http://localhost:7071' });

    it('malformed, oversized and unknown-field bodies are 4xx with a message; no run starts', async () => {
      const before = (await listRuns(stack.ctx.tables, 'accounts', 1000)).length;
      expect(await post('accounts', '{"mode": "full"')).toEqual({ status: 400, jsonBody: { error: expect.stringMatching(/^body is not valid JSON: /) } });
      expect(await post('accounts', JSON.stringify({ mode: 'full', pad: 'x'.repeat(MAX_BODY_BYTES) }))).toEqual({
        status: 413,
        jsonBody: { error: `body larger than ${MAX_BODY_BYTES} bytes` },
      });
      expect(await post('accounts', '{"mode":"full","drop":"table"}')).toEqual({
        status: 400,
        jsonBody: { error: 'invalid body', fields: [{ path: '(root)', message: 'Unrecognized key: "drop"' }] },
      });
      expect(await post('accounts', '{"mode":"everything"}')).toMatchObject({ status: 400, jsonBody: { error: 'invalid body', fields: [{ path: 'mode' }] } });
      expect((await listRuns(stack.ctx.tables, 'accounts', 1000)).length).toBe(before);
      await unchanged();
    });

    it('pipeline names with path traversal or injection characters are refused (HTTP, CLI)', async () => {
      for (const name of ['../accounts', 'accounts/../x', "accounts'; drop table dw.dim_account; --", 'ACCOUNTS', '%2e%2e%2faccounts', '']) {
        expect(await post(name, '')).toEqual({
          status: 400,
          jsonBody: { error: 'invalid pipeline name: lowercase letters, digits and _', fields: [{ path: 'name', message: 'invalid' }] },
        });
      }
      const saved = process.env.AzureWebJobsStorage;
      process.env.AzureWebJobsStorage = az.connectionString;
      try {
        const err = await runCommand.run(['../accounts', '--project', dir, '--json']).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect((err as Error).message).toBe('invalid pipeline name "../accounts": use lowercase letters, digits and _, starting with a letter (at most 63)');
        expect(exitCodeFor(err)).toBe(2);
      } finally {
        if (saved === undefined) delete process.env.AzureWebJobsStorage;
        else process.env.AzureWebJobsStorage = saved;
      }
      await unchanged();
    });

    it('queue messages with bad names or run ids go straight to poison and touch no run', async () => {
      const runsBefore = await listRuns(stack.ctx.tables, 'accounts', 1000);
      const q = storageOf(az.connectionString).queues;
      const bad = [
        { pipeline: '../accounts', runId: '20260101T000000Z-abcd' },
        { pipeline: 'accounts', runId: "x' or '1'='1" },
        { pipeline: 'accounts', runId: '../../state/accounts' },
        { pipeline: 'accounts', runId: runsBefore[0]!.runId, extra: 'field' },
      ];
      for (const b of bad) await q.send('merge', b);
      await drain(stack);
      const poisoned = await q.service.getQueueClient('merge-poison').receiveMessages({ numberOfMessages: 32 });
      expect(poisoned.receivedMessageItems.length).toBe(bad.length);
      expect(await listRuns(stack.ctx.tables, 'accounts', 1000)).toEqual(runsBefore);
      await unchanged();
    });

    it('blob names outside the manifest layout are ignored by the transform trigger', async () => {
      for (const name of ['../accounts/20260101T000000Z-abcd/_manifest.json', 'accounts/../../x/_manifest.json', 'accounts/20260101T000000Z-abcd/../_manifest.json']) {
        expect(await transformStage(stack.ctx, name)).toBe('skipped');
      }
      await unchanged();
    });
  });
});
