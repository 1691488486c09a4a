import { expect } from 'vitest';
import { join } from 'node:path';
import { getPipeline, warehouseOf } from '../../shared/config/load.js';
import { mergePlanOf, mergeStage } from '../../shared/engine/stages.js';
import type { LocalStack, RunSummary } from '../../shared/local/stack.js';
import { scratchDir } from '../../shared/storage/files.js';
import { getRun } from '../../shared/state/runs.js';
import { CONTAINERS, layout } from '../../shared/storage/layout.js';
import { changesManifestSchema, parseManifest } from '../../shared/storage/manifest.js';
import type { Played, Scenario, ScenarioCase } from './scd-harness.js';

/**
 * The SCD2 edge cases of docs/design.md §8 and issue #3, one table shared by the test files that
 * play them (test/acceptance/scd2-edge-cases*.test.ts): DuckDB and PostgreSQL in one file, the
 * mssql warehouse on the T-SQL engine in another, so that vitest runs them on two workers.
 * Each case names the exact dimension every warehouse must end with.
 */
const H = (h: number) => `2026-01-01T${String(h).padStart(2, '0')}:00:00`;
type Row = Record<string, string | null>;
const row = (id: number, name: string | null, city: string | null, vf: string, vt: string | null, cur: boolean, del: boolean, run: string, extra: Row = {}): Row => ({
  id: String(id),
  name,
  city,
  ...extra,
  vf,
  vt,
  cur: String(cur),
  del: String(del),
  run,
});

const ITEMS = `create table app.items (id integer, name varchar, city varchar)`;
const base = (o: { name: string; table: string }, target = '', source = '  changeDetection: { mode: full }', validation = '  rowCount: exact\n  checksumColumns: [id, name, city]') => `name: ${o.name}
source:
  connection: SRC
  table: app.items
${source}
key: [id]
target:
  warehouse: WH
  table: ${o.table}
${target}
validation:
${validation}
`;

interface Case {
  sc: Scenario;
  expectTable: Row[];
  check?: (p: Played) => void;
}

/** Delivers the last run's merge again: once through the merge stage, once straight to the warehouse. */
async function applyLastRunAgain(stack: LocalStack, runs: RunSummary[], pipeline: string) {
  const ctx = stack.ctx;
  const runId = runs.at(-1)!.runId;
  const stageOutcome = await mergeStage(ctx, { pipeline, runId });
  const p = getPipeline(ctx.project, pipeline);
  const text = await ctx.blobs.getText(CONTAINERS.changes, layout.changesManifest(pipeline, runId));
  const m = parseManifest(changesManifestSchema, 'changes manifest', text!);
  const local = join(await scratchDir(ctx.workDir, pipeline, runId, 'rerun'), 'changes.parquet');
  await ctx.blobs.downloadToFile(CONTAINERS.changes, m.changes.name, local);
  const wh = ctx.warehouseFor(ctx, warehouseOf(ctx.project, p), p);
  try {
    // The plan the merge stage builds (stages.ts), with the commit a redelivery carries.
    const outcome = await wh.merge(
      mergePlanOf(ctx, p, m, (await getRun(ctx.tables, pipeline, runId)).seq ?? null),
      local,
      { container: CONTAINERS.changes, name: m.changes.name },
    );
    return { stageOutcome, outcome };
  } finally {
    await wh.close();
  }
}

const cases: Case[] = [
  {
    sc: {
      name: 'same_run_twice',
      keys: ['id'],
      columns: ['id', 'name', 'city'],
      pipeline: (o) => base(o),
      setup: [ITEMS, `insert into app.items values (1, 'Ann', 'Oslo'), (2, 'Bob', 'Rome')`],
      steps: [{ source: [] }, { source: [`update app.items set city = 'Bergen' where id = 1`, `delete from app.items where id = 2`] }],
      after: applyLastRunAgain,
    },
    expectTable: [
      row(1, 'Ann', 'Oslo', H(0), H(1), false, false, 'r1'),
      row(1, 'Ann', 'Bergen', H(1), null, true, false, 'r2'),
      row(2, 'Bob', 'Rome', H(0), H(1), false, false, 'r1'),
    ],
    // The redelivered message is skipped (run already succeeded); the warehouse's own ledger
    // makes a direct second apply a no-op.
    check: (p) => expect(p.after).toEqual({ stageOutcome: 'skipped', outcome: 'already-merged' }),
  },
  {
    sc: { name: 'new_key', keys: ['id'], columns: ['id', 'name', 'city'], pipeline: (o) => base(o), setup: [ITEMS, `insert into app.items values (1, 'Ann', 'Oslo'), (2, 'Bob', 'Rome')`], steps: [{ source: [] }] },
    expectTable: [row(1, 'Ann', 'Oslo', H(0), null, true, false, 'r1'), row(2, 'Bob', 'Rome', H(0), null, true, false, 'r1')],
    check: (p) => expect(p.runs[0]!.counts).toMatchObject({ inserted: 2, updated: 0, deleted: 0 }),
  },
  {
    sc: {
      name: 'tracked_change_and_touch',
      keys: ['id'],
      columns: ['id', 'name', 'city'],
      pipeline: (o) => base(o),
      setup: [ITEMS, `insert into app.items values (1, 'Ann', 'Oslo'), (2, 'Bob', 'Rome')`],
      steps: [{ source: [] }, { source: [`update app.items set city = 'Bergen' where id = 1`, `update app.items set name = 'Bob' where id = 2`] }],
    },
    expectTable: [
      row(1, 'Ann', 'Oslo', H(0), H(1), false, false, 'r1'),
      row(1, 'Ann', 'Bergen', H(1), null, true, false, 'r2'),
      row(2, 'Bob', 'Rome', H(0), null, true, false, 'r1'),
    ],
    check: (p) => expect(p.runs[1]!.counts).toMatchObject({ inserted: 0, updated: 1, unchanged: 1 }),
  },
  {
    sc: {
      name: 'dupes_in_batch',
      keys: ['id'],
      columns: ['id', 'name', 'city'],
      pipeline: (o) =>
        base(o, '  trackedColumns: [name, city]', '  changeDetection: { mode: timestamp, column: updated_at }', '  rowCount: none\n  checksumColumns: [id, city]'),
      setup: [
        `create table app.items (id integer, name varchar, city varchar, updated_at timestamp)`,
        `insert into app.items values (1, 'Ann', 'Oslo', '2025-12-31 08:00'), (1, 'Ann', 'Bergen', '2025-12-31 09:00'), (2, 'Bob', 'Rome', '2025-12-31 08:00')`,
      ],
      steps: [{ source: [] }, { source: [`insert into app.items values (1, 'Ann', 'Lima', '2026-01-01 00:40'), (1, 'Ann', 'Paris', '2026-01-01 00:30')`] }],
    },
    expectTable: [
      row(1, 'Ann', 'Bergen', H(0), H(1), false, false, 'r1'),
      row(1, 'Ann', 'Lima', H(1), null, true, false, 'r2'),
      row(2, 'Bob', 'Rome', H(0), null, true, false, 'r1'),
    ],
  },
  {
    sc: {
      name: 'a_b_a',
      keys: ['id'],
      columns: ['id', 'name', 'city'],
      pipeline: (o) => base(o),
      setup: [ITEMS, `insert into app.items values (1, 'Ann', 'A')`],
      steps: [{ source: [] }, { source: [`update app.items set city = 'B'`] }, { source: [`update app.items set city = 'A'`] }],
    },
    expectTable: [
      row(1, 'Ann', 'A', H(0), H(1), false, false, 'r1'),
      row(1, 'Ann', 'B', H(1), H(2), false, false, 'r2'),
      row(1, 'Ann', 'A', H(2), null, true, false, 'r3'),
    ],
  },
  ...(['retire', 'mark', 'ignore'] as const).map(
    (deletes): Case => ({
      sc: {
        name: `delete_${deletes}`,
        keys: ['id'],
        columns: ['id', 'name', 'city'],
        pipeline: (o) => base(o, `  deletes: ${deletes}`),
        setup: [ITEMS, `insert into app.items values (1, 'Ann', 'Oslo'), (2, 'Bob', 'Rome')`],
        steps: [{ source: [] }, { source: [`delete from app.items where id = 2`] }],
      },
      expectTable: [
        row(1, 'Ann', 'Oslo', H(0), null, true, false, 'r1'),
        ...(deletes === 'retire'
          ? [row(2, 'Bob', 'Rome', H(0), H(1), false, false, 'r1')]
          : deletes === 'mark'
            ? [row(2, 'Bob', 'Rome', H(0), H(1), false, false, 'r1'), row(2, 'Bob', 'Rome', H(1), null, true, true, 'r2')]
            : [row(2, 'Bob', 'Rome', H(0), null, true, false, 'r1')]),
      ],
      check: (p) => expect(p.runs[1]!.counts.deleted).toBe(deletes === 'ignore' ? 0 : 1),
    }),
  ),
  ...(['retire', 'mark'] as const).map(
    (deletes): Case => ({
      sc: {
        name: `delete_reinsert_${deletes}`,
        keys: ['id'],
        columns: ['id', 'name', 'city'],
        pipeline: (o) => base(o, `  deletes: ${deletes}`),
        setup: [ITEMS, `insert into app.items values (1, 'Ann', 'Oslo'), (2, 'Bob', 'Rome')`],
        steps: [{ source: [] }, { source: [`delete from app.items where id = 2`] }, { source: [`insert into app.items values (2, 'Bob', 'Rome')`] }],
      },
      expectTable: [
        row(1, 'Ann', 'Oslo', H(0), null, true, false, 'r1'),
        row(2, 'Bob', 'Rome', H(0), H(1), false, false, 'r1'),
        ...(deletes === 'mark' ? [row(2, 'Bob', 'Rome', H(1), H(2), false, true, 'r2')] : []),
        row(2, 'Bob', 'Rome', H(2), null, true, false, 'r3'),
      ],
    }),
  ),
  {
    sc: {
      name: 'incremental_absent',
      keys: ['id'],
      columns: ['id', 'name', 'city'],
      pipeline: (o) => base(o, '  trackedColumns: [name, city]\n  deletes: retire', '  changeDetection: { mode: timestamp, column: updated_at }', '  rowCount: exact\n  checksumColumns: [id, city]'),
      setup: [
        `create table app.items (id integer, name varchar, city varchar, updated_at timestamp)`,
        `insert into app.items values (1, 'Ann', 'Oslo', '2025-12-31 08:00'), (2, 'Bob', 'Rome', '2025-12-31 08:00')`,
      ],
      steps: [{ source: [] }, { source: [`update app.items set city = 'Bergen', updated_at = '2026-01-01 00:30' where id = 1`] }],
    },
    expectTable: [
      row(1, 'Ann', 'Oslo', H(0), H(1), false, false, 'r1'),
      row(1, 'Ann', 'Bergen', H(1), null, true, false, 'r2'),
      row(2, 'Bob', 'Rome', H(0), null, true, false, 'r1'),
    ],
    check: (p) => expect(p.runs[1]!.counts).toMatchObject({ extracted: 1, updated: 1, deleted: 0 }),
  },
  {
    sc: {
      name: 'stale_valid_from',
      keys: ['id'],
      columns: ['id', 'name', 'city'],
      pipeline: (o) => base(o, '  trackedColumns: [name, city]\n  validFrom: { column: updated_at }'),
      setup: [
        `create table app.items (id integer, name varchar, city varchar, updated_at timestamp)`,
        `insert into app.items values (1, 'Ann', 'Oslo', '2025-12-31 10:00'), (2, 'Bob', 'Rome', '2025-12-31 10:00')`,
      ],
      steps: [
        { source: [] },
        {
          source: [
            `update app.items set city = 'Rome', updated_at = '2025-12-31 09:00' where id = 1`,
            `update app.items set city = 'Milan', updated_at = '2025-12-31 11:00' where id = 2`,
          ],
        },
      ],
    },
    expectTable: [
      row(1, 'Ann', 'Oslo', '2025-12-31T10:00:00', null, true, false, 'r1'),
      row(2, 'Bob', 'Rome', '2025-12-31T10:00:00', '2025-12-31T11:00:00', false, false, 'r1'),
      row(2, 'Bob', 'Milan', '2025-12-31T11:00:00', null, true, false, 'r2'),
    ],
    check: (p) => expect(p.runs[1]!.counts).toMatchObject({ stale: 1, updated: 1 }),
  },
  {
    sc: {
      name: 'type1_columns',
      keys: ['id'],
      columns: ['id', 'name', 'city', 'email'],
      pipeline: (o) => base(o, '  type1Columns: [email]', undefined, '  rowCount: exact\n  checksumColumns: [id, email]'),
      setup: [`create table app.items (id integer, name varchar, city varchar, email varchar)`, `insert into app.items values (1, 'Ann', 'Oslo', 'a@x'), (2, 'Bob', 'Rome', 'b@x')`],
      steps: [{ source: [] }, { source: [`update app.items set email = 'ann@x' where id = 1`, `update app.items set email = 'bob@x', city = 'Milan' where id = 2`] }],
    },
    expectTable: [
      row(1, 'Ann', 'Oslo', H(0), null, true, false, 'r1', { email: 'ann@x' }),
      row(2, 'Bob', 'Rome', H(0), H(1), false, false, 'r1', { email: 'b@x' }),
      row(2, 'Bob', 'Milan', H(1), null, true, false, 'r2', { email: 'bob@x' }),
    ],
  },
  {
    sc: {
      name: 'null_key',
      keys: ['id'],
      columns: ['id', 'name', 'city'],
      pipeline: (o) => base(o),
      setup: [ITEMS, `insert into app.items values (1, 'Ann', 'Oslo')`],
      steps: [{ source: [] }, { source: [`insert into app.items values (null, 'Nil', 'Nowhere')`, `update app.items set city = 'Bergen' where id = 1`] }],
    },
    expectTable: [row(1, 'Ann', 'Oslo', H(0), null, true, false, 'r1')],
    check: (p) => {
      expect(p.runs[1]!.status).toBe('failed');
      expect(p.runs[1]!.error).toMatch(/1 row\(s\) of null_key_(dk|pg|ms) have NULL in key column\(s\) id; nothing was merged/);
    },
  },
  {
    sc: {
      name: 'scd1_target',
      keys: ['id'],
      columns: ['id', 'name', 'city'],
      pipeline: (o) => base(o, '  scd: 1\n  deletes: retire'),
      setup: [ITEMS, `insert into app.items values (1, 'Ann', 'Oslo'), (2, 'Bob', 'Rome'), (3, 'Cy', 'Lima')`],
      steps: [{ source: [] }, { source: [`update app.items set city = 'Bergen' where id = 1`, `delete from app.items where id = 2`] }, { source: [`insert into app.items values (2, 'Bob', 'Paris')`] }],
    },
    expectTable: [
      row(1, 'Ann', 'Bergen', H(1), null, true, false, 'r2'),
      row(2, 'Bob', 'Paris', H(2), null, true, false, 'r3'),
      row(3, 'Cy', 'Lima', H(0), null, true, false, 'r1'),
    ],
  },
  {
    sc: {
      name: 'scd1_mark',
      keys: ['id'],
      columns: ['id', 'name', 'city'],
      pipeline: (o) => base(o, '  scd: 1\n  deletes: mark'),
      setup: [ITEMS, `insert into app.items values (1, 'Ann', 'Oslo'), (2, 'Bob', 'Rome')`],
      steps: [{ source: [] }, { source: [`delete from app.items where id = 2`] }, { source: [`insert into app.items values (2, 'Bob', 'Paris')`] }],
    },
    expectTable: [row(1, 'Ann', 'Oslo', H(0), null, true, false, 'r1'), row(2, 'Bob', 'Paris', H(2), null, true, false, 'r3')],
  },
  {
    sc: {
      name: 'compound_key',
      keys: ['k1', 'k2'],
      columns: ['k1', 'k2', 'city'],
      pipeline: (o) => base(o, '', undefined, '  rowCount: exact\n  checksumColumns: [k1, k2, city]').replace('key: [id]', 'key: [k1, k2]'),
      setup: [`create table app.items (k1 varchar, k2 varchar, city varchar)`, `insert into app.items values ('a', 'bc', 'X'), ('ab', 'c', 'Y')`],
      steps: [{ source: [] }, { source: [`update app.items set city = 'Z' where k1 = 'a' and k2 = 'bc'`] }],
    },
    // ('a','bc') and ('ab','c') are different keys: compared column by column, never concatenated.
    expectTable: [
      { k1: 'a', k2: 'bc', city: 'X', vf: H(0), vt: H(1), cur: 'false', del: 'false', run: 'r1' },
      { k1: 'a', k2: 'bc', city: 'Z', vf: H(1), vt: null, cur: 'true', del: 'false', run: 'r2' },
      { k1: 'ab', k2: 'c', city: 'Y', vf: H(0), vt: null, cur: 'true', del: 'false', run: 'r1' },
    ],
    check: (p) => expect(p.runs[1]!.counts).toMatchObject({ updated: 1, unchanged: 1 }),
  },
  {
    sc: {
      name: 'schema_evolution',
      keys: ['id'],
      columns: ['id', 'name', 'city', 'tier'],
      pipeline: (o) => base(o, '', undefined, '  rowCount: exact\n  checksumColumns: [id, name]'),
      setup: [ITEMS, `insert into app.items values (1, 'Ann', 'Oslo'), (2, 'Bob', 'Rome')`],
      steps: [
        { source: [] },
        { source: [`alter table app.items add column tier varchar`, `update app.items set tier = 'gold' where id = 1`] },
        { source: [`alter table app.items drop column city`] },
      ],
    },
    expectTable: [
      row(1, 'Ann', 'Oslo', H(0), H(1), false, false, 'r1', { tier: null }),
      row(1, 'Ann', 'Oslo', H(1), H(2), false, false, 'r2', { tier: 'gold' }),
      row(1, 'Ann', null, H(2), null, true, false, 'r3', { tier: 'gold' }),
      row(2, 'Bob', 'Rome', H(0), H(2), false, false, 'r1', { tier: null }),
      row(2, 'Bob', null, H(2), null, true, false, 'r3', { tier: null }),
    ],
    check: (p) => expect(p.runs[1]!.counts).toMatchObject({ updated: 1, unchanged: 1 }),
  },
  {
    sc: {
      name: 'type_change_refused',
      keys: ['id'],
      columns: ['id', 'name', 'city'],
      pipeline: (o) => base(o),
      setup: [`create table app.items (id integer, name varchar, city integer)`, `insert into app.items values (1, 'Ann', 7)`],
      steps: [{ source: [] }, { source: [`alter table app.items alter city type bigint`, `update app.items set city = 8`] }],
    },
    expectTable: [row(1, 'Ann', '7', H(0), null, true, false, 'r1')],
    check: (p) => {
      expect(p.runs[1]!.status).toBe('failed');
      expect(p.runs[1]!.error).toMatch(/type change in dw\.type_change_refused\.city: target has (INTEGER|integer|INT), source now gives (BIGINT|bigint); .*allowTypeWidening/i);
    },
  },
  {
    sc: {
      name: 'type_widened',
      keys: ['id'],
      columns: ['id', 'name', 'city'],
      pipeline: (o) => base(o, '  allowTypeWidening: true'),
      setup: [`create table app.items (id integer, name varchar, city integer)`, `insert into app.items values (1, 'Ann', 7)`],
      steps: [{ source: [] }, { source: [`alter table app.items alter city type bigint`, `update app.items set city = 8000000000`] }],
    },
    expectTable: [row(1, 'Ann', '7', H(0), H(1), false, false, 'r1'), row(1, 'Ann', '8000000000', H(1), null, true, false, 'r2')],
  },
];

export const SCD2_EDGE_TITLE = 'SCD2 edge cases through the whole chain';

/** The cases, with the runs each expects to fail (their outcome is asserted by the case's check). */
export const SCD2_EDGE_CASES: ScenarioCase[] = cases.map((c) => (c.sc.name === 'null_key' || c.sc.name === 'type_change_refused' ? { ...c, failingRuns: [1] } : c));
