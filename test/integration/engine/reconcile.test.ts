import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLocalStack, runOnce, type LocalStack } from '../../../shared/local/stack.js';
import { previewReconcile, reconcileReportOf } from '../../../shared/engine/reconcile.js';
import { rollbackPipeline } from '../../../shared/rollback/undo-runs.js';
import { readCheckpoint } from '../../../shared/state/checkpoints.js';
import { getRun, isTerminalStatus } from '../../../shared/state/runs.js';
import { handleDryRun } from '../../../shared/engine/dry-run-http.js';
import { handleStartRun } from '../../../shared/engine/http-api.js';
import { duckExec, duckQuery, makeProject } from '../../support/project.js';
import { readDimension, type WarehouseKind } from '../../support/scd-harness.js';
import { useWarehouseEngines } from '../../support/warehouse-engines.js';
import { warmWarehouseFor } from '../../support/tsql-pool.js';
import { tsqlQuery } from '../../support/tsql-sql.js';

// The mssql warehouse runs on the T-SQL engine when there is one (test/support/tsql-engine.ts).

// A composite key (region, id) in timestamp mode: hard deletes in the source are invisible to
// incremental runs, which is what `reconcile --deletes` is for.
const pipeline = (name: string, deletes: string) => `name: ${name}
source:
  connection: SRC
  table: crm.accounts
  changeDetection: { mode: timestamp, column: updated_at }
key: [region, id]
target:
  warehouse: WH
  table: dw.${name}
  deletes: ${deletes}
validation:
  rowCount: exact
`;

const engines = await useWarehouseEngines('tm_reconcile');
const hasTsql = engines.kinds.includes('mssql');

const CASES: Array<[WarehouseKind, string]> = [
  ['duckdb', 'retire'],
  ['postgres', 'mark'],
  ...(hasTsql ? ([['mssql', 'retire']] as Array<[WarehouseKind, string]>) : []),
];

describe.each(CASES)('reconcile on %s (deletes: %s)', (kind, deletes) => {
  let stack: LocalStack;
  let dir: string;
  const name = `rec_${kind === 'duckdb' ? 'dk' : kind === 'postgres' ? 'pg' : 'ms'}_${deletes}`;
  const clock = { t: Date.parse('2026-03-01T00:00:00Z') };
  const url = () => (kind === 'mssql' ? engines.ms()!.url : engines.pg().url);
  const where = () => (kind === 'duckdb' ? join(dir, 'warehouse.duckdb') : url());
  const src = (...sql: string[]) => duckExec(join(dir, 'source.duckdb'), ...sql);
  const whExec = async (sql: string) => {
    if (kind === 'duckdb') return duckExec(where(), sql);
    if (kind === 'mssql') return void (await tsqlQuery(url(), sql.replace(/\band _tm_is_current$/, 'and _tm_is_current = 1')));
    const c = new pg.Client({ connectionString: engines.pg().url });
    await c.connect();
    try {
      await c.query(sql);
    } finally {
      await c.end();
    }
  };
  /** Keys current and not deleted in the warehouse, as "region/id". */
  const current = async (): Promise<string[]> =>
    (await readDimension(kind, where(), `dw.${name}`, ['region', 'id'], ['region', 'id']))
      .filter((r) => r.cur === 'true' && r.del === 'false')
      .map((r) => `${r.region}/${r.id}`)
      .sort();
  const tick = () => (clock.t += 3_600_000);

  beforeAll(async () => {
    dir = makeProject({
      tidemark: `storage: AzureWebJobsStorage
connections:
  SRC: { kind: duckdb, path: source.duckdb }
warehouses:
  WH: ${kind === 'duckdb' ? '{ kind: duckdb, path: warehouse.duckdb }' : `{ kind: ${kind}, setting: TIDEMARK_TEST_WH }`}
duckdb: { memoryLimit: 256MB, threads: 1 }
`,
      pipelines: { [name]: pipeline(name, deletes) },
    });
    await src(
      'create schema crm',
      'create table crm.accounts (region varchar, id integer, name varchar, updated_at timestamp)',
      `insert into crm.accounts values ('eu', 1, 'Ann', '2026-02-01'), ('eu', 2, 'Bob', '2026-02-01'), ('us', 1, 'Cy', '2026-02-01'), ('us', 2, 'Dee', null)`,
    );
    stack = await openLocalStack({ projectDir: dir, connectionString: engines.az().connectionString, env: { ...process.env, TIDEMARK_TEST_WH: url() }, now: () => new Date(clock.t), warehouseFor: warmWarehouseFor });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('finds hard deletes by keys alone, applies them as a run of its own, and rollback undoes it', async () => {
    const r1 = await runOnce(stack, { pipeline: name });
    expect(r1.status).toBe('succeeded');
    // Hard deletes, and a row with a NULL in one key column: an incremental run sees none of it.
    await src(`delete from crm.accounts where (region, id) in (('eu', 2), ('us', 1))`, `insert into crm.accounts values (null, 9, 'Nul', null)`);
    tick();
    const r2 = await runOnce(stack, { pipeline: name });
    expect(r2.status).toBe('succeeded');
    expect(r2.counts.deleted).toBe(0);
    expect(await current()).toEqual(['eu/1', 'eu/2', 'us/1', 'us/2']);

    const preview = await previewReconcile(stack.ctx, { pipeline: name, deletes: true, allowEmpty: false });
    expect(preview.report.snapshot).toMatchObject({ warehouseCurrent: 4, snapshotCurrent: 4, onlyInSnapshot: 0, onlyInWarehouse: 0, hashDiffers: 0 });
    // The row with id NULL... is (NULL, 9): counted, never a key; us/2 has a NULL change column and is still found.
    expect(preview.report.deletes).toEqual({ sourceKeys: 2, nullKeys: 1, absent: 2, sample: [{ region: 'eu', id: '2' }, { region: 'us', id: '1' }] });
    expect(preview.changes).toBe(true);
    // The preview changed nothing.
    expect(await current()).toEqual(['eu/1', 'eu/2', 'us/1', 'us/2']);
    expect((await readCheckpoint(stack.ctx.tables, name)).checkpoint.lastRunId).toBe(r2.runId);

    tick();
    const rec = await runOnce(stack, { pipeline: name, mode: 'reconcile', reconcile: { deletes: true, allowEmpty: false } });
    expect(rec.status, rec.error).toBe('succeeded');
    expect(rec.counts.deleted).toBe(2);
    expect((await getRun(stack.ctx.tables, name, rec.runId)).mode).toBe('reconcile');
    expect((await reconcileReportOf(stack.ctx, name, rec.runId))?.deletes?.absent).toBe(2);
    expect(await current()).toEqual(['eu/1', 'us/2']);
    const dim = await readDimension(kind, where(), `dw.${name}`, ['region', 'id'], ['region', 'id']);
    // retire closes the version; mark adds a deleted-flagged current version, both written by the reconcile run.
    const eu2 = dim.filter((r) => r.region === 'eu' && r.id === '2');
    if (deletes === 'mark') expect(eu2.map((r) => [r.cur, r.del, r.run === rec.runId])).toEqual([['false', 'false', false], ['true', 'true', true]]);
    else expect(eu2.map((r) => [r.cur, r.del])).toEqual([['false', 'false']]);
    const cp = (await readCheckpoint(stack.ctx.tables, name)).checkpoint;
    expect(cp.lastRunId).toBe(rec.runId);
    // The watermark is where the incremental run left it.
    expect(cp.watermark).toBe((await readCheckpoint(stack.ctx.tables, name)).checkpoint.history.at(-2)?.watermark ?? cp.watermark);

    // Afterwards the snapshot agrees with the warehouse and nothing is left to delete.
    const again = await previewReconcile(stack.ctx, { pipeline: name, deletes: true, allowEmpty: false });
    expect(again.changes).toBe(false);

    // Rollback undoes the reconcile like any run: the keys are current again, the checkpoint is back.
    const rb = await rollbackPipeline(stack.ctx, { pipeline: name, toRunId: r2.runId, by: 'test' });
    expect(rb.undone).toEqual([rec.runId]);
    expect(await current()).toEqual(['eu/1', 'eu/2', 'us/1', 'us/2']);
    expect((await readCheckpoint(stack.ctx.tables, name)).checkpoint.lastRunId).toBe(r2.runId);
    expect((await previewReconcile(stack.ctx, { pipeline: name, deletes: true, allowEmpty: false })).report.deletes?.absent).toBe(2);

    // Over HTTP: the dry run answers the preview; the body starts the same run, then an
    // incremental run goes on from it: an update is an update, no key reappears.
    const dry = await handleDryRun(stack.ctx, { pipeline: name, query: new URLSearchParams('dryRun=true&mode=reconcile&deletes=true') });
    expect(dry.status).toBe(200);
    expect(dry.jsonBody).toMatchObject({ dryRun: true, changes: true, report: { deletes: { absent: 2, nullKeys: 1 } } });
    const badBody = await handleStartRun(stack.ctx, { pipeline: name, bodyText: JSON.stringify({ mode: 'full', deletes: true }), baseUrl: 'http://x' });
    expect(badBody.status).toBe(400);
    tick();
    const started = await handleStartRun(stack.ctx, { pipeline: name, bodyText: JSON.stringify({ mode: 'reconcile', deletes: true }), baseUrl: 'http://x' });
    expect(started.status).toBe(202);
    const httpRunId = (started.jsonBody as { runId: string }).runId;
    await stack.host.runUntil(async () => isTerminalStatus((await getRun(stack.ctx.tables, name, httpRunId)).status));
    const httpRun = await getRun(stack.ctx.tables, name, httpRunId);
    expect([httpRun.status, httpRun.mode, httpRun.reconcile, httpRun.counts.deleted]).toEqual(['succeeded', 'reconcile', { deletes: true, allowEmpty: false }, 2]);
    await src(`update crm.accounts set name = 'Ann B', updated_at = '2026-02-02' where region = 'eu' and id = 1`);
    tick();
    const r3 = await runOnce(stack, { pipeline: name });
    expect(r3.status, r3.error).toBe('succeeded');
    expect(r3.counts).toMatchObject({ inserted: 0, updated: 1, deleted: 0 });
    expect(await current()).toEqual(['eu/1', 'us/2']);
  });

  it('rebuilds the snapshot from the warehouse and reports the keys that differed', async () => {
    // Someone removed a current version by hand and changed another's hash: the snapshot no longer matches.
    await whExec(`delete from dw.${name} where region = 'us' and id = 2`);
    // The hash is 16 bytes (hash rule 4): one zero byte stands for any other hash.
    await whExec(`update dw.${name} set _tm_row_hash = ${kind === 'mssql' ? '0x00' : `'\\x00'`} where region = 'eu' and id = 1 and _tm_is_current`);
    const preview = await previewReconcile(stack.ctx, { pipeline: name, deletes: false, allowEmpty: false });
    expect(preview.report.snapshot).toMatchObject({ onlyInSnapshot: 1, onlyInWarehouse: 0, hashDiffers: 1 });
    expect(preview.report.snapshot.sample).toEqual([
      { difference: 'hash_differs', key: { region: 'eu', id: '1' } },
      { difference: 'only_in_snapshot', key: { region: 'us', id: '2' } },
    ]);
    expect(preview.report.deletes).toBeNull();
    tick();
    const rec = await runOnce(stack, { pipeline: name, mode: 'reconcile' });
    expect(rec.status, rec.error).toBe('succeeded');
    expect(rec.counts.deleted).toBe(0);
    expect((await previewReconcile(stack.ctx, { pipeline: name, deletes: false, allowEmpty: false })).changes).toBe(false);
    // The next run compares against the rebuilt snapshot: us/2 is new to it (an insert), eu/1 a change.
    await src('delete from crm.accounts where region is null');
    tick();
    const r = await runOnce(stack, { pipeline: name, mode: 'full' });
    expect(r.status, r.error).toBe('succeeded');
    expect(r.counts).toMatchObject({ inserted: 1, updated: 1, deleted: 0 });
    expect(await current()).toEqual(['eu/1', 'us/2']);
  });

  it('refuses to delete every key when the source returns none, unless allowEmpty', async () => {
    await src('delete from crm.accounts');
    const preview = await previewReconcile(stack.ctx, { pipeline: name, deletes: true, allowEmpty: false });
    expect(preview.report.deletes).toMatchObject({ sourceKeys: 0, absent: 2 });
    expect(preview.refused).toMatch(/returned no key, so every one of the 2 current key\(s\) would be deleted; nothing was deleted.*--allow-empty/);
    tick();
    const refused = await runOnce(stack, { pipeline: name, mode: 'reconcile', reconcile: { deletes: true, allowEmpty: false } });
    expect(refused.status).toBe('failed');
    expect(refused.error).toMatch(/returned no key/);
    expect(await current()).toEqual(['eu/1', 'us/2']);
    tick();
    const allowed = await runOnce(stack, { pipeline: name, mode: 'reconcile', reconcile: { deletes: true, allowEmpty: true } });
    expect(allowed.status, allowed.error).toBe('succeeded');
    expect(allowed.counts.deleted).toBe(2);
    expect(await current()).toEqual([]);
  });
});

describe('reconcile refuses what it cannot do', () => {
  it('--deletes on a full-mode pipeline or one with deletes: ignore', async () => {
    const dir = makeProject({
      pipelines: {
        full_p: pipeline('full_p', 'retire').replace('{ mode: timestamp, column: updated_at }', '{ mode: full }'),
        ign_p: pipeline('ign_p', 'ignore'),
      },
    });
    const stack = await openLocalStack({ projectDir: dir, connectionString: engines.az().connectionString });
    try {
      await expect(runOnce(stack, { pipeline: 'full_p', mode: 'reconcile', reconcile: { deletes: true, allowEmpty: false } })).rejects.toThrow(/timestamp and rowversion pipelines; full_p is in full mode, which finds deletes on every run/);
      await expect(previewReconcile(stack.ctx, { pipeline: 'ign_p', deletes: true, allowEmpty: false })).rejects.toThrow(/deletes: ignore.*set deletes: retire or mark/);
      // Without a committed run there is nothing to rebuild.
      await expect(previewReconcile(stack.ctx, { pipeline: 'ign_p', deletes: false, allowEmpty: false })).rejects.toThrow(/no committed run yet/);
    } finally {
      await stack.close();
    }
  });
});
