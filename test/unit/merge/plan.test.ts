import { describe, expect, it } from 'vitest';
import { duckdbDialect } from '../../../shared/merge/duckdb/dialect.js';
import { memoryLimitBytes } from '../../../shared/config/memory-limit.js';
import { closeByCopy } from '../../../shared/merge/duckdb/warehouse.js';
import { logicalFromDuck, type MergePlan } from '../../../shared/merge/plan.js';

const plan: MergePlan = {
  pipeline: 'accounts',
  runId: '20260101T000000Z-abcd',
  boundary: '2026-01-01T00:00:00.000Z',
  target: { schema: 'dw', name: 'dim_account' },
  stage: { name: '_tm_stage' },
  keys: ['id'],
  columns: [
    { name: 'id', type: { kind: 'integer', bits: 32 } },
    { name: 'city', type: { kind: 'text' } },
  ],
  type1Columns: [],
  deletes: 'retire',
  scd: 2,
  counts: { inserted: 1, updated: 2, deleted: 3, type1: 0 },
  commit: { baseRunId: '20251231T000000Z-0000', runSeq: 7, readTo: '2026-01-01T00:00:00.000Z', snapshot: 'accounts/20260101T000000Z-abcd.json' },
};

describe('SCD2 merge planning (duckdb)', () => {
  it('closes changed and deleted keys, then inserts new versions, then writes the ledger', () => {
    const steps = duckdbDialect.mergeSteps(plan);
    expect(steps).toEqual([
      {
        sql: `UPDATE "dw"."dim_account" AS t SET "_tm_valid_to" = s."_tm_valid_from", "_tm_is_current" = false FROM "_tm_stage" AS s WHERE t."id" = s."id" AND t."_tm_is_current" = true AND s."_tm_op" IN ('insert', 'update', 'delete')`,
        parameters: [],
      },
      {
        sql: `INSERT INTO "dw"."dim_account" ("id", "city", "_tm_valid_from", "_tm_valid_to", "_tm_is_current", "_tm_is_deleted", "_tm_row_hash", "_tm_run_id", "_tm_version_key") SELECT s."id", s."city", s."_tm_valid_from", NULL, true, false, s."_tm_row_hash", $1, s."_tm_version_key" FROM "_tm_stage" AS s WHERE s."_tm_op" IN ('insert', 'update')`,
        parameters: ['20260101T000000Z-abcd'],
      },
      {
        sql: `INSERT INTO "dw"."_tm_ledger" ("pipeline", "run_id", "target_table", "boundary", "inserted", "updated", "deleted", "run_seq", "base_run_id", "read_to", "snapshot", "committed_at") VALUES ($1, $2, $3, CAST($4 AS TIMESTAMP), $5, $6, $7, $8, $9, $10, $11, CURRENT_TIMESTAMP)`,
        parameters: ['accounts', '20260101T000000Z-abcd', 'dw.dim_account', '2026-01-01 00:00:00.000', 1, 2, 3, 7, '20251231T000000Z-0000', '2026-01-01T00:00:00.000Z', 'accounts/20260101T000000Z-abcd.json'],
      },
    ]);
  });

  it('checks the ledger with bound values, never interpolated ones', () => {
    expect(duckdbDialect.ledgerCheck(plan)).toEqual({
      sql: `SELECT 1 AS present FROM "dw"."_tm_ledger" WHERE "pipeline" = $1 AND "run_id" = $2`,
      parameters: ['accounts', '20260101T000000Z-abcd'],
    });
  });

  it('does not close versions on deletes under `ignore`, and marks them under `mark`', () => {
    const ignore = duckdbDialect.mergeSteps({ ...plan, deletes: 'ignore' });
    expect(ignore[0]!.sql).toContain(`s."_tm_op" IN ('insert', 'update')`);
    const mark = duckdbDialect.mergeSteps({ ...plan, deletes: 'mark' });
    expect(mark[0]!.sql).toMatch(/^INSERT INTO "dw"\."dim_account" .* SELECT t\."id", t\."city", s\."_tm_valid_from", NULL, true, true, /);
    expect(mark).toHaveLength(4);
  });

  it('closes by closed copies and a delete when asked, copying every column the target has and leaving this run\'s deleted-flagged copies current', () => {
    const steps = duckdbDialect.mergeSteps(plan, { closeByCopy: true });
    expect(steps.slice(0, 2)).toEqual([
      {
        sql: `INSERT INTO "dw"."dim_account" SELECT t.* REPLACE (s."_tm_valid_from" AS "_tm_valid_to", false AS "_tm_is_current") FROM "dw"."dim_account" AS t JOIN (SELECT "id", min("_tm_valid_from") AS "_tm_valid_from" FROM "_tm_stage" WHERE "_tm_op" IN ('insert', 'update', 'delete') GROUP BY "id") AS s ON t."id" = s."id" WHERE t."_tm_is_current" = true`,
        parameters: [],
      },
      {
        sql: `DELETE FROM "dw"."dim_account" AS t USING "_tm_stage" AS s WHERE t."id" = s."id" AND t."_tm_is_current" = true AND s."_tm_op" IN ('insert', 'update', 'delete')`,
        parameters: [],
      },
    ]);
    expect(steps.slice(2)).toEqual(duckdbDialect.mergeSteps(plan).slice(1));
    const mark = duckdbDialect.mergeSteps({ ...plan, deletes: 'mark' }, { closeByCopy: true });
    expect(mark[1]!.sql).toMatch(/ WHERE t\."_tm_is_current" = true AND t\."_tm_run_id" <> \$1$/);
    expect(mark[2]!.sql).toContain(`AND t."_tm_is_current" = true AND t."_tm_run_id" <> $1 AND s."_tm_op" IN`);
    expect([mark[1]!.parameters, mark[2]!.parameters]).toEqual([[plan.runId], [plan.runId]]);
  });

  it('closes by copy only when the warehouse file is bigger than DuckDB\'s memory limit', () => {
    expect(memoryLimitBytes('1GB')).toBe(1e9);
    expect(memoryLimitBytes('1.5 GiB')).toBe(1.5 * 1024 ** 3);
    expect(memoryLimitBytes('256mb')).toBe(256e6);
    expect(() => memoryLimitBytes('lots')).toThrow('duckdb.memoryLimit "lots" is not a size like 1GB');
    expect(closeByCopy(0.7e9, memoryLimitBytes('1GB'))).toBe(false);
    expect(closeByCopy(1e9, memoryLimitBytes('1GB'))).toBe(false);
    expect(closeByCopy(2.9e9, memoryLimitBytes('1GB'))).toBe(true);
    expect(closeByCopy(2.9e9, memoryLimitBytes('4GB'))).toBe(false);
  });

  it('overwrites type 1 columns on the current version only', () => {
    const steps = duckdbDialect.mergeSteps({ ...plan, type1Columns: ['city'] });
    // The row hash too: a same-time correction (validFrom: { column }) is written by this step.
    expect(steps[1]!.sql).toBe(
      `UPDATE "dw"."dim_account" AS t SET "city" = s."city", "_tm_row_hash" = s."_tm_row_hash" FROM "_tm_stage" AS s WHERE t."id" = s."id" AND t."_tm_is_current" = true AND s."_tm_op" = 'type1'`,
    );
  });

  it('renders the in-place step for corrections when there are no type 1 columns, and not when nothing is in place', () => {
    const inPlace = (counts: { type1: number }) => duckdbDialect.mergeSteps({ ...plan, type1Columns: [], counts: { ...plan.counts, ...counts } }).filter((st) => st.sql.includes(`s."_tm_op" = 'type1'`));
    expect(inPlace({ type1: 0 })).toEqual([]);
    expect(inPlace({ type1: 2 }).map((st) => st.sql)).toEqual([
      `UPDATE "dw"."dim_account" AS t SET "city" = s."city", "_tm_row_hash" = s."_tm_row_hash" FROM "_tm_stage" AS s WHERE t."id" = s."id" AND t."_tm_is_current" = true AND s."_tm_op" = 'type1'`,
    ]);
  });

  it('creates the target with the SCD2 columns and adds new columns later', () => {
    const create = duckdbDialect.ensureTarget(plan, []);
    expect(create[1]!.sql).toBe(
      `CREATE TABLE IF NOT EXISTS "dw"."dim_account" ("id" INTEGER, "city" VARCHAR, "_tm_valid_from" TIMESTAMP, "_tm_valid_to" TIMESTAMP, "_tm_is_current" BOOLEAN, "_tm_is_deleted" BOOLEAN, "_tm_row_hash" VARCHAR, "_tm_run_id" VARCHAR, "_tm_version_key" VARCHAR)`,
    );
    const existing = ['id INTEGER', '_tm_valid_from TIMESTAMP', '_tm_valid_to TIMESTAMP', '_tm_is_current BOOLEAN', '_tm_is_deleted BOOLEAN', '_tm_row_hash VARCHAR', '_tm_run_id VARCHAR', '_tm_version_key VARCHAR'].map(
      (s) => ({ name: s.split(' ')[0]!, type: s.split(' ')[1]! }),
    );
    const evolve = duckdbDialect.ensureTarget(plan, existing);
    expect(evolve[1]!.sql).toBe(`ALTER TABLE "dw"."dim_account" ADD COLUMN "city" VARCHAR`);
    expect(() => duckdbDialect.ensureTarget(plan, existing.map((c) => (c.name === 'id' ? { ...c, type: 'VARCHAR' } : c)))).toThrow(
      'type change in dw.dim_account.id: target has VARCHAR, source now gives INTEGER',
    );
  });

  it('maps DuckDB types to logical types without losing precision', () => {
    expect(logicalFromDuck('DECIMAL(18,2)')).toEqual({ kind: 'decimal', precision: 18, scale: 2 });
    expect(logicalFromDuck('TIMESTAMP WITH TIME ZONE')).toEqual({ kind: 'timestamptz' });
    expect(logicalFromDuck('UBIGINT')).toEqual({ kind: 'integer', bits: 128 });
    expect(logicalFromDuck('VARCHAR')).toEqual({ kind: 'text' });
  });

  it('quotes identifiers so that a hostile name stays a name', () => {
    expect(duckdbDialect.quoteIdent('x"; drop table y; --')).toBe('"x""; drop table y; --"');
  });
});
