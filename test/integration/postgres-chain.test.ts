import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLocalStack, runOnce, type LocalStack } from '../../shared/local/stack.js';
import { readCheckpoint } from '../../shared/state/checkpoints.js';
import type { AzuriteHandle } from '../../shared/local/azurite.js';
import { withAzurite } from '../support/azurite.js';
import { CuttingProxy } from '../support/cutting-proxy.js';
import { startPostgres, type PostgresHandle } from '../support/postgres.js';
import { duckQuery, makeProject } from '../support/project.js';

const TIDEMARK = `storage: AzureWebJobsStorage
connections:
  PG: { kind: postgres, setting: TEST_PG_URL, requestTimeout: 1m }
warehouses:
  WH: { kind: duckdb, path: warehouse.duckdb }
duckdb: { memoryLimit: 512MB, threads: 1 }
`;
const pipelineYaml = (name: string, mode: string, table: string) => `name: ${name}
source:
  connection: PG
  table: crm.accounts
  changeDetection: ${mode}
  partRows: 1000
key: [id]
transform:
  sql: select id, trim(name) as name, lower(email) as email, balance, modified_at from extract
target:
  warehouse: WH
  table: ${table}
validation:
  rowCount: exact
  checksumColumns: [id, email, balance]
retry: { attempts: 4, backoff: fixed, initialDelay: 200ms }
`;
const PIPELINES = {
  acc_ts: pipelineYaml('acc_ts', '{ mode: timestamp, column: modified_at, lag: 1m }', 'dw.acc_ts'),
  acc_full: pipelineYaml('acc_full', '{ mode: full }', 'dw.acc_full'),
};
const ROWS = 1500;

interface Side {
  az: AzuriteHandle;
  stack: LocalStack;
  dir: string;
}

describe('postgres source end to end on the local stack, with a connection dropped mid-extract', () => {
  let db: PostgresHandle;
  let proxy: CuttingProxy;
  let cut: Side;
  let clean: Side;
  const clock = { t: Date.parse('2026-02-01T00:00:00Z') };

  async function side(url: string): Promise<Side> {
    const az = await withAzurite();
    const dir = makeProject({ tidemark: TIDEMARK, pipelines: PIPELINES });
    const stack = await openLocalStack({ projectDir: dir, connectionString: az.connectionString, env: { ...process.env, TEST_PG_URL: url }, now: () => new Date(clock.t) });
    return { az, stack, dir };
  }

  async function sql(...statements: string[]): Promise<void> {
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    try {
      for (const s of statements) await c.query(s);
    } finally {
      await c.end();
    }
  }

  beforeAll(async () => {
    db = await startPostgres();
    const u = new URL(db.url);
    proxy = await CuttingProxy.start(u.hostname, Number(u.port));
    await sql(
      'DROP SCHEMA IF EXISTS crm CASCADE',
      'CREATE SCHEMA crm',
      'CREATE TABLE crm.accounts (id integer PRIMARY KEY, name text, email text, balance numeric(14,4), modified_at timestamptz)',
      `INSERT INTO crm.accounts SELECT i, ' Account ' || i || ' ', 'USER' || i || '@X.COM', i * 1.0001, timestamptz '2026-01-01 00:00:00+00' + i * interval '1 second'
       FROM generate_series(1, ${ROWS}) i`,
    );
    const viaProxy = new URL(db.url);
    viaProxy.port = String(proxy.port);
    cut = await side(viaProxy.toString());
    clean = await side(db.url);
  });
  afterAll(async () => {
    for (const s of [cut, clean]) {
      await s?.stack.close();
      await s?.az.stop();
    }
    await proxy?.stop();
    await db?.stop();
  });

  async function warehouse(s: Side, table: string) {
    return duckQuery(
      join(s.dir, 'warehouse.duckdb'),
      `select id, name, email, CAST(balance AS VARCHAR) balance, CAST(_tm_valid_from AS VARCHAR) vf, CAST(_tm_valid_to AS VARCHAR) vt,
              _tm_is_current cur, _tm_row_hash h from ${table} order by id, _tm_valid_from`,
    );
  }

  it('initial and incremental runs (timestamp and full) equal a clean run despite dropped connections', async () => {
    // Round 1: the cut side loses its connection mid-FETCH once per pipeline.
    for (const name of ['acc_ts', 'acc_full'] as const) {
      proxy.armCut(40_000);
      const a = await runOnce(cut.stack, { pipeline: name });
      const b = await runOnce(clean.stack, { pipeline: name });
      expect(a.status, JSON.stringify(a)).toBe('succeeded');
      expect(b.status, b.error).toBe('succeeded');
      expect(a.counts).toEqual(b.counts);
      expect(a.counts).toMatchObject({ extracted: ROWS, inserted: ROWS });
      expect(a.validations.every((v) => v.passed)).toBe(true);
    }
    expect(proxy.cuts).toBe(2);

    await sql(
      `UPDATE crm.accounts SET email = 'new' || id || '@x.com', modified_at = timestamptz '2026-01-05 00:00:00+00' + id * interval '1 ms' WHERE id % 100 = 0`,
      `UPDATE crm.accounts SET modified_at = timestamptz '2026-01-05 00:00:00+00' WHERE id = 7`, // touched, unchanged
      `INSERT INTO crm.accounts VALUES (${ROWS + 1}, 'New', 'NEW@X.COM', 1.5, timestamptz '2026-01-05 00:00:01+00')`,
    );
    clock.t += 3_600_000;

    proxy.armCut(2_000);
    const ts = await runOnce(cut.stack, { pipeline: 'acc_ts' });
    const tsClean = await runOnce(clean.stack, { pipeline: 'acc_ts' });
    expect(ts.status, JSON.stringify(ts)).toBe('succeeded');
    // Timestamp mode: 15 updated + 1 new; id 7 was only touched (the change column is not
    // tracked under `trackedColumns: all`), so it and the 59 rows of the 1 m lag re-read (ids
    // 1441..1500 minus the updated 1500) are unchanged.
    expect(ts.counts).toMatchObject({ extracted: 76, inserted: 1, updated: 15, unchanged: 60, deleted: 0 });
    expect(ts.counts).toEqual(tsClean.counts);

    // Deletes only a full read sees (timestamp mode would count them as still current).
    await sql(`DELETE FROM crm.accounts WHERE id IN (5, 6)`);
    proxy.armCut(40_000);
    const full = await runOnce(cut.stack, { pipeline: 'acc_full' });
    const fullClean = await runOnce(clean.stack, { pipeline: 'acc_full' });
    expect(full.status, JSON.stringify(full)).toBe('succeeded');
    expect(full.counts).toMatchObject({ extracted: ROWS - 1, inserted: 1, updated: 16, deleted: 2 });
    expect(full.counts).toEqual(fullClean.counts);
    expect(proxy.cuts).toBe(4);

    for (const table of ['dw.acc_ts', 'dw.acc_full']) {
      const a = await warehouse(cut, table);
      expect(a.length).toBeGreaterThan(ROWS);
      expect(a).toEqual(await warehouse(clean, table));
    }
    const cp = (await readCheckpoint(cut.stack.ctx.tables, 'acc_ts')).checkpoint;
    expect(cp.watermark).toBe('2026-01-05T00:00:01.500000Z');
  }, 600_000);
});
