import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureStorage } from '../../../shared/engine/context.js';
import { startRun } from '../../../shared/engine/start-run.js';
import { MAX_RESUMES } from '../../../shared/engine/resume.js';
import { startAzurite, type AzuriteHandle } from '../../../shared/local/azurite.js';
import { runOnce, type LocalStack, type RunSummary } from '../../../shared/local/stack.js';
import { thisProcessOwner } from '../../../shared/state/lease-owner.js';
import { readLease } from '../../../shared/state/leases.js';
import { findRun, listRuns, updateRun, type RunRecord } from '../../../shared/state/runs.js';
import { CONTAINERS, QUEUES, layout } from '../../../shared/storage/layout.js';
import { ProcessDeath, rawStorage, simProcess, type CallRecord, type Side, type SimProcess } from '../../support/crash-harness.js';
import { startPostgres, type PostgresHandle } from '../../support/postgres.js';
import { duckExec, duckQuery, makeProject } from '../../support/project.js';

/**
 * Issue #13 point 4: a run whose process died is resumed by the next start from its recorded
 * progress (raw / changes manifest, ledger), not failed and redone. Each case kills a process
 * (crash harness: every later call of it throws, nothing of it reaches storage) at one point of
 * a run, then a new process runs `runOnce` as `tidemark run` does: it must resume the dead run
 * to `succeeded`, then make its own run, and leave the dimension equal to a project that never
 * crashed. The real-process SIGKILL case is in test/integration/cli/run-signals.test.ts.
 */

const T0 = Date.parse('2026-01-01T00:00:00Z');
const HOUR = 3_600_000;
const PIPELINE = `name: accounts
source: { connection: SRC, table: crm.accounts, changeDetection: { mode: full } }
key: [id]
target: { warehouse: WH, table: dw.dim_account, deletes: retire }
validation: { rowCount: exact, checksumColumns: [id, city] }
retry: { attempts: 2, backoff: fixed, initialDelay: 1ms }
`;
const PG_PROJECT = `storage: AzureWebJobsStorage
connections:
  SRC: { kind: duckdb, path: source.duckdb }
warehouses:
  WH: { kind: postgres, setting: RESUME_PG_URL }
duckdb: { memoryLimit: 512MB, threads: 1 }
`;
const SEED = ['create schema crm', 'create table crm.accounts (id integer, city varchar)', `insert into crm.accounts select i, 'c' || (i % 3) from range(1, 41) t(i)`];
const CHANGES = [`update crm.accounts set city = 'moved' where id in (2, 5)`, 'delete from crm.accounts where id = 7', `insert into crm.accounts values (50, 'new')`];

type Wh = 'duckdb' | 'postgres';
interface Case {
  dir: string;
  wh: Wh;
  clock: { t: number };
  env: NodeJS.ProcessEnv;
}

let az: AzuriteHandle;
let pgh: PostgresHandle;
let template: string;

async function pgRows(sql: string): Promise<unknown[]> {
  const c = new pg.Client({ connectionString: pgh.url });
  await c.connect();
  try {
    await c.query(`SET TIME ZONE 'UTC'`);
    return (await c.query(sql)).rows;
  } finally {
    await c.end();
  }
}

async function freshCase(wh: Wh): Promise<Case> {
  const dir = makeProject({ pipelines: { accounts: PIPELINE }, ...(wh === 'postgres' ? { tidemark: PG_PROJECT } : {}) });
  copyFileSync(join(template, 'source.duckdb'), join(dir, 'source.duckdb'));
  await rawStorage(az.connectionString).reset();
  if (wh === 'postgres') await pgRows('DROP SCHEMA IF EXISTS dw CASCADE');
  const c: Case = { dir, wh, clock: { t: T0 }, env: { RESUME_PG_URL: pgh.url } };
  await ensureStorage(proc(c).ctx);
  return c;
}

function proc(c: Case, crash?: { match: (x: CallRecord) => boolean; side: Side }): SimProcess {
  return simProcess({ dir: c.dir, connectionString: az.connectionString, now: () => new Date(c.clock.t), env: c.env, ...(crash ? { crash } : {}) });
}

/** A simulated process as the stack `tidemark run` opens. */
const stackOf = (p: SimProcess) => ({ project: p.ctx.project, ctx: p.ctx, host: p.host, close: async () => p.host.stop() }) as LocalStack;

async function drive(p: SimProcess): Promise<void> {
  try {
    for (let pass = 0; pass < 40 && !p.crash.dead; pass++) if ((await p.host.pollOnce()) === 0) return;
  } catch (err) {
    if (!(err instanceof ProcessDeath)) throw err;
  }
}

/** The dimension with times as text (a version's interval is compared, not only its values). */
async function dimension(c: Case): Promise<unknown[]> {
  if (c.wh === 'postgres') return pgRows(`select id, city, _tm_is_current, _tm_valid_from::text vf, _tm_valid_to::text vt from dw.dim_account order by id, _tm_valid_from`);
  return duckQuery(
    join(c.dir, 'warehouse.duckdb'),
    `select id, city, _tm_is_current, strftime(_tm_valid_from, '%Y-%m-%dT%H:%M:%S') vf, strftime(_tm_valid_to, '%Y-%m-%dT%H:%M:%S') vt from dw.dim_account order by id, vf`,
  );
}

/** First load; with `incremental`, the source changes and an hour passes (the killed run is then the second). */
async function setup(c: Case, incremental: boolean): Promise<void> {
  if (!incremental) return;
  expect((await runOnce(stackOf(proc(c)), { pipeline: 'accounts' })).status).toBe('succeeded');
  await duckExec(join(c.dir, 'source.duckdb'), ...CHANGES);
  c.clock.t += HOUR;
}

/** The fault-free reference: the same runs (the killed one and the next), no crash. */
async function cleanDimension(wh: Wh, incremental: boolean): Promise<unknown[]> {
  const c = await freshCase(wh);
  await setup(c, incremental);
  expect((await runOnce(stackOf(proc(c)), { pipeline: 'accounts' })).status).toBe('succeeded');
  c.clock.t += 60_000;
  expect((await runOnce(stackOf(proc(c)), { pipeline: 'accounts' })).status).toBe('succeeded');
  return dimension(c);
}

const rawManifest = (x: CallRecord) => x.op === 'blob.putText' && /^raw\/accounts\/[^/]+\/_manifest\.json$/.test(x.target);
const changesManifest = (x: CallRecord) => x.op === 'blob.putText' && /^changes\/accounts\/[^/]+\/_manifest\.json$/.test(x.target);
const KILLS: Array<{ name: string; match: (x: CallRecord) => boolean; side: Side; resumedAt: string | 'completed' }> = [
  { name: 'after the extract (raw manifest written)', match: rawManifest, side: 'after', resumedAt: 'transform' },
  { name: 'after the transform (changes manifest written, merge not queued)', match: changesManifest, side: 'after', resumedAt: 'merge' },
  { name: 'mid-merge, inside the transaction before its commit', match: (x) => x.op === 'warehouse.statement' && /^INSERT INTO "dw"."dim_account"/.test(x.target), side: 'after', resumedAt: 'merge' },
  { name: 'after the merge commit, before the checkpoint', match: (x) => x.op === 'warehouse.merge', side: 'after', resumedAt: 'completed' },
  { name: 'mid-extract (a part uploaded, no manifest)', match: (x) => x.op === 'blob.uploadFile' && x.target.startsWith('raw/'), side: 'after', resumedAt: 'extract' },
];

/** A run started in a process that is killed at the first call `match`es; returns the run. */
async function killedRun(c: Case, match: (x: CallRecord) => boolean, side: Side = 'after'): Promise<RunRecord> {
  const dead = proc(c, { match, side });
  // Its claims last as long as a stage may (functionTimeout), as in production: the resume
  // must take over the one it died holding at once, because the claim names a dead owner.
  dead.ctx.stageClaimTtlMs = 30 * 60_000;
  const run = await startRun(dead.ctx, { pipeline: 'accounts', trigger: 'cli' });
  await drive(dead);
  expect(dead.crash.dead, 'the process did not reach its kill point').toBe(true);
  return run;
}

/** Kills a run at `kill`, then runs `tidemark run` in a new process; returns its summary and the dead run's id. */
async function killThenRun(c: Case, kill: (typeof KILLS)[number]): Promise<{ summary: RunSummary; deadRunId: string; next: SimProcess }> {
  const run = await killedRun(c, kill.match, kill.side);
  c.clock.t += 60_000;
  const next = proc(c);
  // A real process, alive: the claims and lease it takes are not judged gone by anybody.
  next.ctx.owner = thisProcessOwner();
  const lines: string[] = [];
  const summary = await runOnce(stackOf(next), { pipeline: 'accounts' }, 120_000, (t) => lines.push(t));
  if (kill.resumedAt !== 'completed') expect(lines).toEqual([expect.stringMatching(new RegExp(`^resumed run ${run.runId} of accounts at its ${kill.resumedAt} stage \\(its process, pid \\d+ on .+, is gone\\)$`))]);
  return { summary, deadRunId: run.runId, next };
}

beforeAll(async () => {
  az = await startAzurite();
  pgh = await startPostgres();
  template = makeProject({ pipelines: { accounts: PIPELINE } });
  await duckExec(join(template, 'source.duckdb'), ...SEED);
}, 120_000);
afterAll(async () => {
  await pgh?.stop();
  await az?.stop();
});

describe('a run whose process was killed is resumed by the next tidemark run (crash harness, Azurite + DuckDB)', () => {
  let clean: unknown[];
  beforeAll(async () => {
    clean = await cleanDimension('duckdb', false);
  }, 120_000);

  it.each(KILLS)('killed $name: resumed to succeeded, then the asked run; dimension equal to a clean project', async (kill) => {
    const c = await freshCase('duckdb');
    const { summary, deadRunId } = await killThenRun(c, kill);
    const deadRun = await findRun(rawStorage(az.connectionString).tables, 'accounts', deadRunId);
    expect(deadRun?.status).toBe('succeeded');
    expect(deadRun?.counts).toMatchObject({ inserted: 40 });
    if (kill.resumedAt === 'completed') {
      // The merge had committed: completed at the start (no resume note), never re-applied.
      expect(deadRun?.resumes).toBeUndefined();
    } else {
      expect(deadRun?.resumes).toEqual([{ at: expect.any(String), stage: kill.resumedAt, from: expect.stringMatching(/^pid \d+ on /), by: expect.stringMatching(/^pid \d+ on /) }]);
      expect(summary.resumed).toMatchObject({ runId: deadRunId, status: 'succeeded', stage: kill.resumedAt, counts: { inserted: 40 } });
    }
    const runs = await listRuns(rawStorage(az.connectionString).tables, 'accounts');
    if (kill.resumedAt === 'extract') {
      // Resumed at its extract, it read the source after the command began: it is the run asked for.
      expect(summary).toMatchObject({ runId: deadRunId, status: 'succeeded', resumed: { covers: true } });
      expect(runs.map((r) => r.status)).toEqual(['succeeded']);
    } else {
      // Then the run asked for: it found nothing new.
      expect(summary).toMatchObject({ status: 'succeeded', counts: { inserted: 0, updated: 0, deleted: 0, unchanged: 40 } });
      expect(summary.runId).not.toBe(deadRunId);
      expect(summary.resumed?.covers ?? false).toBe(false);
      expect(runs.map((r) => r.status)).toEqual(['succeeded', 'succeeded']);
    }
    expect(await dimension(c)).toEqual(clean);
    expect(await readLease(rawStorage(az.connectionString).tables, 'accounts')).toBeUndefined();
    // What the dead process had received comes back after its visibility timeout, and its
    // manifest may fire again: every stage of the ended run is a duplicate and changes nothing.
    const late = proc(c);
    for (const q of [QUEUES.extract, QUEUES.merge, QUEUES.validate]) await late.ctx.queues.send(q, { pipeline: 'accounts', runId: deadRunId });
    const rawName = layout.rawManifest('accounts', deadRunId);
    const text = await late.ctx.blobs.getText(CONTAINERS.raw, rawName);
    if (text !== undefined) await late.ctx.blobs.putText(CONTAINERS.raw, rawName, text);
    await drive(late);
    expect(await dimension(c)).toEqual(clean);
    expect((await listRuns(late.ctx.tables, 'accounts')).map((r) => [r.runId, r.status])).toEqual(runs.map((r) => [r.runId, r.status]));
  }, 180_000);

  it('two processes starting at once after the kill: exactly one resumes, the other is told who did', async () => {
    const c = await freshCase('duckdb');
    const run = await killedRun(c, changesManifest);
    const a = proc(c);
    const b = proc(c);
    a.ctx.owner = thisProcessOwner();
    b.ctx.owner = thisProcessOwner();
    const said: string[] = [];
    const results = await Promise.allSettled([a, b].map((p) => runOnce(stackOf(p), { pipeline: 'accounts' }, 120_000, (t) => said.push(t))));
    const won = results.filter((r): r is PromiseFulfilledResult<RunSummary> => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(said).toHaveLength(1);
    expect(won).toHaveLength(1);
    expect(won[0]!.value.resumed).toMatchObject({ runId: run.runId, status: 'succeeded', stage: 'merge' });
    expect(lost).toHaveLength(1);
    expect(String(lost[0]!.reason)).toMatch(new RegExp(`run ${run.runId} of accounts (is in flight|was resumed)|another process took over run ${run.runId}`));
    const r = await findRun(a.ctx.tables, 'accounts', run.runId);
    expect(r?.resumes).toHaveLength(1);
    expect(await dimension(c)).toEqual(clean);
  }, 180_000);

  it('a run that cannot be resumed is failed cleanly as interrupted, and the new run redoes it', async () => {
    const c = await freshCase('duckdb');
    const run = await killedRun(c, rawManifest);
    // Its raw manifest names a base that is not the committed state (as after a rollback underneath it).
    const raw = rawStorage(az.connectionString);
    const name = layout.rawManifest('accounts', run.runId);
    const m = JSON.parse((await raw.blobs.getText(CONTAINERS.raw, name))!) as { baseRunId: string | null };
    await raw.blobs.putText(CONTAINERS.raw, name, JSON.stringify({ ...m, baseRunId: '20250101T000000Z-abcd' }));
    const next = proc(c);
    next.ctx.owner = thisProcessOwner();
    const summary = await runOnce(stackOf(next), { pipeline: 'accounts' }, 120_000);
    expect(summary.resumed).toBeUndefined();
    expect(summary).toMatchObject({ status: 'succeeded', counts: { inserted: 40 } });
    const r = await findRun(raw.tables, 'accounts', run.runId);
    expect(r).toMatchObject({ status: 'failed' });
    expect(r?.error).toMatch(
      /^interrupted: the process holding the run lease \(pid \d+ on .+\) is gone before its merge committed and the run cannot be resumed \(it was computed against 20250101T000000Z-abcd, and the pipeline's latest committed run is now none\); nothing was applied, run \S+ took over$/,
    );
    expect(await dimension(c)).toEqual(clean);
  }, 180_000);

  it(`a run killed ${MAX_RESUMES + 1} times is not resumed again: failed, and the new run redoes it`, async () => {
    const c = await freshCase('duckdb');
    const run = await killedRun(c, rawManifest);
    const raw = rawStorage(az.connectionString);
    const note = { at: new Date(T0).toISOString(), stage: 'transform' as const, from: 'pid 1 on h', by: 'pid 2 on h' };
    await updateRun(raw.tables, 'accounts', run.runId, (r) => ({ ...r, resumes: Array.from({ length: MAX_RESUMES }, () => note) }));
    const next = proc(c);
    next.ctx.owner = thisProcessOwner();
    const summary = await runOnce(stackOf(next), { pipeline: 'accounts' }, 120_000);
    expect(summary.resumed).toBeUndefined();
    expect(summary.status).toBe('succeeded');
    expect((await findRun(raw.tables, 'accounts', run.runId))?.error).toMatch(/cannot be resumed \(its process died 4 times, at its transform, transform, transform and transform stages; it is not resumed again\)/);
  }, 180_000);
});

describe('resume on a PostgreSQL warehouse (crash harness, Azurite + PGlite)', () => {
  it('an incremental run killed after its transform is resumed at its merge; dimension equal to a clean project', async () => {
    const clean = await cleanDimension('postgres', true);
    const c = await freshCase('postgres');
    await setup(c, true);
    const kill = KILLS[1]!;
    const { summary, deadRunId } = await killThenRun(c, kill);
    expect(summary.resumed).toMatchObject({ runId: deadRunId, status: 'succeeded', stage: 'merge', counts: { inserted: 1, updated: 2, deleted: 1 } });
    expect(summary).toMatchObject({ status: 'succeeded', counts: { inserted: 0, updated: 0, deleted: 0 } });
    expect(await dimension(c)).toEqual(clean);
    // Every version once: 40 first-load rows, 2 updates and 1 delete closing a version each, 1 insert.
    expect(clean).toHaveLength(43);
  }, 240_000);
});
