import { describe, expect, it } from 'vitest';
import { pipelineSchema } from '../../../shared/config/schema.js';
import { planDuckExtract } from '../../../shared/extract/duckdb-source.js';
import { duckQuery } from '../../support/project.js';

const pipeline = pipelineSchema.parse({
  name: 'accounts',
  source: { connection: 'SRC', table: 'crm.accounts', changeDetection: { mode: 'timestamp', column: 'modified_at' } },
  key: ['id'],
  target: { warehouse: 'WH', table: 'dw.dim_account' },
});

describe('the DuckDB source planner', () => {
  it('casts the window bounds once to a TIMESTAMP column, not the column to TIMESTAMPTZ', () => {
    const plan = planDuckExtract(pipeline, { from: '2026-01-01T00:00:00.000Z', to: '2026-01-02T00:00:00.000Z', fullRead: false, columnType: 'TIMESTAMP' });
    expect(plan.select).toEqual({
      sql: 'SELECT * FROM "crm"."accounts" WHERE "modified_at" > CAST(CAST($1 AS TIMESTAMPTZ) AS TIMESTAMP) AND "modified_at" <= CAST(CAST($2 AS TIMESTAMPTZ) AS TIMESTAMP)',
      parameters: ['2026-01-01T00:00:00.000Z', '2026-01-02T00:00:00.000Z'],
    });
    expect(plan.countUpTo('2026-01-02T00:00:00.000Z').sql).toBe(
      'SELECT count(*)::BIGINT AS n FROM "crm"."accounts" WHERE "modified_at" <= CAST(CAST($1 AS TIMESTAMPTZ) AS TIMESTAMP)',
    );
  });

  it('keeps TIMESTAMPTZ bounds for other column types', () => {
    for (const columnType of [undefined, 'TIMESTAMP WITH TIME ZONE', 'DATE', 'TIMESTAMP_S']) {
      const plan = planDuckExtract(pipeline, { from: '2026-01-01T00:00:00.000Z', to: null, fullRead: false, ...(columnType ? { columnType } : {}) });
      expect(plan.select.sql).toBe('SELECT * FROM "crm"."accounts" WHERE "modified_at" > CAST($1 AS TIMESTAMPTZ)');
    }
  });

  it('selects the same rows either way, with the session in UTC', async () => {
    const rows = `(SELECT * FROM (VALUES (1, TIMESTAMP '2026-01-01 00:00:00'), (2, TIMESTAMP '2026-01-01 00:00:00.000001'), (3, TIMESTAMP '2026-01-02 00:00:00'), (4, TIMESTAMP '2026-01-02 00:00:00.000001')) t(id, modified_at))`;
    const pick = async (cmp: string) =>
      (await duckQuery<{ id: number }>(':memory:', `SET TimeZone = 'UTC'; SELECT id FROM ${rows} WHERE modified_at > ${cmp.replace('$', "'2026-01-01T00:00:00.000Z'")} AND modified_at <= ${cmp.replace('$', "'2026-01-02T00:00:00.000Z'")} ORDER BY id`)).map((r) => r.id);
    expect(await pick('CAST(CAST($ AS TIMESTAMPTZ) AS TIMESTAMP)')).toEqual([2, 3]);
    expect(await pick('CAST($ AS TIMESTAMPTZ)')).toEqual([2, 3]);
  });
});
