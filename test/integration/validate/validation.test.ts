import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRun } from '../../../shared/engine/start-run.js';
import type { AzuriteHandle } from '../../../shared/local/azurite.js';
import { openLocalStack, runOnce, type LocalStack } from '../../../shared/local/stack.js';
import { getRun } from '../../../shared/state/runs.js';
import { readValidations } from '../../../shared/state/validations.js';
import { acknowledge, HeldError } from '../../../shared/validate/hold.js';
import { listQuarantine } from '../../../shared/validate/quarantine.js';
import { withAzurite } from '../../support/azurite.js';
import { startPostgres, type PostgresHandle } from '../../support/postgres.js';
import { duckExec, makeProject } from '../../support/project.js';
import type { WarehouseKind } from '../../support/scd-harness.js';
import { projectYaml, whExec, whQuery } from '../../support/warehouse-sql.js';
import { freshTsqlDatabase, tsqlEngine } from '../../support/tsql-engine.js';
import { warmWarehouseFor } from '../../support/tsql-pool.js';

// The mssql warehouse runs on the T-SQL engine when there is one (test/support/tsql-engine.ts).
const engine = await tsqlEngine();

const base = (name: string, extra: string) => `name: ${name}
source:
  connection: SRC
  table: crm.accounts
  changeDetection: { mode: full }
key: [id]
target:
  warehouse: WH
  table: dw.${name}
${extra}`;

const CHECKED = (name: string) => base(
  name,
  `transform:
  sql: select id, name, lower(email) as email, city, score from extract
  rules:
    - { name: email_present, check: "email is not null", onFail: quarantine }
validation:
  rowCount: exact
  checksumColumns: [id, email]
  sample: 10
  holdOnFailure: true
  rules:
    - { name: one_current_per_key, sql: "select count(*) from (select id from {{current}} group by id having count(*) > 1) d", expect: 0 }
    - { name: rows_of_this_run, sql: "select count(*) from {{target}} where _tm_run_id = {{run_id}}", expect: 2 }
    - { name: ledger_has_run, sql: "select min(pipeline) from {{ledger}} where run_id = {{run_id}}", expect: ${name} }
`,
);

let az: AzuriteHandle;
let pgh: PostgresHandle;
let ms: { url: string; drop(): Promise<void> } | undefined;
afterAll(async () => {
  await ms?.drop();
});
beforeAll(async () => {
  [az, pgh] = await Promise.all([withAzurite(), startPostgres()]);
  if ('url' in engine) ms = await freshTsqlDatabase(engine.url, 'tm_validation');
});
afterAll(async () => {
  await az?.stop();
  await pgh?.stop();
});

describe.each(['duckdb', 'postgres', ...('url' in engine ? ['mssql'] : [])] as WarehouseKind[])('validation after the merge, extract validation, hold and quarantine (%s)', (kind) => {
  let stack: LocalStack;
  let dir: string;
  const sfx = kind === 'duckdb' ? 'dk' : kind === 'postgres' ? 'pg' : 'ms';
  const url = () => (kind === 'mssql' ? ms!.url : pgh.url);
  const C = `checked_${sfx}`;
  const n = (base: string) => `${base}_${sfx}`;
  const clock = { t: Date.parse('2026-04-01T00:00:00Z') };
  const events: Array<{ name: string; dims: Record<string, string> }> = [];

  beforeAll(async () => {
    dir = makeProject({
      tidemark: projectYaml(kind),
      pipelines: {
        [C]: CHECKED(C),
        [n('too_few')]: base(n('too_few'), 'validation:\n  extract: { minRows: 100 }\n'),
        [n('wrong_schema')]: base(n('wrong_schema'), 'validation:\n  extract: { columns: { id: VARCHAR, name: any, missing_col: any } }\n'),
        [n('bad_rule')]: base(n('bad_rule'), 'validation:\n  rules:\n    - { name: broken, sql: "select count(*) from no_such_table", expect: 0 }\n    - { name: typo, sql: "select 1 from {{tagret}}", expect: 1 }\n'),
        [n('lists')]: `name: ${n('lists')}
source:
  connection: SRC
  table: crm.tagged
  changeDetection: { mode: full }
key: [id]
target:
  warehouse: WH
  table: dw.${n('lists')}
validation:
  sample: 10
`,
        [n('dup_full')]: `name: ${n('dup_full')}
source:
  connection: SRC
  table: crm.dups
  changeDetection: { mode: full, column: changed_at }
key: [id]
target:
  warehouse: WH
  table: dw.${n('dup_full')}
`,
      },
    });
    await duckExec(
      join(dir, 'source.duckdb'),
      'create schema crm',
      'create table crm.accounts (id integer, name varchar, email varchar, city varchar, score decimal(6,2))',
      `insert into crm.accounts values (1, 'Ann', 'ANN@x.com', 'Oslo', 1.50), (2, 'Bob', 'bob@x.com', 'Rome', null), (3, 'Cy', null, 'Lima', 3.00)`,
      'create table crm.dups (id integer, v varchar, changed_at timestamp)',
      `insert into crm.dups values (1, 'a', '2026-01-01'), (1, 'b', '2026-01-02')`,
      'create table crm.tagged (id integer, tags varchar[], ints integer[])',
      `insert into crm.tagged values (1, ['a', 'b'], [1, 2]), (2, [], null), (3, null, [3])`,
    );
    stack = await openLocalStack({ projectDir: dir, connectionString: az.connectionString, env: { ...process.env, TIDEMARK_TEST_WH: url() }, now: () => new Date(clock.t), warehouseFor: warmWarehouseFor });
    stack.ctx.telemetry = { event: (name, dims) => events.push({ name, dims }), metric: () => undefined };
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('passes rule, sample, count and checksum checks, one row each; quarantined rows are listed with their rule', async () => {
    const r = await runOnce(stack, { pipeline: C });
    expect({ status: r.status, error: r.error }).toEqual({ status: 'succeeded', error: undefined });
    expect(r.counts).toMatchObject({ extracted: 3, inserted: 2, quarantined: 1 });
    const v = await readValidations(stack.ctx.tables, C, r.runId);
    expect(v.map((x) => [x.check, x.passed, x.expected, x.actual]).sort()).toEqual(
      [
        ['checksum', true, expect.any(String), expect.any(String)],
        ['row_count', true, 2, 2],
        ['rule:ledger_has_run', true, C, C],
        ['rule:one_current_per_key', true, 0, 0],
        ['rule:rows_of_this_run', true, 2, 2],
        ['sample', true, 2, 2],
      ].sort(),
    );
    const q = await listQuarantine(stack.ctx, { pipeline: C });
    expect(q).toEqual([{ runId: r.runId, runStatus: 'succeeded', rules: ['email_present'], row: expect.objectContaining({ id: 3, name: 'Cy', email: null, city: 'Lima' }) }]);
    expect(await listQuarantine(stack.ctx, { pipeline: C, runId: '20200101T000000Z-0000' })).toEqual([]);
  });

  it('DuckDB list columns land as lists (JSON text on T-SQL) and pass the sample check', async () => {
    const r = await runOnce(stack, { pipeline: n('lists') });
    expect(r.status).toBe('succeeded');
    const v = await readValidations(stack.ctx.tables, n('lists'), r.runId);
    expect(v.find((x) => x.check === 'sample')).toMatchObject({ passed: true, expected: 3, actual: 3 });
    const rows = await whQuery(kind, dir, url(), `select id, tags, ints from dw.${n('lists')} order by id`);
    const ints = (x: unknown) => (Array.isArray(x) ? x.map(Number) : x);
    expect(rows.map((x) => [Number(x.id), x.tags, ints(x.ints)])).toEqual(
      kind === 'mssql'
        ? [
            [1, '["a","b"]', '[1,2]'],
            [2, '[]', null],
            [3, null, '[3]'],
          ]
        : [
            [1, ['a', 'b'], [1, 2]],
            [2, [], null],
            [3, null, [3]],
          ],
    );
  });

  it("a warehouse edited behind tidemark's back fails the sample, emits telemetry, and holds the next run until acknowledged", async () => {
    // Someone edits the dimension behind tidemark's back.
    await whExec(kind, dir, url(), `update dw.${C} set email = 'evil@x.com', score = 9.99 where id = 1 and ${kind === 'mssql' ? '_tm_is_current = 1' : '_tm_is_current'}`);
    clock.t += 3_600_000;
    const r = await runOnce(stack, { pipeline: C });
    expect(r.status).toBe('validation_failed');
    const v = await readValidations(stack.ctx.tables, C, r.runId);
    const sample = v.find((x) => x.check === 'sample')!;
    expect(sample).toMatchObject({ passed: false, expected: 2, actual: 1 });
    expect(sample.detail).toContain('email "ann@x.com" ≠ "evil@x.com"');
    expect(sample.detail).toContain('score "1.5" ≠ "9.99"'); // canonical number text: scale-free (hash rule 2)
    // The checksum covers only this run's changed rows here (a quarantine makes the extract
    // partial), and nothing changed: edits to untouched rows are what the sample is for.
    expect(v.find((x) => x.check === 'checksum')!.passed).toBe(true);
    // rows_of_this_run expects 2 but this run wrote nothing: the rule fails as it should.
    expect(v.find((x) => x.check === 'rule:rows_of_this_run')).toMatchObject({ passed: false, actual: 0 });
    const failed = events.filter((e) => e.name === 'ValidationFailed' && e.dims.runId === r.runId);
    expect(failed.map((e) => [e.dims.pipeline, e.dims.check]).sort()).toEqual([
      [C, 'rule:rows_of_this_run'],
      [C, 'sample'],
    ]);

    clock.t += 60_000;
    await expect(startRun(stack.ctx, { pipeline: C, trigger: 'cli' })).rejects.toThrow(HeldError);
    await expect(startRun(stack.ctx, { pipeline: C, trigger: 'cli' })).rejects.toThrow(new RegExp(`held: run\\(s\\) .* failed validation.*tidemark ack ${C}`));
    expect(await acknowledge(stack.ctx, { pipeline: C, by: 'test' })).toEqual([r.runId]);
    expect(await getRun(stack.ctx.tables, C, r.runId)).toMatchObject({ status: 'validation_failed', acknowledgedBy: 'test' });
    const next = await startRun(stack.ctx, { pipeline: C, trigger: 'cli' });
    await stack.host.runUntil(async () => (await getRun(stack.ctx.tables, C, next.runId)).stage === 'done');
  });

  it('extract validation stops a run before the transform: too few rows, unexpected schema', async () => {
    const few = await runOnce(stack, { pipeline: n('too_few') });
    expect(few.status).toBe('failed');
    expect(few.error).toMatch(/extract validation failed \(extract_min_rows: expected >= 100, got 3\); nothing was transformed or merged/);
    expect(few.validations).toEqual([{ check: 'extract_min_rows', passed: false, expected: '>= 100', actual: 3, detail: 'rows of the full read vs validation.extract.minRows (window reads are not checked)' }]);
    const schema = await runOnce(stack, { pipeline: n('wrong_schema') });
    expect(schema.status).toBe('failed');
    expect(schema.validations[0]).toMatchObject({ check: 'extract_schema', passed: false, actual: 'id is INTEGER, expected VARCHAR; missing_col missing' });
    const tables = await whQuery(kind, dir, url(), `select table_name from information_schema.tables where table_name in ('${n('too_few')}', '${n('wrong_schema')}')`);
    expect(tables).toEqual([]);
  });

  it('a full extract with a duplicate key fails even when a time column could pick the latest', async () => {
    const r = await runOnce(stack, { pipeline: n('dup_full') });
    expect(r.status).toBe('failed');
    expect(r.error).toMatch(new RegExp(`duplicate keys in the extract of ${n('dup_full')}: \\(1\\) ×2`));
    // The README says a change column does not help in full mode; the error agrees (#14).
    expect(r.error).not.toMatch(/changeDetection\.column/);
    expect(r.error).toMatch(/a full read is the whole table, where the key must be unique: .*QUALIFY row_number\(\)/);
  });

  it('a rule whose SQL fails, or names an unknown placeholder, is a failed check with the reason', async () => {
    const r = await runOnce(stack, { pipeline: n('bad_rule') });
    expect(r.status).toBe('validation_failed');
    const v = await readValidations(stack.ctx.tables, n('bad_rule'), r.runId);
    expect(v.find((x) => x.check === 'rule:broken')!.detail).toMatch(/the rule's SQL failed: .*no_such_table/);
    expect(v.find((x) => x.check === 'rule:typo')!.detail).toMatch(/unknown placeholder\(s\) \{\{tagret\}\}/);
  });
});
