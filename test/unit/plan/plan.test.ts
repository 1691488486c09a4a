import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderSchemas } from '../../../cli/commands/schema.js';
import { loadProject } from '../../../shared/config/load.js';
import { buildPlan, logicalFromSource, mermaidGraph, planSchema, priorities, scheduleIntervalMinutes } from '../../../shared/plan/model.js';
import { readBench } from '../../../shared/plan/make-plan.js';
import { renderMarkdown } from '../../../shared/plan/render.js';
import { rangeReadIsCheap, windowScanAdvice, type SourceKind, type TableProfile } from '../../../shared/plan/profile.js';
import { makeProject } from '../../support/project.js';

const repo = new URL('../../../', import.meta.url).pathname;
const NOW = new Date('2026-03-01T12:00:00Z');

function profile(name: string, rows: number, extra: Partial<TableProfile> = {}): TableProfile {
  return { schema: 'crm', name, columns: [{ name: 'AccountId', type: 'BIGINT', temporal: false }, { name: 'AnnualRevenue', type: 'DECIMAL(18,2)', temporal: false }], primaryKey: ['AccountId'], rowCount: rows, bytes: null, indexedColumns: [], zoneMaps: true, ...extra };
}

describe('migration plan', () => {
  it('renders the demo project in Markdown and JSON; the JSON passes its schema, the committed schema is current', () => {
    const project = loadProject(repo);
    const profiles = new Map([
      ['crm_accounts', profile('accounts', 100_000)],
      ['crm_contacts', profile('contacts', 200_000)],
    ]);
    const runs = [
      { pipeline: 'crm_contacts', status: 'succeeded', createdAt: '2026-02-28T12:00:00Z', extracted: 3000, ms: 1500 },
      { pipeline: 'crm_contacts', status: 'failed', createdAt: '2026-02-28T13:00:00Z', extracted: 99999, ms: 1 },
      { pipeline: 'crm_accounts', status: 'succeeded', createdAt: '2026-01-01T00:00:00Z', extracted: 5, ms: 5 },
    ];
    const plan = buildPlan({ project, profiles, unreadable: [], runs, now: NOW, bench: { rows: 10_000_000, seconds: 50 } });
    expect(planSchema.parse(JSON.parse(JSON.stringify(plan)))).toEqual(plan);
    expect(plan.summary).toMatchObject({ initialRecords: 300_000, dailyRecords: 3000, pipelines: 3 });
    // Recent runs win over the bench: 3000 rows in 1.5 s. Failed and old runs do not count.
    expect(plan.estimate).toEqual({ seconds: 150, rowsPerSecond: 2000, basis: expect.stringMatching(/^recent runs: 1 succeeded run/) });
    expect(plan.scope.find((s) => s.pipeline === 'crm_contacts')).toMatchObject({ records: 200_000, loadType: 'full then incremental', changeDetection: 'timestamp (ModifiedAt)', priority: 1 });
    expect(plan.scope.find((s) => s.pipeline === 'crm_opportunities')!.records).toBeNull();
    expect(plan.risks).toContainEqual({ pipeline: 'crm_contacts', risk: expect.stringMatching(/timestamp mode with no delete reconciliation/) });
    expect(plan.mapping.find((m) => m.pipeline === 'crm_accounts')!.columns).toEqual([
      { source: 'AccountId', sourceType: 'BIGINT', targetType: 'BIGINT' },
      { source: 'AnnualRevenue', sourceType: 'DECIMAL(18,2)', targetType: 'DECIMAL(18,2)' },
    ]);
    expect(plan.validation.find((v) => v.pipeline === 'crm_accounts')!.checks).toEqual([
      'row count: source rows vs target current rows',
      'checksum on AccountId, Email, AnnualRevenue',
      'quality rule email_present (quarantine)',
    ]);
    const md = renderMarkdown(plan);
    for (const h of ['## Summary', '## Scope', '### Phase 1: initial load', '### Phase 2: incremental sync', '## Data mapping', '## Validation strategy', '## Rollback plan', '## Risks', '```mermaid']) expect(md).toContain(h);
    expect(md).toContain('| crm.contacts | crm_contacts | 200,000 | full then incremental | timestamp (ModifiedAt) | 0 5-59/15 * * * * | P1 |');
    expect(md).toContain('Estimated initial load: 3 min at 2,000 rows/s; throughput: recent runs');
    const schema = JSON.parse(renderSchemas()['plan.schema.json']!) as { required: string[] };
    expect(schema.required).toEqual(expect.arrayContaining(['summary', 'scope', 'phases', 'mapping', 'validation', 'rollback', 'risks', 'estimate', 'mermaid']));
    expect(readFileSync(join(repo, 'schemas', 'plan.schema.json'), 'utf8')).toBe(renderSchemas()['plan.schema.json']);
  });

  it('without runs the estimate says it comes from the bench; with neither it says how to get one', () => {
    const project = loadProject(repo);
    const profiles = new Map([['crm_accounts', profile('accounts', 1_000_000)]]);
    const bench = readBench(repo)!;
    expect(bench.rows).toBeGreaterThan(0);
    const withBench = buildPlan({ project, profiles, unreadable: [], runs: [], now: NOW, bench });
    expect(withBench.estimate.basis).toMatch(/^the latest bench results \(bench\/results\/latest\.json/);
    expect(withBench.estimate.seconds).toBe(Math.round(1_000_000 / (bench.rows / bench.seconds)));
    expect(withBench.summary.dailyRecords).toBeNull();
    const none = buildPlan({ project, profiles: new Map(), unreadable: [{ connection: 'DEMO', reason: 'no file' }], runs: [], now: NOW });
    expect(none.estimate).toEqual({ seconds: null, rowsPerSecond: null, basis: expect.stringMatching(/no throughput measured yet/) });
    expect(none.risks[0]).toEqual({ pipeline: null, risk: 'source DEMO could not be read for statistics: no file' });
    expect(renderMarkdown(none)).toContain('Initial volume: unknown records');
  });

  it('orders by dependsOn, draws the graph, and finds the risks of each mode', () => {
    const dir = makeProject({
      pipelines: {
        a: 'name: a\nsource: { connection: SRC, table: s.a }\nkey: [id]\ntarget: { warehouse: WH, table: dw.a }\n',
        b: 'name: b\ndependsOn: [a]\nschedule: "0 */5 * * * *"\nsource: { connection: SRC, table: s.b, changeDetection: { mode: timestamp, column: m } }\nkey: [id]\ntarget: { warehouse: WH, table: dw.b, deletes: retire }\nbackup: { enabled: false }\n',
        c: 'name: c\ndependsOn: [b, a]\nschedule: "0 */10 * * * *"\nsource: { connection: SRC, table: s.c, changeDetection: { mode: cdc } }\nkey: [id]\ntarget: { warehouse: WH, table: dw.c }\n',
      },
    });
    const project = loadProject(dir);
    expect([...priorities(project.pipelines)]).toEqual([['a', 1], ['b', 2], ['c', 3]]);
    expect(mermaidGraph(project.pipelines)).toBe('flowchart LR\n  a["a<br/>s.a → dw.a"]\n  b["b<br/>s.b → dw.b"]\n  c["c<br/>s.c → dw.c"]\n  a --> b\n  b --> c\n  a --> c');
    const profiles = new Map<string, TableProfile>([
      ['a', profile('a', 10, { primaryKey: [] })],
      ['b', profile('b', 10, { indexedColumns: ['id'], zoneMapReach: { m: { rowGroups: 8, touched: 7 } } })],
      ['c', profile('c', 10, { cdc: { captureInstance: 's_c', retentionMinutes: 15 } })],
    ]);
    const plan = buildPlan({ project, profiles, unreadable: [], runs: [], now: NOW });
    expect(plan.scope.map((s) => [s.pipeline, s.priority])).toEqual([['a', 1], ['b', 2], ['c', 3]]);
    expect(plan.risks.map((r) => `${r.pipeline}: ${r.risk}`)).toEqual([
      'a: s.a has no primary key in the source: key [id] is trusted, not enforced',
      'b: timestamp mode cannot see hard deletes, yet target.deletes is retire: deleted source rows stay current until a full run',
      `b: a window on m reads 7 of crm.b's 8 row groups (its newest values sit in most row groups, as when rows are updated in place): DuckDB has no range index, so every incremental read scans the table; keep the rows in m order (append changed rows, or re-sort in a quiet window: CREATE OR REPLACE TABLE "crm"."b" AS SELECT * FROM "crm"."b" ORDER BY "m"), or use mode full, which reads the table anyway and also sees deletes`,
      'b: backups are off: a bad initial load or full refresh can only be undone run by run',
      'c: CDC retention (15 min) is not well above the schedule gap (10 min): one missed run forces a re-snapshot',
    ]);
    expect(plan.phases.incremental.find((x) => x.pipeline === 'b')!.expectedLatency).toBe('up to 5 min plus the run time');
    expect(scheduleIntervalMinutes('0 0 2 * * *')).toBe(1440);
    expect(scheduleIntervalMinutes('0 0 */6 * * *')).toBe(360);
  });
});

describe('logicalFromSource: PostgreSQL arrays preview as the list the merge creates', () => {
  it.each([
    ['text[]', { kind: 'list', element: { kind: 'text' } }],
    ['integer[]', { kind: 'list', element: { kind: 'integer', bits: 32 } }],
    ['numeric(12,3)[]', { kind: 'list', element: { kind: 'decimal', precision: 12, scale: 3 } }],
    // Unconstrained numeric and other element types travel as JSON (extract/postgres-types.ts).
    ['numeric[]', { kind: 'json' }],
  ])('%s', (type, want) => {
    expect(logicalFromSource('postgres', type)).toEqual(want);
  });
});

describe('windowScanAdvice: what makes an incremental window cheap, per source dialect', () => {
  const t = (extra: Partial<TableProfile> = {}): TableProfile => ({ ...profile('Odd"]Name', 10, { schema: 'S"]x', zoneMaps: false }), ...extra });
  it.each<[SourceKind, string]>([
    ['postgres', 'CREATE INDEX CONCURRENTLY "ix_Odd__Name_Changed" ON "S""]x"."Odd""]Name" ("Changed")'],
    ['mssql', 'CREATE NONCLUSTERED INDEX [ix_Odd__Name_Changed] ON [S"]]x].[Odd"]]Name] ([Changed])'],
  ])('%s: the CREATE INDEX names the table and column quoted for the dialect', (kind, ddl) => {
    expect(windowScanAdvice(t(), kind, 'Changed')).toBe(`no index leads with Changed: every incremental read scans S"]x.Odd"]Name; create one (${ddl}) and the window reads only the rows it selects`);
    // The column leading an index: nothing to say. Second in an index is not leading (the catalog gives only leaders).
    expect(windowScanAdvice(t({ indexedColumns: ['Changed'] }), kind, 'Changed')).toBeUndefined();
  });

  it('duckdb: zone maps help while a window reads at most half of the row groups, or the table is one row group', () => {
    const reach = (rowGroups: number, touched: number) => t({ zoneMaps: true, zoneMapReach: { Changed: { rowGroups, touched } } });
    expect([rangeReadIsCheap(reach(1, 1), 'Changed'), rangeReadIsCheap(reach(8, 4), 'Changed'), rangeReadIsCheap(reach(8, 5), 'Changed')]).toEqual([true, true, false]);
    expect(windowScanAdvice(reach(8, 5), 'duckdb', 'Changed')).toContain('CREATE OR REPLACE TABLE "S""]x"."Odd""]Name" AS SELECT * FROM "S""]x"."Odd""]Name" ORDER BY "Changed"');
    expect(windowScanAdvice(reach(8, 4), 'duckdb', 'Changed')).toBeUndefined();
  });
});
