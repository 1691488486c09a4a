import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mssql from 'mssql';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderSchemas } from '../../../cli/commands/schema.js';
import { loadProject } from '../../../shared/config/load.js';
import { openLocalStack, runOnce } from '../../../shared/local/stack.js';
import { defaultIntrospector } from '../../../shared/plan/introspect/factory.js';
import { initProject, parseFrom, type InitOptions } from '../../../shared/plan/init.js';
import { makePlan } from '../../../shared/plan/make-plan.js';
import { planSchema } from '../../../shared/plan/model.js';
import { renderMarkdown } from '../../../shared/plan/render.js';
import { withAzurite } from '../../support/azurite.js';
import { startPostgres, type PostgresHandle } from '../../support/postgres.js';
import { duckExec, duckQuery } from '../../support/project.js';
import { tsqlEngine } from '../../support/tsql-engine.js';

const duck = { memoryLimit: '256MB', threads: 1, tempDir: join(tmpdir(), 'tidemark-test-spill') };
const NOW = new Date('2026-03-01T00:00:00Z');

function options(dir: string, from: string | undefined, env: NodeJS.ProcessEnv, extra: Partial<InitOptions> = {}): InitOptions {
  return {
    dir,
    ...(from ? { from: parseFrom(from) } : {}),
    warehouse: 'duckdb',
    force: false,
    env,
    duck,
    introspectorFor: (f, r) => defaultIntrospector(f, r, duck, env),
    schemas: renderSchemas(),
    now: () => NOW,
    ...extra,
  };
}

/**
 * Runs every written pipeline once through the local chain, on an Azurite of its own (the
 * projects reuse pipeline names, and a checkpoint of one project must not leak into another).
 */
async function runAll(dir: string, env: NodeJS.ProcessEnv) {
  const az = await withAzurite();
  const stack = await openLocalStack({ projectDir: dir, connectionString: az.connectionString, env });
  try {
    const out: Record<string, Awaited<ReturnType<typeof runOnce>>> = {};
    for (const name of stack.project.pipelines.keys()) out[name] = await runOnce(stack, { pipeline: name });
    return out;
  } finally {
    await stack.close();
    await az.stop();
  }
}

describe('tidemark init', () => {

  it('from a DuckDB file: picks timestamp for an indexed modified-at column, full otherwise, leaves keyless tables to the user, and the pipelines run green', async () => {
    const work = mkdtempSync(join(tmpdir(), 'tidemark-init-'));
    const src = join(work, 'source.duckdb');
    await duckExec(
      src,
      'CREATE SCHEMA erp',
      'CREATE TABLE erp.customers (id INTEGER PRIMARY KEY, name VARCHAR, LastModified TIMESTAMP)',
      `INSERT INTO erp.customers SELECT i, 'c' || i, TIMESTAMP '2026-01-01' + to_seconds(i) FROM range(1, 301) t(i)`,
      'CREATE TABLE erp.order_lines (order_id INTEGER, line_no INTEGER, qty INTEGER, created_at TIMESTAMP, PRIMARY KEY (order_id, line_no))',
      `INSERT INTO erp.order_lines SELECT i // 3, i % 3, i, TIMESTAMP '2026-01-01' FROM range(0, 90) t(i)`,
      'CREATE TABLE erp.audit_log (event_id INTEGER, msg VARCHAR)',
      `INSERT INTO erp.audit_log VALUES (1, 'x')`,
    );
    const dir = join(work, 'project');
    const r = await initProject(options(dir, `duckdb:${src}`, process.env));
    const byName = Object.fromEntries(r.pipelines.map((p) => [p.name, p]));
    expect(Object.keys(byName).sort()).toEqual(['audit_log', 'customers', 'order_lines']);
    expect(byName.customers!.proposal).toMatchObject({ mode: 'timestamp', column: 'LastModified' });
    expect(byName.order_lines!.proposal.mode).toBe('full');
    expect(byName.order_lines!.text).toContain('key: [order_id, line_no]');
    // created_at is a date-time but its name does not say "modified": not a change column.
    expect(byName.order_lines!.text).not.toContain('created_at');
    expect(byName.customers!.text).toMatch(/# Change detection timestamp on LastModified: .*\n# This mode: .*\n# The alternatives, for this table:\n#   - cdc: .*\n/);
    expect(byName.customers!.text).toMatch(/# This mode: timestamp: .*misses hard deletes unless a periodic full run reconciles them/);
    expect(byName.audit_log!.needsKey).toBe(true);
    expect(readdirSync(join(dir, 'pipelines')).sort()).toEqual(['audit_log.yaml.needs-key', 'customers.yaml', 'order_lines.yaml']);
    expect(readFileSync(join(dir, 'pipelines', 'audit_log.yaml.needs-key'), 'utf8')).toMatch(/key: \[\]\s+# FILL IN: erp\.audit_log has no primary key.*candidates by name: event_id/);
    expect(readFileSync(join(dir, 'tidemark.yaml'), 'utf8')).toContain('SOURCE: { kind: duckdb, path: "../source.duckdb" }');
    expect(existsSync(join(dir, 'schemas', 'pipeline.schema.json'))).toBe(true);

    const runs = await runAll(dir, process.env);
    expect(Object.keys(runs).sort()).toEqual(['customers', 'order_lines']);
    for (const s of Object.values(runs)) {
      expect(s.status, s.error).toBe('succeeded');
      expect(s.validations.every((v) => v.passed), JSON.stringify(s.validations)).toBe(true);
    }
    expect(runs.customers!.counts.inserted).toBe(300);
    expect(runs.order_lines!.counts.inserted).toBe(90);
    expect(await duckQuery(join(dir, '.tidemark', 'warehouse.duckdb'), 'select count(*)::INT n from dw.customers where _tm_is_current')).toEqual([{ n: 300 }]);
  });

  it('overwrites nothing without --force, and writes nothing at all when one file is in the way', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tidemark-init-'));
    writeFileSync(join(dir, 'tidemark.yaml'), 'mine: true\n');
    await expect(initProject(options(dir, undefined, process.env))).rejects.toThrow(/tidemark\.yaml.*already exists.*nothing was written.*--force/);
    expect(readdirSync(dir)).toEqual(['tidemark.yaml']);
    expect(readFileSync(join(dir, 'tidemark.yaml'), 'utf8')).toBe('mine: true\n');
    const r = await initProject(options(dir, undefined, process.env, { force: true }));
    expect(r.written).toContain('tidemark.yaml');
    expect(readFileSync(join(dir, 'tidemark.yaml'), 'utf8')).toContain('SOURCE: { kind: duckdb, path: "data/sample.duckdb" }');
  });

  it('without --from writes a runnable sample project', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'tidemark-init-')), 'new');
    const r = await initProject(options(dir, undefined, process.env));
    expect(r.pipelines.map((p) => [p.name, p.proposal.mode])).toEqual([
      ['customers', 'timestamp'],
      ['products', 'full'],
    ]);
    expect(loadProject(dir).pipelines.size).toBe(2);
    // plan renders for an init'ed project, with volumes read from the source.
    const plan = await makePlan({ project: loadProject(dir), env: process.env, duck, runs: [], now: NOW });
    expect(planSchema.parse(JSON.parse(JSON.stringify(plan)))).toEqual(plan);
    expect(plan.scope.map((x) => [x.pipeline, x.records, x.changeDetection])).toEqual([
      ['customers', 200, 'timestamp (updated_at)'],
      ['products', 50, 'full'],
    ]);
    expect(plan.mapping[0]!.columns).toContainEqual({ source: 'updated_at', sourceType: 'TIMESTAMP WITH TIME ZONE', targetType: 'TIMESTAMP WITH TIME ZONE' });
    expect(renderMarkdown(plan)).toContain('| shop.customers | customers | 200 | full then incremental | timestamp (updated_at) |');
    const runs = await runAll(dir, process.env);
    expect(runs.customers).toMatchObject({ status: 'succeeded', counts: { inserted: 200 } });
    expect(runs.products).toMatchObject({ status: 'succeeded', counts: { inserted: 50 } });
  });

  it('refuses bad --from values and unknown tables with the fix named', async () => {
    expect(() => parseFrom('sqlite:x.db')).toThrow(/duckdb:<file>, postgres:<setting> or mssql:<setting>/);
    expect(() => parseFrom('postgres:postgres://u:p@h/db')).toThrow(/must name a setting.*never the connection string/);
    expect(() => parseFrom('duckdb:')).toThrow(/give a location/);
    const dir = mkdtempSync(join(tmpdir(), 'tidemark-init-'));
    await expect(initProject(options(dir, 'postgres:NOT_SET_ANYWHERE', {}))).rejects.toThrow(/app setting NOT_SET_ANYWHERE is not set/);
    const src = join(dir, 's.duckdb');
    await duckExec(src, 'CREATE TABLE t1 (id INTEGER PRIMARY KEY)');
    await expect(initProject(options(join(dir, 'p'), `duckdb:${src}`, process.env, { tables: ['nope'] }))).rejects.toThrow(/table "nope" not found.*tables there: main\.t1/);
    expect(existsSync(join(dir, 'p', 'tidemark.yaml'))).toBe(false);
  });

  describe('from PostgreSQL (PGlite over its socket server)', () => {
    let db: PostgresHandle;
    beforeAll(async () => {
      db = await startPostgres();
      const c = new pg.Client({ connectionString: db.url });
      await c.connect();
      try {
        for (const s of [
          'DROP SCHEMA IF EXISTS sales CASCADE',
          'CREATE SCHEMA sales',
          'CREATE TABLE sales.accounts (account_id integer PRIMARY KEY, name text, balance numeric(12,2), updated_at timestamptz NOT NULL)',
          'CREATE INDEX accounts_updated ON sales.accounts (updated_at)',
          `INSERT INTO sales.accounts SELECT i, 'a' || i, i * 1.5, timestamptz '2026-01-01 00:00:00+00' + i * interval '1 minute' FROM generate_series(1, 400) i`,
          // A modified-at column without an index: proposed full, with the advice to index it.
          'CREATE TABLE sales.notes (note_id integer PRIMARY KEY, body text, modified_at timestamp)',
          `INSERT INTO sales.notes SELECT i, 'n' || i, timestamp '2026-01-01' FROM generate_series(1, 25) i`,
        ])
          await c.query(s);
      } finally {
        await c.end();
      }
    });
    afterAll(async () => {
      await db?.stop();
    });

    it('reads keys, counts, sizes and indexes, and the pipelines run green', async () => {
      const env = { ...process.env, CRM_PG: db.url };
      const dir = mkdtempSync(join(tmpdir(), 'tidemark-init-pg-'));
      const r = await initProject(options(dir, 'postgres:CRM_PG', env, { tables: ['sales.accounts', 'notes'] }));
      const [accounts, notes] = r.pipelines;
      expect(accounts!.table).toMatchObject({ primaryKey: ['account_id'], rowCount: 400 });
      expect(accounts!.table.bytes).toBeGreaterThan(8192);
      expect(accounts!.table.indexedColumns).toEqual(expect.arrayContaining(['account_id', 'updated_at']));
      expect(accounts!.proposal).toMatchObject({ mode: 'timestamp', column: 'updated_at' });
      expect(notes!.proposal.mode).toBe('full');
      expect(notes!.proposal.warnings).toEqual([expect.stringMatching(/modified_at looks like a modified-at column but no index leads with it/)]);
      expect(readFileSync(join(dir, 'tidemark.yaml'), 'utf8')).toContain('SOURCE: { kind: postgres, setting: CRM_PG }');
      const runs = await runAll(dir, env);
      expect(runs.accounts).toMatchObject({ status: 'succeeded', counts: { inserted: 400 } });
      expect(runs.notes).toMatchObject({ status: 'succeeded', counts: { inserted: 25 } });
    });
  });

  describe('from the T-SQL engine (SQL Server over TDS)', () => {
    let url: string | undefined;
    const schema = `tm_init_${process.pid}`;
    beforeAll(async () => {
      const e = await tsqlEngine();
      if ('skip' in e) return;
      url = e.url;
      const pool = await new mssql.ConnectionPool(mssql.ConnectionPool.parseConnectionString(url)).connect();
      try {
        await pool.request().batch(`CREATE SCHEMA ${schema}`);
        // snake_case tables are run; the MixedCase one checks that names come back as declared
        // (this engine's sys.* views lower-case them; INFORMATION_SCHEMA does not).
        await pool.request().batch(`CREATE TABLE ${schema}.accounts (account_id int NOT NULL PRIMARY KEY, name nvarchar(100), modified_at datetime2(3) NOT NULL);
          CREATE INDEX ix_accounts_modified_at ON ${schema}.accounts (modified_at);
          CREATE TABLE ${schema}.regions (region_code varchar(8) NOT NULL PRIMARY KEY, title nvarchar(50));
          CREATE TABLE ${schema}.CustomerNotes (NoteId int NOT NULL PRIMARY KEY, Body nvarchar(200), LastUpdated datetime2 NULL);
          CREATE INDEX IX_Notes_LastUpdated ON ${schema}.CustomerNotes (LastUpdated);`);
        const values = Array.from({ length: 120 }, (_, i) => `(${i + 1}, N'acc ${i + 1}', DATEADD(second, ${i}, '2026-01-01T00:00:00'))`).join(', ');
        await pool.request().batch(`INSERT INTO ${schema}.accounts VALUES ${values}; INSERT INTO ${schema}.regions VALUES ('EU', N'Europe'), ('US', N'Americas');`);
      } finally {
        await pool.close();
      }
    });

    it('reads the catalog on the engine and the pipelines run green', async (t) => {
      if (!url) return t.skip();
      const env = { ...process.env, CRM_SQL: url };
      const dir = mkdtempSync(join(tmpdir(), 'tidemark-init-mssql-'));
      const notes = (await initProject(options(mkdtempSync(join(tmpdir(), 'tidemark-init-mssql-')), 'mssql:CRM_SQL', env, { tables: [`${schema}.CustomerNotes`] }))).pipelines[0]!;
      expect(notes.table).toMatchObject({ name: 'CustomerNotes', primaryKey: ['NoteId'], indexedColumns: expect.arrayContaining(['NoteId', 'LastUpdated']) });
      expect(notes.proposal).toMatchObject({ mode: 'timestamp', column: 'LastUpdated' });
      expect(notes.name).toBe('customernotes');

      const r = await initProject(options(dir, 'mssql:CRM_SQL', env, { tables: [`${schema}.accounts`, `${schema}.regions`] }));
      const [accounts, regions] = r.pipelines;
      expect(accounts!.table).toMatchObject({ primaryKey: ['account_id'], rowCount: 120 });
      expect(accounts!.proposal).toMatchObject({ mode: 'timestamp', column: 'modified_at' });
      expect(regions!.proposal.mode).toBe('full');
      expect(regions!.table.primaryKey).toEqual(['region_code']);
      const runs = await runAll(dir, env);
      expect(runs.accounts, JSON.stringify(runs.accounts)).toMatchObject({ status: 'succeeded', counts: { inserted: 120 } });
      expect(runs.regions, runs.regions?.error).toMatchObject({ status: 'succeeded', counts: { inserted: 2 } });
    });
  });
});
