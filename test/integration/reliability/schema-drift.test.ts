import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAzurite, type AzuriteHandle } from '../../../shared/local/azurite.js';
import { duckExec, duckQuery, makeProject } from '../../support/project.js';
import { HOUR, T0, drain, openFaultyStack, pipelineState, runThroughHost } from '../../support/reliability.js';

const pipeline = (name: string, policy: 'evolve' | 'fail') => `name: ${name}
source:
  connection: SRC
  table: crm.${name}
  changeDetection: { mode: full }
  schemaDrift: ${policy}
key: [id]
target:
  warehouse: WH
  table: dw.${name}
validation:
  rowCount: exact
retry: { attempts: 1, backoff: fixed, initialDelay: 10ms }
`;

describe('source schema drift under the pipeline policy (source.schemaDrift)', () => {
  let az: AzuriteHandle;
  let dir: string;
  const clock = { t: T0 };
  const src = () => join(dir, 'source.duckdb');

  beforeAll(async () => {
    az = await startAzurite();
    dir = makeProject({ pipelines: { evolving: pipeline('evolving', 'evolve'), strict: pipeline('strict', 'fail') } });
    await duckExec(
      src(),
      'create schema crm',
      `create table crm.evolving (id integer, name varchar, city varchar)`,
      `insert into crm.evolving values (1, 'a', 'x'), (2, 'b', 'y')`,
      `create table crm.strict (id integer, name varchar)`,
      `insert into crm.strict values (1, 'a')`,
    );
  });
  afterAll(async () => {
    await az?.stop();
  });

  it('evolve: an added column is added to the target; a dropped one is NULL in new versions; a retyped one is refused by the merge and changes nothing', async () => {
    const stack = await openFaultyStack({ az, dir, clock });
    try {
      expect((await runThroughHost(stack, 'evolving')).status).toBe('succeeded');
      await duckExec(src(), `alter table crm.evolving add column email varchar`, `update crm.evolving set email = 'e' || id`);
      clock.t += HOUR;
      const added = await runThroughHost(stack, 'evolving');
      expect(added.error).toBeUndefined();
      expect(added.status).toBe('succeeded');
      const wh = join(dir, 'warehouse.duckdb');
      expect(await duckQuery(wh, `select id, name, city, email from dw.evolving where _tm_is_current order by id`)).toEqual([
        { id: 1, name: 'a', city: 'x', email: 'e1' },
        { id: 2, name: 'b', city: 'y', email: 'e2' },
      ]);

      await duckExec(src(), `alter table crm.evolving drop column city`);
      clock.t += HOUR;
      const dropped = await runThroughHost(stack, 'evolving');
      expect(dropped.error).toBeUndefined();
      expect(dropped.status).toBe('succeeded');
      expect(await duckQuery(wh, `select id, name, city, email from dw.evolving where _tm_is_current order by id`)).toEqual([
        { id: 1, name: 'a', city: null, email: 'e1' },
        { id: 2, name: 'b', city: null, email: 'e2' },
      ]);

      await drain(stack);
      const before = await pipelineState(stack, dir, 'evolving', 'dw.evolving');
      await duckExec(src(), `alter table crm.evolving alter column name type integer using length(name)`);
      clock.t += HOUR;
      const retyped = await runThroughHost(stack, 'evolving');
      expect(retyped.status).toBe('failed');
      // evolve leaves types to the merge, which refuses a change unless target.allowTypeWidening.
      expect(retyped.error).toMatch(/^merge: type change in dw\.evolving\.name: target has VARCHAR, source now gives INTEGER; .*allowTypeWidening/);
      const after = await pipelineState(stack, dir, 'evolving', 'dw.evolving');
      expect(after.dimension).toEqual(before.dimension);
      expect(after.checkpoint).toEqual(before.checkpoint);
    } finally {
      await stack.close();
    }
  });

  it('fail: any column change is refused with the columns named; nothing changes', async () => {
    const stack = await openFaultyStack({ az, dir, clock });
    try {
      expect((await runThroughHost(stack, 'strict')).status).toBe('succeeded');
      await drain(stack);
      const before = await pipelineState(stack, dir, 'strict', 'dw.strict');
      await duckExec(src(), `alter table crm.strict add column email varchar`);
      clock.t += HOUR;
      const r = await runThroughHost(stack, 'strict');
      expect(r.status).toBe('failed');
      expect(r.error).toBe(
        'transform: the source of strict changed its columns since the last committed run (added email VARCHAR) and pipelines/strict.yaml has source.schemaDrift: fail; nothing was changed. Update the pipeline for the new columns, or set source.schemaDrift: evolve',
      );
      const after = await pipelineState(stack, dir, 'strict', 'dw.strict');
      expect(after.dimension).toEqual(before.dimension);
      expect(after.checkpoint).toEqual(before.checkpoint);
    } finally {
      await stack.close();
    }
  });
});
