import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AzuriteHandle } from '../../../shared/local/azurite.js';
import { openLocalStack, runOnce, type LocalStack } from '../../../shared/local/stack.js';
import { queryAsOf } from '../../../shared/rollback/as-of.js';
import { getPipeline, warehouseOf } from '../../../shared/config/load.js';
import { backupBeforeMerge, dropExpiredBackups, listBackups, restoreBackup } from '../../../shared/rollback/backups.js';
import { handleRestore, handleRollback } from '../../../shared/rollback/http.js';
import { readCheckpoint } from '../../../shared/state/checkpoints.js';
import { getRun } from '../../../shared/state/runs.js';
import { withAzurite } from '../../support/azurite.js';
import { startPostgres, type PostgresHandle } from '../../support/postgres.js';
import { freshTsqlDatabase, tsqlEngine } from '../../support/tsql-engine.js';
import { warmWarehouseFor } from '../../support/tsql-pool.js';

// The mssql warehouse runs on the T-SQL engine when there is one (test/support/tsql-engine.ts).
const engine = await tsqlEngine();
import { duckExec, makeProject } from '../../support/project.js';
import { readDimension, type WarehouseKind } from '../../support/scd-harness.js';
import { projectYaml, whQuery } from '../../support/warehouse-sql.js';

const PIPELINE = (name: string) => `name: ${name}
source:
  connection: SRC
  table: crm.accounts
  changeDetection: { mode: timestamp, column: changed_at }
key: [id]
target:
  warehouse: WH
  table: dw.${name}
backup: { keep: 2d }
`;

let az: AzuriteHandle;
let pgh: PostgresHandle;
let ms: { url: string; drop(): Promise<void> } | undefined;
beforeAll(async () => {
  [az, pgh] = await Promise.all([withAzurite(), startPostgres()]);
  if ('url' in engine) ms = await freshTsqlDatabase(engine.url, 'tm_backups');
});
afterAll(async () => {
  await ms?.drop();
  await az?.stop();
  await pgh?.stop();
});

describe.each(['duckdb', 'postgres', ...('url' in engine ? ['mssql'] : [])] as WarehouseKind[])('backups before a full refresh, restore, expiry, admin routes, point in time (%s)', (kind) => {
  let stack: LocalStack;
  let dir: string;
  const P = kind === 'duckdb' ? 'bk_dk' : kind === 'postgres' ? 'bk_pg' : 'bk_ms';
  const url = () => (kind === 'mssql' ? ms!.url : pgh.url);
  const clock = { t: Date.parse('2026-05-01T00:00:00Z') };
  const q = (sql: string) => whQuery(kind, dir, url(), sql);
  const table = () => readDimension(kind, kind === 'duckdb' ? join(dir, 'warehouse.duckdb') : url(), `dw.${P}`, ['id', 'name', '_tm_row_hash', '_tm_version_key'], ['id']);

  beforeAll(async () => {
    dir = makeProject({ tidemark: projectYaml(kind), pipelines: { [P]: PIPELINE(P) } });
    await duckExec(
      join(dir, 'source.duckdb'),
      'create schema crm',
      'create table crm.accounts (id integer, name varchar, changed_at timestamp)',
      `insert into crm.accounts values (1, 'Ann', '2026-04-30 10:00:00'), (2, 'Bob', '2026-04-30 10:00:00'), (3, 'Cy', '2026-04-30 10:00:00')`,
    );
    stack = await openLocalStack({ projectDir: dir, connectionString: az.connectionString, env: { ...process.env, TIDEMARK_TEST_WH: url() }, now: () => new Date(clock.t), warehouseFor: warmWarehouseFor });
  });
  afterAll(async () => {
    await stack?.close();
  });

  let r1: string;
  let r2: string;
  let afterR1: Array<Record<string, string | null>>;
  let afterR2: Array<Record<string, string | null>>;

  it('copies the target before a full refresh (not before a first load into nothing, nor when that merge is delivered again) and restores it, rewinding state', async () => {
    r1 = (await runOnce(stack, { pipeline: P })).runId;
    expect(await listBackups(stack.ctx, P)).toEqual([]);
    afterR1 = await table();
    // The first load's merge delivered again once it committed (the message outlived its
    // visibility while the first delivery ran): the target exists now, but it is the load.
    const p = getPipeline(stack.ctx.project, P);
    const wh = stack.ctx.warehouseFor(stack.ctx, warehouseOf(stack.ctx.project, p), p);
    try {
      expect(await backupBeforeMerge(stack.ctx, p, { runId: r1, mode: 'incremental' }, null, wh)).toBeUndefined();
    } finally {
      await wh.close();
    }
    expect(await listBackups(stack.ctx, P)).toEqual([]);

    await duckExec(join(dir, 'source.duckdb'), `update crm.accounts set name = 'Bobby' where id = 2`, 'delete from crm.accounts where id = 3');
    const t1 = (clock.t += 3_600_000);
    const full = await runOnce(stack, { pipeline: P, mode: 'full' });
    expect(full.status).toBe('succeeded');
    expect(full.counts).toMatchObject({ updated: 1, deleted: 1, unchanged: 1 });
    r2 = full.runId;
    afterR2 = await table();
    const [b] = await listBackups(stack.ctx, P);
    expect(b).toMatchObject({ backupId: r2, baseRunId: r1, reason: 'full-refresh', table: `dw.${P}__tm_bk_${r2.replace('-', '_').toLowerCase()}`, rows: 3 });
    expect(Date.parse(b!.expiresAt) - Date.parse(b!.createdAt)).toBe(2 * 86_400_000);
    const copy = await readDimension(kind, kind === 'duckdb' ? join(dir, 'warehouse.duckdb') : url(), b!.table, ['id', 'name', '_tm_row_hash', '_tm_version_key'], ['id']);
    expect(copy).toEqual(afterR1);

    clock.t += 60_000;
    const res = await restoreBackup(stack.ctx, { pipeline: P, backupId: r2, by: 'test' });
    expect(res).toMatchObject({ undone: [r2], checkpointRunId: r1, rows: 3 });
    expect(await table()).toEqual(afterR1);
    expect(await q(`select run_id from dw._tm_ledger where pipeline = '${P}' order by 1`)).toEqual([{ run_id: r1 }]);
    expect((await readCheckpoint(stack.ctx.tables, P)).checkpoint.lastRunId).toBe(r1);
    expect((await getRun(stack.ctx.tables, P, r2)).status).toBe('rolled_back');

    // Re-run the full refresh at the same instant: the same history as never having restored.
    clock.t = t1;
    const again = await runOnce(stack, { pipeline: P, mode: 'full' });
    expect(again.status).toBe('succeeded');
    expect((await table()).map((r) => ({ ...r, run: r.run === again.runId ? r2 : r.run }))).toEqual(afterR2);
  });

  it('reads the dimension as of a point in time', async () => {
    const names = async (at: string) => (await queryAsOf(stack.ctx, { pipeline: P, at })).map((r) => [Number(r.id), r.name]);
    expect(await names('2026-05-01T00:30:00Z')).toEqual([[1, 'Ann'], [2, 'Bob'], [3, 'Cy']]);
    expect(await names('2026-05-01T01:00:00Z')).toEqual([[1, 'Ann'], [2, 'Bobby']]);
    expect(await names('2026-05-01 00:59:59')).toEqual([[1, 'Ann'], [2, 'Bob'], [3, 'Cy']]);
    expect(await names('2026-04-01T00:00:00Z')).toEqual([]);
    await expect(queryAsOf(stack.ctx, { pipeline: P, at: 'yesterday' })).rejects.toThrow(/invalid --as-of "yesterday": give an ISO-8601 time/);
  });

  it('admin routes: rollback and restore validate input and map refusals to 409', async () => {
    const { checkpoint } = await readCheckpoint(stack.ctx.tables, P);
    const last = checkpoint.lastRunId!;
    expect(await handleRollback(stack.ctx, { pipeline: 'nope', bodyText: '{"toRunId":"20260101T000000Z-0000"}' })).toMatchObject({ status: 404 });
    expect(await handleRollback(stack.ctx, { pipeline: 'Bad-Name', bodyText: '{}' })).toMatchObject({ status: 400 });
    expect(await handleRollback(stack.ctx, { pipeline: P, bodyText: '{"toRunId":"drop table x"}' })).toMatchObject({
      status: 400,
      jsonBody: { error: 'invalid body', fields: [{ path: 'toRunId', message: expect.stringContaining('run id') }] },
    });
    expect(await handleRollback(stack.ctx, { pipeline: P, bodyText: '{not json' })).toMatchObject({ status: 400 });
    const refused = await handleRollback(stack.ctx, { pipeline: P, bodyText: JSON.stringify({ toRunId: r2 }) });
    expect(refused).toMatchObject({ status: 409, jsonBody: { error: expect.stringContaining('was itself rolled back') } });
    const ok = await handleRollback(stack.ctx, { pipeline: P, bodyText: JSON.stringify({ toRunId: r1 }) });
    expect(ok).toEqual({ status: 200, jsonBody: { pipeline: P, toRunId: r1, undone: [last] } });
    expect(await table()).toEqual(afterR1);
    expect(await handleRestore(stack.ctx, { pipeline: P, bodyText: '{"backupId":"20200101T000000Z-0000"}' })).toMatchObject({ status: 404 });
  });

  it('drops expired backups (table and record); an expired backup cannot be restored', async () => {
    const before = await listBackups(stack.ctx, P);
    expect(before.length).toBe(2);
    clock.t += 3 * 86_400_000;
    const dropped = await dropExpiredBackups(stack.ctx);
    expect(dropped.filter((d) => d.startsWith(`${P}/`)).sort()).toEqual(before.map((b) => `${P}/${b.backupId}`).sort());
    expect(await listBackups(stack.ctx, P)).toEqual([]);
    const left = await q(`select table_name from information_schema.tables where table_name like '${P}__tm_bk_%'`);
    expect(left).toEqual([]);
    await expect(restoreBackup(stack.ctx, { pipeline: P, backupId: before[0]!.backupId, by: 'test' })).rejects.toThrow(/not found/);
  });
});
