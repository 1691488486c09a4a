import { describe, expect, it } from 'vitest';
import { pipelineSchema } from '../../../shared/config/schema.js';
import { synapseRollbackStyle, postgresRollbackStyle } from '../../../shared/rollback/styles.js';
import { checkExtract } from '../../../shared/validate/extract.js';
import { renderRule, renderSampleQuery, ruleOutcome } from '../../../shared/validate/warehouse-checks.js';

const pipeline = (validation: unknown) =>
  pipelineSchema.parse({ name: 'p', source: { connection: 'S', table: 't' }, key: ['id'], target: { warehouse: 'W', table: 'dw.t' }, validation });

describe('extract checks', () => {
  const schema = [
    { name: 'id', type: 'INTEGER' },
    { name: 'name', type: 'VARCHAR' },
  ];
  const full = { window: { mode: 'full' as const, from: null, to: null, next: null } };
  it('nothing configured, nothing checked', () => {
    expect(checkExtract(pipeline({}), { rowCount: 0, schema, ...full })).toEqual([]);
  });
  it('minimum rows: at the minimum passes, below fails', () => {
    const p = pipeline({ extract: { minRows: 10 } });
    expect(checkExtract(p, { rowCount: 10, schema, ...full })[0]).toMatchObject({ check: 'extract_min_rows', passed: true });
    expect(checkExtract(p, { rowCount: 9, schema, ...full })[0]).toMatchObject({ passed: false, expected: '>= 10', actual: 9 });
  });
  it('minimum rows bound full reads only: a window read with no changes is not short (#14)', () => {
    const p = pipeline({ extract: { minRows: 10 } });
    const window = { mode: 'timestamp' as const, column: 'at', from: '2026-01-01T00:00:00.000000Z', to: '2026-01-01T00:00:00.000000Z', next: null };
    const read = (kind: 'full' | 'window' | 'empty') => ({ kind, from: null, to: null, rows: 0, nullChangeColumnRows: null });
    expect(checkExtract(p, { rowCount: 0, schema, window, read: read('window') })).toEqual([]);
    expect(checkExtract(p, { rowCount: 0, schema, window, read: read('empty') })).toEqual([]);
    // The first load of a timestamp pipeline is a full read: checked.
    expect(checkExtract(p, { rowCount: 0, schema, window: { ...window, from: null }, read: read('full') })[0]).toMatchObject({ check: 'extract_min_rows', passed: false });
    // A manifest of an older tidemark (no read record) is judged as it was: a window from a watermark is not full.
    expect(checkExtract(p, { rowCount: 0, schema, window })).toEqual([]);
  });
  it('schema: names and types (case and spacing of type names ignored), `any` skips the type', () => {
    expect(checkExtract(pipeline({ extract: { columns: { id: 'integer', name: 'any' } } }), { rowCount: 1, schema, ...full })[0]).toMatchObject({ passed: true });
    expect(checkExtract(pipeline({ extract: { columns: { id: 'BIGINT', gone: 'any' } } }), { rowCount: 1, schema, ...full })[0]).toMatchObject({
      passed: false,
      actual: 'id is INTEGER, expected BIGINT; gone missing',
    });
  });
});

describe('rule rendering', () => {
  const T = { schema: 'dw', name: 'dim' };
  it('fills placeholders with the dialect’s quoted names and binds the run id (synapse)', () => {
    const r = renderRule(synapseRollbackStyle, T, 'select count(*) from {{ current }} c join {{ledger}} l on l.run_id = {{run_id}} where c.x in (select x from {{target}})');
    expect(r).toEqual({
      sql: 'select count(*) from (SELECT * FROM [dw].[dim] WHERE [_tm_is_current] = 1 AND [_tm_is_deleted] = 0) c join [dw].[_tm_ledger] l on l.run_id = @p1 where c.x in (select x from [dw].[dim])',
      usesRunId: true,
      unknown: [],
    });
  });
  it('reports unknown placeholders instead of running them', () => {
    expect(renderRule(postgresRollbackStyle, T, 'select {{nope}}').unknown).toEqual(['nope']);
  });
  it('compares numbers numerically and strings exactly; no row fails', () => {
    expect(ruleOutcome(0, 0n)).toBe(true);
    expect(ruleOutcome(0, '0')).toBe(true);
    expect(ruleOutcome(2, 3)).toBe(false);
    expect(ruleOutcome(1.5, '1.50')).toBe(true);
    expect(ruleOutcome('ok', 'ok')).toBe(true);
    expect(ruleOutcome('ok', 'OK')).toBe(false);
    expect(ruleOutcome(0, null)).toBe(false);
  });
});

describe('sample query', () => {
  it('binds the sampled key texts (synapse T-SQL, golden)', () => {
    const st = renderSampleQuery('synapse', synapseRollbackStyle, ['id'], [{ name: 'id', type: { kind: 'integer', bits: 32 } }, { name: 'name', type: { kind: 'text' } }], { schema: 'dw', name: 'dim' }, ['id=1:1', 'id=1:2']);
    const key = "concat_ws('|', CASE WHEN [id] IS NULL THEN NULL ELSE 'id=' + CAST(LEN(CAST([id] AS VARCHAR(60)) + N'.') - 1 AS VARCHAR(20)) + ':' + CAST([id] AS VARCHAR(60)) END)";
    expect(st).toEqual({
      sql: `SELECT ${key} AS [_k], CAST([id] AS VARCHAR(60)) AS [c0], CAST([name] AS NVARCHAR(MAX)) AS [c1] FROM [dw].[dim] WHERE [_tm_is_current] = 1 AND [_tm_is_deleted] = 0 AND ${key} IN (@p1, @p2)`,
      parameters: ['id=1:1', 'id=1:2'],
    });
  });
});
