import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLocalStack, runOnce, type LocalStack } from '../../shared/local/stack.js';
import { readCheckpoint } from '../../shared/state/checkpoints.js';
import { listRuns } from '../../shared/state/runs.js';
import { TABLES } from '../../shared/storage/layout.js';
import type { ValidationRow } from '../../shared/state/validations.js';
import { withAzurite } from '../support/azurite.js';
import { duckExec, duckQuery, makeProject } from '../support/project.js';
import type { AzuriteHandle } from '../../shared/local/azurite.js';

const PIPELINE = `name: accounts
source:
  connection: SRC
  table: crm.accounts
  changeDetection: { mode: full }
key: [id]
transform:
  sql: select id, trim(name) as name, lower(email) as email, city from extract
target:
  warehouse: WH
  table: dw.dim_account
  deletes: retire
validation:
  rowCount: exact
  checksumColumns: [id, email]
`;

describe('the whole chain on Azurite + DuckDB, run twice', () => {
  let az: AzuriteHandle;
  let stack: LocalStack;
  let dir: string;
  const clock = { t: Date.parse('2026-01-01T00:00:00Z') };

  beforeAll(async () => {
    az = await withAzurite();
    dir = makeProject({ pipelines: { accounts: PIPELINE } });
    await duckExec(
      join(dir, 'source.duckdb'),
      'create schema crm',
      `create table crm.accounts (id integer, name varchar, email varchar, city varchar)`,
      `insert into crm.accounts values (1, ' Ann ', 'ANN@X.COM', 'Oslo'), (2, 'Bob', 'bob@x.com', 'Rome'), (3, 'Cy', null, 'Lima')`,
    );
    stack = await openLocalStack({ projectDir: dir, connectionString: az.connectionString, now: () => new Date(clock.t) });
  });
  afterAll(async () => {
    await stack?.close();
    await az?.stop();
  });

  it('loads, then applies an update, a delete, an insert and a touched row as SCD2', async () => {
    const first = await runOnce(stack, { pipeline: 'accounts' });
    expect(first.status).toBe('succeeded');
    expect(first.counts).toMatchObject({ extracted: 3, inserted: 3, updated: 0, deleted: 0, unchanged: 0 });

    await duckExec(
      join(dir, 'source.duckdb'),
      `update crm.accounts set city = 'Bergen' where id = 1`,
      `update crm.accounts set name = 'Bob' where id = 2`, // touched, same value
      `delete from crm.accounts where id = 3`,
      `insert into crm.accounts values (4, 'Dee', 'dee@x.com', 'Kyiv')`,
    );
    clock.t += 3_600_000;
    const second = await runOnce(stack, { pipeline: 'accounts' });
    expect(second.status).toBe('succeeded');
    expect(second.counts).toMatchObject({ extracted: 3, inserted: 1, updated: 1, deleted: 1, unchanged: 1 });

    const rows = await duckQuery<Record<string, unknown>>(
      join(dir, 'warehouse.duckdb'),
      `select id, name, email, city, strftime(_tm_valid_from, '%Y-%m-%dT%H:%M:%S') vf, strftime(_tm_valid_to, '%Y-%m-%dT%H:%M:%S') vt,
              _tm_is_current cur, _tm_is_deleted del, _tm_run_id run from dw.dim_account order by id, _tm_valid_from`,
    );
    const h0 = '2026-01-01T00:00:00';
    const h1 = '2026-01-01T01:00:00';
    expect(rows).toEqual([
      { id: 1, name: 'Ann', email: 'ann@x.com', city: 'Oslo', vf: h0, vt: h1, cur: false, del: false, run: first.runId },
      { id: 1, name: 'Ann', email: 'ann@x.com', city: 'Bergen', vf: h1, vt: null, cur: true, del: false, run: second.runId },
      { id: 2, name: 'Bob', email: 'bob@x.com', city: 'Rome', vf: h0, vt: null, cur: true, del: false, run: first.runId },
      { id: 3, name: 'Cy', email: null, city: 'Lima', vf: h0, vt: h1, cur: false, del: false, run: first.runId },
      { id: 4, name: 'Dee', email: 'dee@x.com', city: 'Kyiv', vf: h1, vt: null, cur: true, del: false, run: second.runId },
    ]);

    const { checkpoint } = await readCheckpoint(stack.ctx.tables, 'accounts');
    expect(checkpoint.lastRunId).toBe(second.runId);
    expect(checkpoint.snapshot).toBe(`accounts/snapshots/${second.runId}.json`);
    expect(checkpoint.history.map((h) => h.runId)).toEqual([first.runId, second.runId]);

    const runs = await listRuns(stack.ctx.tables, 'accounts');
    expect(runs.map((r) => [r.runId, r.status, r.stage])).toEqual([
      [second.runId, 'succeeded', 'done'],
      [first.runId, 'succeeded', 'done'],
    ]);

    const v = (await stack.ctx.tables.list<ValidationRow>(TABLES.validations, 'accounts')).filter((r) => r.runId === second.runId);
    expect(v.map((r) => [r.check, r.passed, r.expected === r.actual])).toEqual([
      ['checksum', true, true],
      ['row_count', true, true],
    ]);
    expect(v.find((r) => r.check === 'row_count')?.actual).toBe(3);

    const ledger = await duckQuery(join(dir, 'warehouse.duckdb'), `select run_id, inserted, updated, deleted from dw._tm_ledger order by run_id`);
    expect(ledger).toEqual([
      { run_id: first.runId, inserted: 3n, updated: 0n, deleted: 0n },
      { run_id: second.runId, inserted: 1n, updated: 1n, deleted: 1n },
    ]);
  });

  it('a third run with no source change changes nothing', async () => {
    clock.t += 3_600_000;
    const third = await runOnce(stack, { pipeline: 'accounts' });
    expect(third.status).toBe('succeeded');
    expect(third.counts).toMatchObject({ inserted: 0, updated: 0, deleted: 0, unchanged: 3 });
    const n = await duckQuery(join(dir, 'warehouse.duckdb'), `select count(*)::int n from dw.dim_account`);
    expect(n).toEqual([{ n: 5 }]);
  });
});
