import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLocalStack, runOnce, type LocalStack } from '../../../shared/local/stack.js';
import { rollbackPipeline } from '../../../shared/rollback/undo-runs.js';
import { startRun } from '../../../shared/engine/start-run.js';
import { readCheckpoint } from '../../../shared/state/checkpoints.js';
import { getRun, listRuns } from '../../../shared/state/runs.js';
import { duckExec, duckQuery, makeProject } from '../../support/project.js';
import { useWarehouseEngines } from '../../support/warehouse-engines.js';
import { warmWarehouseFor } from '../../support/tsql-pool.js';
import { tsqlQuery } from '../../support/tsql-sql.js';

// The mssql warehouse runs on the T-SQL engine when there is one (test/support/tsql-engine.ts).
import { readDimension, type WarehouseKind } from '../../support/scd-harness.js';

const pipeline = (name: string, deletes: string) => `name: ${name}
source:
  connection: SRC
  table: crm.accounts
  changeDetection: { mode: full }
key: [id]
target:
  warehouse: WH
  table: dw.${name}
  deletes: ${deletes}
validation:
  rowCount: exact
  checksumColumns: [id, email]
`;

type Row = Record<string, unknown>;

const engines = await useWarehouseEngines('tm_rollback');
const hasTsql = engines.kinds.includes('mssql');

const CASES: Array<[WarehouseKind, string]> = [
  ['duckdb', 'retire'],
  ['duckdb', 'mark'],
  ['postgres', 'retire'],
  ['postgres', 'mark'],
  ...(hasTsql ? ([['mssql', 'retire'], ['mssql', 'mark']] as Array<[WarehouseKind, string]>) : []),
];

describe.each(CASES)('rollback on %s (deletes: %s)', (kind, deletes) => {
  let stack: LocalStack;
  let dir: string;
  const name = `acc_${kind === 'duckdb' ? 'dk' : kind === 'postgres' ? 'pg' : 'ms'}_${deletes}`;
  const url = () => (kind === 'mssql' ? engines.ms()!.url : engines.pg().url);
  const clock = { t: Date.parse('2026-03-01T00:00:00Z') };
  const where = () => (kind === 'duckdb' ? join(dir, 'warehouse.duckdb') : url());

  /** The whole dimension, every column (SCD columns included) as text. */
  const table = async (): Promise<Row[]> =>
    (await readDimension(kind, where(), `dw.${name}`, ['id', 'name', 'email', 'city', '_tm_row_hash', '_tm_version_key'], ['id'])).map((r) => ({
      ...r,
      _tm_run_id: r.run,
    }));
  const ledger = async (): Promise<string[]> => {
    const sql = `select run_id from dw._tm_ledger where pipeline = '${name}' order by 1`;
    if (kind === 'duckdb') return (await duckQuery<{ run_id: string }>(where(), sql)).map((r) => r.run_id);
    if (kind === 'mssql') return (await tsqlQuery(url(), sql)).map((r) => String(r.run_id));
    const c = new pg.Client({ connectionString: engines.pg().url });
    await c.connect();
    try {
      return (await c.query(sql)).rows.map((r: { run_id: string }) => r.run_id);
    } finally {
      await c.end();
    }
  };

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
    await duckExec(
      join(dir, 'source.duckdb'),
      'create schema crm',
      'create table crm.accounts (id integer, name varchar, email varchar, city varchar)',
      `insert into crm.accounts values (1, 'Ann', 'ann@x.com', 'Oslo'), (2, 'Bob', 'bob@x.com', 'Rome'), (3, 'Cy', null, 'Lima')`,
    );
    stack = await openLocalStack({ projectDir: dir, connectionString: engines.az().connectionString, env: { ...process.env, TIDEMARK_TEST_WH: url() }, now: () => new Date(clock.t), warehouseFor: warmWarehouseFor });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('undoes a run that inserted, updated and deleted; running again gives the table of never having rolled back', async () => {
    const r1 = await runOnce(stack, { pipeline: name });
    expect(r1.status).toBe('succeeded');
    const afterR1 = await table();

    await duckExec(
      join(dir, 'source.duckdb'),
      `update crm.accounts set city = 'Bergen' where id = 1`,
      'delete from crm.accounts where id = 3',
      `insert into crm.accounts values (4, 'Dee', 'dee@x.com', 'Kyiv')`,
    );
    const t1 = (clock.t += 3_600_000);
    const r2 = await runOnce(stack, { pipeline: name });
    expect(r2.status).toBe('succeeded');
    expect(r2.counts).toMatchObject({ inserted: 1, updated: 1, deleted: 1, unchanged: 1 });
    const afterR2 = await table();
    expect(afterR2).not.toEqual(afterR1);

    clock.t += 60_000;
    const result = await rollbackPipeline(stack.ctx, { pipeline: name, toRunId: r1.runId, by: 'test' });
    expect(result.undone).toEqual([r2.runId]);
    expect(await table()).toEqual(afterR1);
    expect(await ledger()).toEqual([r1.runId]);
    const { checkpoint } = await readCheckpoint(stack.ctx.tables, name);
    expect(checkpoint.lastRunId).toBe(r1.runId);
    expect(checkpoint.snapshot).toBe(`${name}/snapshots/${r1.runId}.json`);
    expect(checkpoint.history.map((h) => h.runId)).toEqual([r1.runId]);
    expect((await getRun(stack.ctx.tables, name, r2.runId)).status).toBe('rolled_back');

    // The same source, re-run at the same instant: the changes re-apply exactly.
    clock.t = t1;
    const r3 = await runOnce(stack, { pipeline: name });
    expect(r3.status).toBe('succeeded');
    expect(r3.counts).toMatchObject({ inserted: 1, updated: 1, deleted: 1, unchanged: 1 });
    const rerun = (await table()).map((r) => (r.run === r3.runId ? { ...r, run: r2.runId, _tm_run_id: r2.runId } : r));
    expect(rerun).toEqual(afterR2);
    expect(r3.validations.every((v) => v.passed)).toBe(true);
  });

  it('undoes several runs newest first in one go', async () => {
    const { checkpoint: before } = await readCheckpoint(stack.ctx.tables, name);
    const first = before.history[0]!.runId;
    await duckExec(join(dir, 'source.duckdb'), `update crm.accounts set email = 'ann@y.com' where id = 1`, `insert into crm.accounts values (3, 'Cy', 'cy@x.com', 'Lima')`);
    clock.t += 7_200_000;
    const r4 = await runOnce(stack, { pipeline: name });
    expect(r4.status).toBe('succeeded');
    clock.t += 60_000;
    const result = await rollbackPipeline(stack.ctx, { pipeline: name, toRunId: first, by: 'test' });
    expect(result.undone).toEqual([r4.runId, before.lastRunId]);
    const rows = await table();
    expect(rows.map((r) => [r.id, r.city, r.email, r.cur, r.del, r.vt])).toEqual([
      ['1', 'Oslo', 'ann@x.com', 'true', 'false', null],
      ['2', 'Rome', 'bob@x.com', 'true', 'false', null],
      ['3', 'Lima', null, 'true', 'false', null],
    ]);
    expect(await ledger()).toEqual([first]);
  });

  it('refuses what cannot be done safely, saying why', async () => {
    const { checkpoint } = await readCheckpoint(stack.ctx.tables, name);
    const committed = checkpoint.lastRunId!;
    const runs = await listRuns(stack.ctx.tables, name);
    const rolledBack = runs.find((r) => r.status === 'rolled_back')!.runId;
    await expect(rollbackPipeline(stack.ctx, { pipeline: name, toRunId: rolledBack, by: 'test' })).rejects.toThrow(/was itself rolled back/);
    await expect(rollbackPipeline(stack.ctx, { pipeline: name, toRunId: '20200101T000000Z-abcd', by: 'test' })).rejects.toThrow(/not found/);
    await expect(rollbackPipeline(stack.ctx, { pipeline: name, toRunId: 'x; drop table', by: 'test' })).rejects.toThrow(/invalid run id/);
    clock.t += 60_000;
    const inFlight = await startRun(stack.ctx, { pipeline: name, trigger: 'cli' });
    await expect(rollbackPipeline(stack.ctx, { pipeline: name, toRunId: committed, by: 'test' })).rejects.toThrow(new RegExp(`${inFlight.runId}.*in flight`));
    await stack.host.runUntil(async () => (await getRun(stack.ctx.tables, name, inFlight.runId)).status === 'succeeded');
  });
});
