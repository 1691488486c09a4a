import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AzuriteHandle } from '../../../shared/local/azurite.js';
import { openLocalStack, runOnce, type LocalStack } from '../../../shared/local/stack.js';
import { queryAsOf } from '../../../shared/rollback/as-of.js';
import { dropExpiredBackups, listBackups, restoreBackup } from '../../../shared/rollback/backups.js';
import { handleRestore, handleRollback } from '../../../shared/rollback/http.js';
import { readCheckpoint } from '../../../shared/state/checkpoints.js';
import { getRun } from '../../../shared/state/runs.js';
import { withAzurite } from '../../support/azurite.js';
import { duckExec, duckQuery, makeProject } from '../../support/project.js';

const PIPELINE = `name: bk
source:
  connection: SRC
  table: crm.accounts
  changeDetection: { mode: timestamp, column: changed_at }
key: [id]
target:
  warehouse: WH
  table: dw.bk
backup: { keep: 2d }
`;

type Row = Record<string, unknown>;

describe('backups before a full refresh, restore, expiry, admin routes, point in time (duckdb)', () => {
  let az: AzuriteHandle;
  let stack: LocalStack;
  let dir: string;
  const clock = { t: Date.parse('2026-05-01T00:00:00Z') };
  const wh = () => join(dir, 'warehouse.duckdb');
  const table = () => duckQuery<Row>(wh(), `select * from dw.bk order by id, _tm_valid_from`);

  beforeAll(async () => {
    az = await withAzurite();
    dir = makeProject({ pipelines: { bk: PIPELINE } });
    await duckExec(
      join(dir, 'source.duckdb'),
      'create schema crm',
      'create table crm.accounts (id integer, name varchar, changed_at timestamp)',
      `insert into crm.accounts values (1, 'Ann', '2026-04-30 10:00:00'), (2, 'Bob', '2026-04-30 10:00:00'), (3, 'Cy', '2026-04-30 10:00:00')`,
    );
    stack = await openLocalStack({ projectDir: dir, connectionString: az.connectionString, now: () => new Date(clock.t) });
  });
  afterAll(async () => {
    await stack?.close();
    await az?.stop();
  });

  let r1: string;
  let r2: string;
  let afterR1: Row[];
  let afterR2: Row[];

  it('copies the target before a full refresh (not before a first load into nothing) and restores it, rewinding state', async () => {
    r1 = (await runOnce(stack, { pipeline: 'bk' })).runId;
    expect(await listBackups(stack.ctx, 'bk')).toEqual([]);
    afterR1 = await table();

    await duckExec(join(dir, 'source.duckdb'), `update crm.accounts set name = 'Bobby' where id = 2`, 'delete from crm.accounts where id = 3');
    const t1 = (clock.t += 3_600_000);
    const full = await runOnce(stack, { pipeline: 'bk', mode: 'full' });
    expect(full.status).toBe('succeeded');
    expect(full.counts).toMatchObject({ updated: 1, deleted: 1, unchanged: 1 });
    r2 = full.runId;
    afterR2 = await table();
    const [b] = await listBackups(stack.ctx, 'bk');
    expect(b).toMatchObject({ backupId: r2, baseRunId: r1, reason: 'full-refresh', table: `dw.bk__tm_bk_${r2.replace('-', '_').toLowerCase()}`, rows: 3 });
    expect(Date.parse(b!.expiresAt) - Date.parse(b!.createdAt)).toBe(2 * 86_400_000);
    expect(await duckQuery(wh(), `select * from ${b!.table} order by id, _tm_valid_from`)).toEqual(afterR1);

    clock.t += 60_000;
    const res = await restoreBackup(stack.ctx, { pipeline: 'bk', backupId: r2, by: 'test' });
    expect(res).toMatchObject({ undone: [r2], checkpointRunId: r1, rows: 3 });
    expect(await table()).toEqual(afterR1);
    expect(await duckQuery(wh(), `select run_id from dw._tm_ledger order by 1`)).toEqual([{ run_id: r1 }]);
    expect((await readCheckpoint(stack.ctx.tables, 'bk')).checkpoint.lastRunId).toBe(r1);
    expect((await getRun(stack.ctx.tables, 'bk', r2)).status).toBe('rolled_back');

    // Re-run the full refresh at the same instant: the same history as never having restored.
    clock.t = t1;
    const again = await runOnce(stack, { pipeline: 'bk', mode: 'full' });
    expect(again.status).toBe('succeeded');
    expect((await table()).map((r) => ({ ...r, _tm_run_id: r._tm_run_id === again.runId ? r2 : r._tm_run_id }))).toEqual(afterR2);
  });

  it('reads the dimension as of a point in time', async () => {
    const names = async (at: string) => (await queryAsOf(stack.ctx, { pipeline: 'bk', at })).map((r) => [r.id, r.name]);
    expect(await names('2026-05-01T00:30:00Z')).toEqual([[1, 'Ann'], [2, 'Bob'], [3, 'Cy']]);
    expect(await names('2026-05-01T01:00:00Z')).toEqual([[1, 'Ann'], [2, 'Bobby']]);
    expect(await names('2026-05-01 00:59:59')).toEqual([[1, 'Ann'], [2, 'Bob'], [3, 'Cy']]);
    expect(await names('2026-04-01T00:00:00Z')).toEqual([]);
    await expect(queryAsOf(stack.ctx, { pipeline: 'bk', at: 'yesterday' })).rejects.toThrow(/invalid --as-of "yesterday": give an ISO-8601 time/);
  });

  it('admin routes: rollback and restore validate input and map refusals to 409', async () => {
    const { checkpoint } = await readCheckpoint(stack.ctx.tables, 'bk');
    const last = checkpoint.lastRunId!;
    expect(await handleRollback(stack.ctx, { pipeline: 'nope', bodyText: '{"toRunId":"20260101T000000Z-0000"}' })).toMatchObject({ status: 404 });
    expect(await handleRollback(stack.ctx, { pipeline: 'Bad-Name', bodyText: '{}' })).toMatchObject({ status: 400 });
    expect(await handleRollback(stack.ctx, { pipeline: 'bk', bodyText: '{"toRunId":"drop table x"}' })).toMatchObject({
      status: 400,
      jsonBody: { error: 'invalid body', fields: [{ path: 'toRunId', message: expect.stringContaining('run id') }] },
    });
    expect(await handleRollback(stack.ctx, { pipeline: 'bk', bodyText: '{not json' })).toMatchObject({ status: 400 });
    const refused = await handleRollback(stack.ctx, { pipeline: 'bk', bodyText: JSON.stringify({ toRunId: r2 }) });
    expect(refused).toMatchObject({ status: 409, jsonBody: { error: expect.stringContaining('was itself rolled back') } });
    const ok = await handleRollback(stack.ctx, { pipeline: 'bk', bodyText: JSON.stringify({ toRunId: r1 }) });
    expect(ok).toEqual({ status: 200, jsonBody: { pipeline: 'bk', toRunId: r1, undone: [last] } });
    expect(await table()).toEqual(afterR1);
    expect(await handleRestore(stack.ctx, { pipeline: 'bk', bodyText: '{"backupId":"20200101T000000Z-0000"}' })).toMatchObject({ status: 404 });
  });

  it('drops expired backups (table and record); an expired backup cannot be restored', async () => {
    const before = await listBackups(stack.ctx, 'bk');
    expect(before.length).toBe(2);
    clock.t += 3 * 86_400_000;
    const dropped = await dropExpiredBackups(stack.ctx);
    expect(dropped.sort()).toEqual(before.map((b) => `bk/${b.backupId}`).sort());
    expect(await listBackups(stack.ctx, 'bk')).toEqual([]);
    const left = await duckQuery(wh(), `select table_name from information_schema.tables where table_name like 'bk__tm_bk_%'`);
    expect(left).toEqual([]);
    await expect(restoreBackup(stack.ctx, { pipeline: 'bk', backupId: before[0]!.backupId, by: 'test' })).rejects.toThrow(/not found/);
  });
});
