import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadProject } from '../../../shared/config/load.js';
import { makePlan } from '../../../shared/plan/make-plan.js';
import { renderMarkdown } from '../../../shared/plan/render.js';
import { startPostgres, type PostgresHandle } from '../../support/postgres.js';
import { duckExec, makeProject } from '../../support/project.js';
import { pgExec } from '../../support/scd-harness.js';
import { tsqlEngine } from '../../support/tsql-engine.js';
import { tsqlQuery } from '../../support/tsql-sql.js';

// `tidemark plan` on what each source offers an incremental window: an index that leads with
// the change column (PostgreSQL, SQL Server: read from the catalog), row groups ordered on it
// (DuckDB: its zone maps). Where nothing helps, the plan names the fix; on PostgreSQL and the
// T-SQL engine the printed CREATE INDEX is run as printed and the next plan drops the advice.
const duck = { memoryLimit: '256MB', threads: 1, tempDir: join(tmpdir(), 'tidemark-test-spill') };
const NOW = new Date('2026-03-01T00:00:00Z');
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function project(connection: string, pipelines: Record<string, { table: string; column: string }>): string {
  const dir = makeProject({
    tidemark: `storage: AzureWebJobsStorage\nconnections:\n  SRC: ${connection}\nwarehouses:\n  WH: { kind: duckdb, path: warehouse.duckdb }\nduckdb: { memoryLimit: 256MB, threads: 1 }\n`,
    pipelines: Object.fromEntries(
      Object.entries(pipelines).map(([name, p]) => [
        name,
        `name: ${name}\nsource:\n  connection: SRC\n  table: ${p.table}\n  changeDetection: { mode: timestamp, column: ${p.column} }\nkey: [id]\ntarget: { warehouse: WH, table: dw.${name}, deletes: ignore }\n`,
      ]),
    ),
  });
  dirs.push(dir);
  return dir;
}

const scanRisks = async (dir: string, env: NodeJS.ProcessEnv = process.env) => {
  const plan = await makePlan({ project: loadProject(dir), env, duck, runs: [], now: NOW });
  expect(plan.risks.filter((r) => r.pipeline === null)).toEqual([]);
  return { plan, scan: plan.risks.filter((r) => /incremental read scans/.test(r.risk)).map((r) => `${r.pipeline}: ${r.risk}`) };
};

describe('plan: the source scan of an incremental window', () => {
  it('DuckDB: rows in modified order let zone maps skip; rows updated in place put new values in every row group, and the plan says so', async () => {
    const dir = project('{ kind: duckdb, path: source.duckdb }', {
      ordered: { table: 'crm.ordered', column: 'modified_at' },
      scattered: { table: 'crm.scattered', column: 'modified_at' },
    });
    // 600 000 rows: five row groups of 122 880. `scattered` then has 1 % of its rows, spread
    // over every row group, updated in place with a newer time (as bench scenario D does).
    await duckExec(
      join(dir, 'source.duckdb'),
      'CREATE SCHEMA crm',
      `CREATE TABLE crm.ordered AS SELECT i AS id, TIMESTAMP '2026-01-01' + INTERVAL (i) SECOND AS modified_at FROM range(600000) r(i)`,
      'CREATE TABLE crm.scattered AS SELECT * FROM crm.ordered',
      'CHECKPOINT',
      `UPDATE crm.scattered SET modified_at = TIMESTAMP '2026-02-01' WHERE id % 100 = 0`,
      'CHECKPOINT',
    );
    const { plan, scan } = await scanRisks(dir);
    expect(scan).toEqual([
      `scattered: a window on modified_at reads 5 of crm.scattered's 5 row groups (its newest values sit in most row groups, as when rows are updated in place): DuckDB has no range index, so every incremental read scans the table; keep the rows in modified_at order (append changed rows, or re-sort in a quiet window: CREATE OR REPLACE TABLE "crm"."scattered" AS SELECT * FROM "crm"."scattered" ORDER BY "modified_at"), or use mode full, which reads the table anyway and also sees deletes`,
    ]);
    expect(renderMarkdown(plan)).toContain('- scattered: a window on modified_at reads 5 of');

    // The advice, followed: the re-sorted table reads one row group per window.
    await duckExec(join(dir, 'source.duckdb'), 'CREATE OR REPLACE TABLE "crm"."scattered" AS SELECT * FROM "crm"."scattered" ORDER BY "modified_at"', 'CHECKPOINT');
    expect((await scanRisks(dir)).scan).toEqual([]);
  }, 120_000);

  describe('PostgreSQL (PGlite over its socket server)', () => {
    let db: PostgresHandle;
    beforeAll(async () => {
      db = await startPostgres();
      await pgExec(
        db.url,
        [
          'CREATE SCHEMA "Sales"',
          'CREATE TABLE "Sales".indexed (id integer PRIMARY KEY, updated_at timestamptz NOT NULL)',
          'CREATE INDEX ON "Sales".indexed (updated_at)',
          // The change column second in an index does not help a range read on it.
          'CREATE TABLE "Sales"."PlainNotes" (id integer PRIMARY KEY, "UpdatedAt" timestamp, body text)',
          'CREATE INDEX ON "Sales"."PlainNotes" (body, "UpdatedAt")',
          `INSERT INTO "Sales"."PlainNotes" SELECT i, timestamp '2026-01-01' + i * interval '1 minute', 'n' || i FROM generate_series(1, 50) i`,
        ].join(';\n'),
      );
    }, 120_000);
    afterAll(async () => {
      await db?.stop();
    });

    it('reads the catalog: an index leading with the column needs nothing; otherwise the printed CREATE INDEX, run as printed, ends the advice', async () => {
      const env = { ...process.env, SRC_PG: db.url };
      const dir = project('{ kind: postgres, setting: SRC_PG }', {
        indexed: { table: 'Sales.indexed', column: 'updated_at' },
        notes: { table: 'Sales.PlainNotes', column: 'UpdatedAt' },
      });
      const ddl = 'CREATE INDEX CONCURRENTLY "ix_PlainNotes_UpdatedAt" ON "Sales"."PlainNotes" ("UpdatedAt")';
      expect((await scanRisks(dir, env)).scan).toEqual([
        `notes: no index leads with UpdatedAt: every incremental read scans Sales.PlainNotes; create one (${ddl}) and the window reads only the rows it selects`,
      ]);
      await pgExec(db.url, ddl);
      expect((await scanRisks(dir, env)).scan).toEqual([]);
    }, 120_000);
  });

  describe('SQL Server (the T-SQL engine)', () => {
    let url: string | undefined;
    const schema = `tm_scan_${process.pid}`;
    beforeAll(async () => {
      const e = await tsqlEngine();
      if ('skip' in e) return;
      url = e.url;
      await tsqlQuery(url, `CREATE SCHEMA ${schema}`);
      await tsqlQuery(
        url,
        `CREATE TABLE ${schema}.indexed (id int NOT NULL PRIMARY KEY, modified_at datetime2(3) NOT NULL);
          CREATE INDEX ix_indexed_modified ON ${schema}.indexed (modified_at);
          CREATE TABLE ${schema}.plain (id int NOT NULL PRIMARY KEY, modified_at datetime2(3) NULL);`,
      );
    }, 120_000);

    it('reads the catalog the same way, and the printed CREATE INDEX runs on the engine', async (t) => {
      if (!url) return t.skip();
      const env = { ...process.env, SRC_SQL: url };
      const dir = project('{ kind: mssql, setting: SRC_SQL }', {
        indexed: { table: `${schema}.indexed`, column: 'modified_at' },
        plain: { table: `${schema}.plain`, column: 'modified_at' },
      });
      const ddl = `CREATE NONCLUSTERED INDEX [ix_plain_modified_at] ON [${schema}].[plain] ([modified_at])`;
      expect((await scanRisks(dir, env)).scan).toEqual([
        `plain: no index leads with modified_at: every incremental read scans ${schema}.plain; create one (${ddl}) and the window reads only the rows it selects`,
      ]);
      await tsqlQuery(url, ddl);
      expect((await scanRisks(dir, env)).scan).toEqual([]);
    }, 120_000);
  });
});
