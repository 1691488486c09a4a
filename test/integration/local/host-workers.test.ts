import { join } from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { startRun } from '../../../shared/engine/start-run.js';
import type { LocalHostOptions } from '../../../shared/local/host.js';
import { startAzurite } from '../../../shared/local/azurite.js';
import type { LocalStack } from '../../../shared/local/stack.js';
import { getRun, isTerminalStatus, listRuns } from '../../../shared/state/runs.js';
import { startPostgres } from '../../support/postgres.js';
import { pgExec } from '../../support/scd-harness.js';
import { duckExec, makeProject } from '../../support/project.js';
import { ACCOUNTS, HOUR, T0, changeAccounts, drain, openFaultyStack, pipelineState, seedAccounts, type PipelineState } from '../../support/reliability.js';

/**
 * "4 workers = 1 worker": the same runs through a host with one worker, and through one with
 * four workers where every message and manifest goes to two workers at once and every message
 * is delivered again while its first delivery still works. Whole tables must be equal.
 */

/** A partitioned first load (four key ranges, read in parallel by the workers), then incremental windows. */
const events = (schema = 'dw') => `name: events
source:
  connection: SRC
  table: crm.events
  changeDetection: { mode: timestamp, column: modified_at }
  partRows: 1000
  partitions: { count: 4 }
key: [id]
target: { warehouse: WH, table: ${schema}.dim_event }
validation: { rowCount: exact, checksumColumns: [id, email] }
retry: { attempts: 3, backoff: exponential, initialDelay: 20ms }
`;

const tidemarkYaml = (warehouse: string) => `storage: AzureWebJobsStorage
connections:
  SRC: { kind: duckdb, path: source.duckdb }
warehouses:
  WH: ${warehouse}
duckdb: { memoryLimit: 512MB, threads: 1 }
`;

async function seedEvents(dir: string): Promise<void> {
  await duckExec(
    join(dir, 'source.duckdb'),
    'create schema if not exists crm',
    `create table crm.events as select i::BIGINT as id, 'n' || i as name, 'u' || i || '@x.com' as email,
       TIMESTAMPTZ '2025-12-01 00:00:00+00' + to_seconds(i) as modified_at from range(1, 3001) t(i)`,
  );
}

/** Day n: updates and inserts inside the next window (before the clock's boundary). */
async function changeEvents(dir: string, day: number): Promise<void> {
  const at = new Date(T0 + day * HOUR - 10 * 60_000).toISOString();
  await duckExec(
    join(dir, 'source.duckdb'),
    `update crm.events set email = 'moved${day}-' || id || '@x.com', modified_at = TIMESTAMPTZ '${at}' where id % ${7 + day} = 0`,
    `insert into crm.events select i, 'new' || i, 'n' || i || '@x.com', TIMESTAMPTZ '${at}' from range(${3001 + day * 100}, ${3051 + day * 100}) t(i)`,
  );
}

const TABLE: Record<string, string> = { accounts: 'dw.dim_account', events: 'dw.dim_event' };
const tableIn = (p: string, schema: string) => TABLE[p]!.replace(/^dw\./, `${schema}.`);

async function runAll(stack: LocalStack, pipelines: readonly string[]): Promise<void> {
  // Started together: the pipelines' stages interleave on the workers.
  const runs = await Promise.all(pipelines.map((pipeline) => startRun(stack.ctx, { pipeline, trigger: 'cli' })));
  await stack.host.runUntil(async () => {
    for (const r of runs) if (!isTerminalStatus((await getRun(stack.ctx.tables, r.pipeline, r.runId)).status)) return false;
    return true;
  }, 120_000);
  for (const r of runs) expect((await getRun(stack.ctx.tables, r.pipeline, r.runId)).status, `${r.pipeline} ${r.runId}`).toBe('succeeded');
}

/** Rows read from PostgreSQL, with the run ids replaced by their ordinal as pipelineState does. */
async function pgTables(stack: LocalStack, url: string, schema: string, pipeline: string): Promise<Pick<PipelineState, 'dimension' | 'ledger'>> {
  const ids = (await listRuns(stack.ctx.tables, pipeline, 1000)).reverse().map((r) => r.runId);
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const dimension = (await c.query(`select * from ${tableIn(pipeline, schema)} order by id, _tm_valid_from`)).rows;
    const ledger = (await c.query(`select * from ${schema}._tm_ledger where pipeline = $1 order by run_seq`, [pipeline])).rows.map(({ committed_at: _c, ...row }) => row);
    // The two hosts write to their own schema of one server; the ledger names the target table.
    let text = JSON.stringify({ dimension, ledger }).split(`"${schema}.`).join('"dw.');
    ids.forEach((id, i) => (text = text.split(id).join(`run#${i + 1}`)));
    return JSON.parse(text) as Pick<PipelineState, 'dimension' | 'ledger'>;
  } finally {
    await c.end();
  }
}

interface Outcome {
  state: Record<string, PipelineState>;
  stats: LocalStack['host']['stats'];
}

/** A first load and `days` incremental runs of the pipelines, side by side. */
async function scenario(o: {
  host: Omit<LocalHostOptions, 'queueService'>;
  pipelines: readonly string[];
  days: number;
  pg?: { url: string; schema: string };
}): Promise<Outcome> {
  const az = await startAzurite();
  const pipelines: Record<string, string> = { accounts: ACCOUNTS, events: events(o.pg?.schema) };
  const dir = makeProject({
    tidemark: tidemarkYaml(o.pg ? '{ kind: postgres, setting: TEST_WH_URL }' : '{ kind: duckdb, path: warehouse.duckdb }'),
    pipelines: Object.fromEntries(o.pipelines.map((p) => [p, pipelines[p]!])),
  });
  if (o.pipelines.includes('accounts')) await seedAccounts(dir);
  if (o.pipelines.includes('events')) await seedEvents(dir);
  const clock = { t: T0 };
  const stack = await openFaultyStack({ az, dir, clock, host: o.host, ...(o.pg ? { env: { TEST_WH_URL: o.pg.url } } : {}) });
  try {
    await runAll(stack, o.pipelines);
    for (let day = 1; day <= o.days; day++) {
      if (day === 1 && o.pipelines.includes('accounts')) await changeAccounts(dir);
      if (o.pipelines.includes('events')) await changeEvents(dir, day);
      clock.t = T0 + day * HOUR;
      await runAll(stack, o.pipelines);
    }
    await drain(stack);
    const state: Record<string, PipelineState> = {};
    for (const p of o.pipelines) {
      const s = await pipelineState(stack, dir, p, TABLE[p]);
      state[p] = o.pg ? { ...s, ...(await pgTables(stack, o.pg.url, o.pg.schema, p)) } : { ...s, ledger: s.ledger.filter((row) => row.pipeline === p) };
    }
    return { state, stats: { ...stack.host.stats } };
  } finally {
    await stack.close();
    await az.stop();
  }
}

const HARSH = { workers: 4, duplicateDeliveries: true, redeliverWhileRunning: true } as const;

function expectSame(four: Outcome, one: Outcome, pipelines: readonly string[]): void {
  // The harsh host really overlapped deliveries: copies were turned away by claims and settled by each other.
  expect(four.stats.maxInFlight).toBeGreaterThanOrEqual(4);
  expect(four.stats.deferredBusy).toBeGreaterThan(0);
  expect(four.stats.settledByOther).toBeGreaterThan(0);
  expect(one.stats.maxInFlight).toBe(1);
  for (const p of pipelines) {
    expect(four.state[p]!.dimension.length, `${p} has versions`).toBeGreaterThan(2500);
    expect(four.state[p]!.dimension, `${p} dimension`).toEqual(one.state[p]!.dimension);
    expect(four.state[p]!.ledger, `${p} ledger`).toEqual(one.state[p]!.ledger);
    expect(four.state[p]!.checkpoint, `${p} checkpoint`).toEqual(one.state[p]!.checkpoint);
    expect(four.state[p]!.runs, `${p} run records`).toEqual(one.state[p]!.runs);
  }
}

describe('the local host with N workers: 4 workers with duplicated deliveries = 1 worker', () => {
  it('DuckDB: a partitioned load and two incremental runs of two pipelines at once', async () => {
    const pipelines = ['accounts', 'events'] as const;
    // Both hosts at once, each on its own Azurite and project: the test's wall time is one scenario's.
    const [one, four] = await Promise.all([scenario({ host: { workers: 1 }, pipelines, days: 2 }), scenario({ host: HARSH, pipelines, days: 2 })]);
    expect(one.state.events!.runs.map((r) => r.status)).toEqual(['succeeded', 'succeeded', 'succeeded']);
    expectSame(four, one, pipelines);
  }, 180_000);

  it('PostgreSQL warehouse: a partitioned load and an incremental run', async () => {
    // A server per host: PGlite's socket server takes a bounded number of connections.
    const [a, b] = await Promise.all([startPostgres(), startPostgres()]);
    try {
      const pipelines = ['events'] as const;
      // A server from TIDEMARK_TEST_PG_URL is one server for both hosts (a schema each) and outlives test runs: start from no table.
      for (const schema of ['w1', 'w4']) await pgExec(a.url, `DROP TABLE IF EXISTS ${schema}.dim_event; DROP TABLE IF EXISTS ${schema}._tm_ledger`);
      const [one, four] = await Promise.all([
        scenario({ host: { workers: 1 }, pipelines, days: 1, pg: { url: a.url, schema: 'w1' } }),
        scenario({ host: HARSH, pipelines, days: 1, pg: { url: b.url, schema: 'w4' } }),
      ]);
      expectSame(four, one, pipelines);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  }, 180_000);
});
