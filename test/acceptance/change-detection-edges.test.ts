import { expect } from 'vitest';
import type { LocalStack, RunSummary } from '../../shared/local/stack.js';
import { CONTAINERS, layout } from '../../shared/storage/layout.js';
import { parseManifest, rawManifestSchema, type ExtractRead } from '../../shared/storage/manifest.js';
import { describeScenarios, type ScenarioCase } from '../support/scd-harness.js';
import { tsqlEngine } from '../support/tsql-engine.js';

/**
 * Issue #14, change detection and validation edges, through the real chain (Azurite, a DuckDB
 * source, the transform, the merge, validation) on both executing warehouses.
 */

const H = (h: number) => `2026-01-01T${String(h).padStart(2, '0')}:00:00`;
type Row = Record<string, string | null>;
const row = (id: number, name: string, city: string, vf: string, vt: string | null, cur: boolean, del: boolean, run: string): Row => ({
  id: String(id),
  name,
  city,
  vf,
  vt,
  cur: String(cur),
  del: String(del),
  run,
});

const ITEMS = `create table app.items (id integer, name varchar, city varchar, updated_at timestamp)`;
const timestamp = (o: { name: string; table: string }, extra = { target: '', validation: '', transform: '' }) => `name: ${o.name}
source:
  connection: SRC
  table: app.items
  changeDetection: { mode: timestamp, column: updated_at }
key: [id]
${extra.transform}target:
  warehouse: WH
  table: ${o.table}
  trackedColumns: [name, city]
${extra.target}validation:
  rowCount: exact
${extra.validation}`;

/** The `read` record of each run's raw manifest. */
async function reads(stack: LocalStack, runs: RunSummary[], pipeline: string): Promise<Array<ExtractRead | undefined>> {
  const out: Array<ExtractRead | undefined> = [];
  for (const r of runs) {
    const text = await stack.ctx.blobs.getText(CONTAINERS.raw, layout.rawManifest(pipeline, r.runId));
    out.push(text === undefined ? undefined : parseManifest(rawManifestSchema, 'raw manifest', text).read);
  }
  return out;
}

const cases: ScenarioCase[] = [
  {
    // Point 1: a first load whose change column is all NULL ends with a NULL watermark. The next
    // run reads nothing; it used to be taken for a full read, retiring every key.
    sc: {
      name: 'null_watermark',
      keys: ['id'],
      columns: ['id', 'name', 'city'],
      pipeline: (o) => timestamp(o),
      setup: [ITEMS, `insert into app.items values (1, 'Ann', 'Oslo', NULL), (2, 'Bob', 'Rome', NULL)`],
      steps: [{ source: [] }, { source: [] }, { source: [`update app.items set city = 'Bergen', updated_at = '2026-01-01 01:30' where id = 1`] }],
      after: reads,
    },
    expectTable: [
      row(1, 'Ann', 'Oslo', H(0), H(2), false, false, 'r1'),
      row(1, 'Ann', 'Bergen', H(2), null, true, false, 'r3'),
      row(2, 'Bob', 'Rome', H(0), null, true, false, 'r1'),
    ],
    check: (p) => {
      expect(p.runs.map((r) => r.counts.deleted)).toEqual([0, 0, 0]);
      const r = p.after as Array<ExtractRead | undefined>;
      expect(r.map((x) => [x?.kind, x?.rows, x?.nullChangeColumnRows])).toEqual([
        ['full', 2, 2],
        ['empty', 0, 2],
        ['window', 1, 1],
      ]);
      expect(r[2]).toMatchObject({ from: null, to: '2026-01-01T01:30:00.000000Z' });
    },
  },
  {
    // Point 10: two changes of one key in a batch, and a key deleted at a timestamp source
    // (absent is not deleted): the row count is the keys current after the run.
    sc: {
      name: 'row_count_incremental',
      keys: ['id'],
      columns: ['id', 'name', 'city'],
      pipeline: (o) => timestamp(o),
      setup: [ITEMS, `insert into app.items values (1, 'Ann', 'Oslo', '2025-12-31 08:00'), (2, 'Bob', 'Rome', '2025-12-31 08:00')`],
      steps: [
        { source: [] },
        {
          source: [
            `insert into app.items values (1, 'Ann', 'Lima', '2026-01-01 00:40'), (1, 'Ann', 'Paris', '2026-01-01 00:30')`,
            `delete from app.items where id = 2`,
            `insert into app.items values (3, 'Cy', 'Kyiv', '2026-01-01 00:20')`,
          ],
        },
      ],
    },
    expectTable: [
      row(1, 'Ann', 'Oslo', H(0), H(1), false, false, 'r1'),
      row(1, 'Ann', 'Lima', H(1), null, true, false, 'r2'),
      row(2, 'Bob', 'Rome', H(0), null, true, false, 'r1'),
      row(3, 'Cy', 'Kyiv', H(1), null, true, false, 'r2'),
    ],
    check: (p) => expect(p.runs[1]!.validations.find((v) => v.check === 'row_count')).toMatchObject({ passed: true, expected: 3, actual: 3 }),
  },
  {
    // Points 10 and 11: after a row was quarantined, a run with no changes neither fails its
    // row count (source rows ≠ current keys) nor validation.extract.minRows (a window read).
    sc: {
      name: 'quarantine_then_nothing',
      keys: ['id'],
      columns: ['id', 'name', 'city'],
      pipeline: (o) =>
        timestamp(o, {
          target: '',
          transform: `transform:\n  rules:\n    - { name: has_city, check: "city IS NOT NULL", onFail: quarantine }\n`,
          validation: `  extract: { minRows: 1 }\n`,
        }),
      setup: [ITEMS, `insert into app.items values (1, 'Ann', 'Oslo', '2025-12-31 08:00'), (2, 'Bob', NULL, '2025-12-31 08:00')`],
      steps: [{ source: [] }, { source: [] }],
      after: reads,
    },
    expectTable: [row(1, 'Ann', 'Oslo', H(0), null, true, false, 'r1')],
    check: (p) => {
      expect(p.runs[0]!.counts.quarantined).toBe(1);
      expect(p.runs[1]!.validations.find((v) => v.check === 'row_count')).toMatchObject({ passed: true, expected: 1, actual: 1 });
      // minRows is a full-read check only: not recorded for the (no-change) window read.
      expect(p.runs[0]!.validations.find((v) => v.check === 'extract_min_rows')).toMatchObject({ passed: true });
      expect(p.runs[1]!.validations.find((v) => v.check === 'extract_min_rows')).toBeUndefined();
      expect((p.after as Array<ExtractRead | undefined>).map((x) => x?.kind)).toEqual(['full', 'window']);
    },
  },
  {
    // Point 7: a NULL in validFrom.column is refused with the keys named, before the warehouse.
    sc: {
      name: 'valid_from_null',
      keys: ['id'],
      columns: ['id', 'name', 'city'],
      pipeline: (o) => timestamp(o, { target: '  validFrom: { column: eff }\n', validation: '', transform: '' }),
      setup: [
        `create table app.items (id integer, name varchar, city varchar, updated_at timestamp, eff timestamp)`,
        `insert into app.items values (1, 'Ann', 'Oslo', '2025-12-31 08:00', '2025-12-31 08:00'), (2, 'Bob', 'Rome', '2025-12-31 08:00', '2025-12-31 08:00')`,
      ],
      steps: [
        { source: [] },
        {
          source: [
            `insert into app.items values (3, 'Cy', 'Kyiv', '2026-01-01 00:20', NULL), (4, 'Di', 'Bern', '2026-01-01 00:20', '2026-01-01 00:20')`,
            `update app.items set city = 'Lima', updated_at = '2026-01-01 00:30', eff = NULL where id = 1`,
          ],
        },
      ],
    },
    failingRuns: [1],
    expectTable: [row(1, 'Ann', 'Oslo', '2025-12-31T08:00:00', null, true, false, 'r1'), row(2, 'Bob', 'Rome', '2025-12-31T08:00:00', null, true, false, 'r1')],
    check: (p) => {
      expect(p.runs[1]!.status).toBe('failed');
      expect(p.runs[1]!.error).toMatch(/2 row\(s\) of valid_from_null_(dk|pg) have NULL in target\.validFrom\.column eff \(keys \((1|3)\), \((1|3)\)\); nothing was merged/);
    },
  },
];

describeScenarios('change detection and validation edges on duckdb and postgres', cases);

/**
 * Point 7, the interval rules of validFrom: { column } (README, SCD2): the harness checks on
 * every warehouse, by direct SQL, that each key's intervals are disjoint and valid_from <
 * valid_to. Times are shown to the second; the 1 µs steps are what keeps the intervals apart.
 * Full reads every run, so deletes are seen (by absent keys) and take the run boundary.
 */
const intervals = (deletes: 'retire' | 'mark') => (o: { name: string; table: string }) => `name: ${o.name}
source:
  connection: SRC
  table: app.items
  changeDetection: { mode: full }
key: [id]
target:
  warehouse: WH
  table: ${o.table}
  trackedColumns: [name, city]
  validFrom: { column: eff }
  deletes: ${deletes}
validation:
  rowCount: exact
  sample: 10
`;
const intervalSteps = {
  keys: ['id'],
  columns: ['id', 'name', 'city'],
  setup: [
    `create table app.items (id integer, name varchar, city varchar, eff timestamp)`,
    // 1's source clock runs ahead of the run boundaries (01:00, 02:00 …).
    `insert into app.items values (1, 'Ann', 'Oslo', '2026-01-01 05:00'), (2, 'Bob', 'Rome', '2025-12-31 08:00'), (3, 'Cy', 'Kyiv', '2025-12-31 08:00'), (4, 'Di', 'Bern', '2025-12-31 08:00')`,
  ],
  steps: [
    { source: [] },
    // 1 and 4 deleted (at the boundary 01:00, but never at or before 1's start 05:00); 2
    // corrected with the same source time as its current version (in place, no new version).
    { source: [`delete from app.items where id in (1, 4)`, `update app.items set city = 'Lima' where id = 2`] },
    // 1 re-inserted with a source time before its delete; 4 after it; 3 with an older time (stale).
    {
      source: [
        `insert into app.items values (1, 'Ann', 'Bergen', '2026-01-01 03:00'), (4, 'Di', 'Bern', '2026-01-01 01:30')`,
        `update app.items set city = 'Baku', eff = '2025-12-31 07:00' where id = 3`,
      ],
    },
  ],
};
const D = '2025-12-31T08:00:00';
const intervalCheck = (p: { runs: RunSummary[] }) => {
  expect(p.runs.map((r) => [r.counts.inserted, r.counts.updated, r.counts.deleted, r.counts.stale])).toEqual([
    [4, 0, 0, 0],
    [0, 1, 2, 0],
    [2, 0, 0, 1],
  ]);
};
const intervalCases: ScenarioCase[] = [
  {
    sc: { name: 'intervals_retire', pipeline: intervals('retire'), ...intervalSteps },
    expectTable: [
      row(1, 'Ann', 'Oslo', H(5), H(5), false, false, 'r1'),
      row(1, 'Ann', 'Bergen', H(5), null, true, false, 'r3'),
      // Corrected in place: same start, the run that opened it.
      row(2, 'Bob', 'Lima', D, null, true, false, 'r1'),
      row(3, 'Cy', 'Kyiv', D, null, true, false, 'r1'),
      row(4, 'Di', 'Bern', D, H(1), false, false, 'r1'),
      row(4, 'Di', 'Bern', '2026-01-01T01:30:00', null, true, false, 'r3'),
    ],
    check: intervalCheck,
  },
  {
    sc: { name: 'intervals_mark', pipeline: intervals('mark'), ...intervalSteps },
    expectTable: [
      row(1, 'Ann', 'Oslo', H(5), H(5), false, false, 'r1'),
      row(1, 'Ann', 'Oslo', H(5), H(5), false, true, 'r2'),
      row(1, 'Ann', 'Bergen', H(5), null, true, false, 'r3'),
      // Corrected in place: same start, the run that opened it.
      row(2, 'Bob', 'Lima', D, null, true, false, 'r1'),
      row(3, 'Cy', 'Kyiv', D, null, true, false, 'r1'),
      row(4, 'Di', 'Bern', D, H(1), false, false, 'r1'),
      row(4, 'Di', 'Bern', H(1), '2026-01-01T01:30:00', false, true, 'r2'),
      row(4, 'Di', 'Bern', '2026-01-01T01:30:00', null, true, false, 'r3'),
    ],
    check: intervalCheck,
  },
];

describeScenarios('validFrom: { column } interval rules', intervalCases, await tsqlEngine());
