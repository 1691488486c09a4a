import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRun } from '../../../shared/engine/start-run.js';
import type { AzuriteHandle } from '../../../shared/local/azurite.js';
import { openLocalStack, runOnce, type LocalStack } from '../../../shared/local/stack.js';
import { getRun } from '../../../shared/state/runs.js';
import { readValidations } from '../../../shared/state/validations.js';
import { setValidationTelemetry, type ValidationFailedEvent } from '../../../shared/telemetry/validation-events.js';
import { acknowledge, HeldError } from '../../../shared/validate/hold.js';
import { listQuarantine } from '../../../shared/validate/quarantine.js';
import { withAzurite } from '../../support/azurite.js';
import { duckExec, duckQuery, makeProject } from '../../support/project.js';

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

const CHECKED = base(
  'checked',
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
    - { name: ledger_has_run, sql: "select min(pipeline) from {{ledger}} where run_id = {{run_id}}", expect: checked }
`,
);

describe('validation after the merge, extract validation, hold and quarantine (duckdb)', () => {
  let az: AzuriteHandle;
  let stack: LocalStack;
  let dir: string;
  const clock = { t: Date.parse('2026-04-01T00:00:00Z') };
  const events: ValidationFailedEvent[] = [];

  beforeAll(async () => {
    az = await withAzurite();
    dir = makeProject({
      pipelines: {
        checked: CHECKED,
        too_few: base('too_few', 'validation:\n  extract: { minRows: 100 }\n'),
        wrong_schema: base('wrong_schema', 'validation:\n  extract: { columns: { id: VARCHAR, name: any, missing_col: any } }\n'),
        bad_rule: base('bad_rule', 'validation:\n  rules:\n    - { name: broken, sql: "select count(*) from no_such_table", expect: 0 }\n    - { name: typo, sql: "select 1 from {{tagret}}", expect: 1 }\n'),
        dup_full: `name: dup_full
source:
  connection: SRC
  table: crm.dups
  changeDetection: { mode: full, column: changed_at }
key: [id]
target:
  warehouse: WH
  table: dw.dup_full
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
    );
    stack = await openLocalStack({ projectDir: dir, connectionString: az.connectionString, now: () => new Date(clock.t) });
    setValidationTelemetry((e) => events.push(e));
  });
  afterAll(async () => {
    setValidationTelemetry(undefined);
    await stack?.close();
    await az?.stop();
  });

  it('passes rule, sample, count and checksum checks, one row each; quarantined rows are listed with their rule', async () => {
    const r = await runOnce(stack, { pipeline: 'checked' });
    expect(r.status).toBe('succeeded');
    expect(r.counts).toMatchObject({ extracted: 3, inserted: 2, quarantined: 1 });
    const v = await readValidations(stack.ctx.tables, 'checked', r.runId);
    expect(v.map((x) => [x.check, x.passed, x.expected, x.actual]).sort()).toEqual(
      [
        ['checksum', true, expect.any(String), expect.any(String)],
        ['row_count', true, 2, 2],
        ['rule:ledger_has_run', true, 'checked', 'checked'],
        ['rule:one_current_per_key', true, 0, 0],
        ['rule:rows_of_this_run', true, 2, 2],
        ['sample', true, 2, 2],
      ].sort(),
    );
    const q = await listQuarantine(stack.ctx, { pipeline: 'checked' });
    expect(q).toEqual([{ runId: r.runId, rules: ['email_present'], row: expect.objectContaining({ id: 3, name: 'Cy', email: null, city: 'Lima' }) }]);
    expect(await listQuarantine(stack.ctx, { pipeline: 'checked', runId: '20200101T000000Z-0000' })).toEqual([]);
  });

  it('a warehouse edited behind tidemark's back fails the sample, emits telemetry, and holds the next run until acknowledged', async () => {
    // Someone edits the dimension behind tidemark's back.
    await duckExec(join(dir, 'warehouse.duckdb'), `update dw.checked set email = 'evil@x.com', score = 9.99 where id = 1 and _tm_is_current`);
    clock.t += 3_600_000;
    const r = await runOnce(stack, { pipeline: 'checked' });
    expect(r.status).toBe('validation_failed');
    const v = await readValidations(stack.ctx.tables, 'checked', r.runId);
    const sample = v.find((x) => x.check === 'sample')!;
    expect(sample).toMatchObject({ passed: false, expected: 2, actual: 1 });
    expect(sample.detail).toContain('email "ann@x.com" ≠ "evil@x.com"');
    expect(sample.detail).toContain('score "1.50" ≠ "9.99"');
    // The checksum covers only this run's changed rows here (a quarantine makes the extract
    // partial), and nothing changed: edits to untouched rows are what the sample is for.
    expect(v.find((x) => x.check === 'checksum')!.passed).toBe(true);
    // rows_of_this_run expects 2 but this run wrote nothing: the rule fails as it should.
    expect(v.find((x) => x.check === 'rule:rows_of_this_run')).toMatchObject({ passed: false, actual: 0 });
    expect(events.map((e) => [e.pipeline, e.runId, e.held])).toEqual([['checked', r.runId, true]]);
    expect(events[0]!.failedChecks.map((c) => c.check).sort()).toEqual(['rule:rows_of_this_run', 'sample']);

    clock.t += 60_000;
    await expect(startRun(stack.ctx, { pipeline: 'checked', trigger: 'cli' })).rejects.toThrow(HeldError);
    await expect(startRun(stack.ctx, { pipeline: 'checked', trigger: 'cli' })).rejects.toThrow(/held: run\(s\) .* failed validation.*tidemark ack checked/);
    expect(await acknowledge(stack.ctx, { pipeline: 'checked', by: 'test' })).toEqual([r.runId]);
    expect(await getRun(stack.ctx.tables, 'checked', r.runId)).toMatchObject({ status: 'validation_failed', acknowledgedBy: 'test' });
    const next = await startRun(stack.ctx, { pipeline: 'checked', trigger: 'cli' });
    await stack.host.runUntil(async () => (await getRun(stack.ctx.tables, 'checked', next.runId)).stage === 'done');
  });

  it('extract validation stops a run before the transform: too few rows, unexpected schema', async () => {
    const few = await runOnce(stack, { pipeline: 'too_few' });
    expect(few.status).toBe('failed');
    expect(few.error).toMatch(/extract validation failed \(extract_min_rows: expected >= 100, got 3\); nothing was transformed or merged/);
    expect(few.validations).toEqual([{ check: 'extract_min_rows', passed: false, expected: '>= 100', actual: 3 }]);
    const schema = await runOnce(stack, { pipeline: 'wrong_schema' });
    expect(schema.status).toBe('failed');
    expect(schema.validations[0]).toMatchObject({ check: 'extract_schema', passed: false, actual: 'id is INTEGER, expected VARCHAR; missing_col missing' });
    const tables = await duckQuery<{ n: bigint }>(join(dir, 'warehouse.duckdb'), `select count(*) n from information_schema.tables where table_name in ('too_few', 'wrong_schema')`);
    expect(tables).toEqual([{ n: 0n }]);
  });

  it('a full extract with a duplicate key fails even when a time column could pick the latest', async () => {
    const r = await runOnce(stack, { pipeline: 'dup_full' });
    expect(r.status).toBe('failed');
    expect(r.error).toMatch(/duplicate keys in the extract of dup_full: \(1\) ×2/);
  });

  it('a rule whose SQL fails, or names an unknown placeholder, is a failed check with the reason', async () => {
    const r = await runOnce(stack, { pipeline: 'bad_rule' });
    expect(r.status).toBe('validation_failed');
    const v = await readValidations(stack.ctx.tables, 'bad_rule', r.runId);
    expect(v.find((x) => x.check === 'rule:broken')!.detail).toMatch(/the rule's SQL failed: .*no_such_table/);
    expect(v.find((x) => x.check === 'rule:typo')!.detail).toMatch(/unknown placeholder\(s\) \{\{tagret\}\}/);
  });
});
