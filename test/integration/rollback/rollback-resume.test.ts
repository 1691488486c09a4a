import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AzuriteHandle } from '../../../shared/local/azurite.js';
import { openLocalStack, runOnce, type LocalStack } from '../../../shared/local/stack.js';
import { rollbackPipeline } from '../../../shared/rollback/undo-runs.js';
import { readCheckpoint, rewindCheckpoint } from '../../../shared/state/checkpoints.js';
import { getRun, updateRun } from '../../../shared/state/runs.js';
import { withAzurite } from '../../support/azurite.js';
import { duckExec, duckQuery, makeProject } from '../../support/project.js';

const PIPELINE = `name: acc
source:
  connection: SRC
  table: crm.accounts
  changeDetection: { mode: full }
key: [id]
target:
  warehouse: WH
  table: dw.acc
`;

/**
 * The warehouse can hold a run the checkpoint does not (a crash between the merge commit and
 * the checkpoint commit, after which the run failed). Rollback must undo it too, or the
 * "latest version" reasoning of later undos would be wrong.
 */
describe('rollback of a run that merged but never reached the checkpoint (duckdb)', () => {
  let az: AzuriteHandle;
  let stack: LocalStack;
  let dir: string;
  const clock = { t: Date.parse('2026-06-01T00:00:00Z') };
  const table = () => duckQuery(join(dir, 'warehouse.duckdb'), 'select * from dw.acc order by id, _tm_valid_from');

  beforeAll(async () => {
    az = await withAzurite();
    dir = makeProject({ pipelines: { acc: PIPELINE } });
    await duckExec(
      join(dir, 'source.duckdb'),
      'create schema crm',
      'create table crm.accounts (id integer, name varchar)',
      `insert into crm.accounts values (1, 'Ann'), (2, 'Bob')`,
    );
    stack = await openLocalStack({ projectDir: dir, connectionString: az.connectionString, now: () => new Date(clock.t) });
  });
  afterAll(async () => {
    await stack?.close();
    await az?.stop();
  });

  it('undoes the merged-but-uncommitted run, and a repeated rollback is a no-op', async () => {
    const r1 = await runOnce(stack, { pipeline: 'acc' });
    const afterR1 = await table();
    await duckExec(join(dir, 'source.duckdb'), `update crm.accounts set name = 'Bobby' where id = 2`, `insert into crm.accounts values (3, 'Cy')`);
    clock.t += 3_600_000;
    const r2 = await runOnce(stack, { pipeline: 'acc' });
    expect(r2.counts).toMatchObject({ inserted: 1, updated: 1 });
    // Simulate the crash: the checkpoint never moved past r1, and the run ended failed.
    await rewindCheckpoint(stack.ctx.tables, 'acc', r1.runId, new Date(clock.t));
    // A state no transition leads to (succeeded → failed), written past the lifecycle's check.
    await updateRun(stack.ctx.tables, 'acc', r2.runId, (r) => ({ ...r, status: 'failed' }), undefined, { statusChange: true });

    clock.t += 60_000;
    const res = await rollbackPipeline(stack.ctx, { pipeline: 'acc', toRunId: r1.runId, by: 'test' });
    expect(res.undone).toEqual([r2.runId]);
    expect(await table()).toEqual(afterR1);
    expect((await getRun(stack.ctx.tables, 'acc', r2.runId)).status).toBe('rolled_back');
    expect((await readCheckpoint(stack.ctx.tables, 'acc')).checkpoint.lastRunId).toBe(r1.runId);

    const again = await rollbackPipeline(stack.ctx, { pipeline: 'acc', toRunId: r1.runId, by: 'test' });
    expect(again.undone).toEqual([]);
    expect(await table()).toEqual(afterR1);
  });
});
