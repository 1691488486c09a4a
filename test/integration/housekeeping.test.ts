import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dailyHousekeeping, runFilesKeepMs } from '../../shared/engine/housekeeping.js';
import type { AzuriteHandle } from '../../shared/local/azurite.js';
import { openLocalStack, runOnce, type LocalStack } from '../../shared/local/stack.js';
import type { RunRecord } from '../../shared/state/runs.js';
import { CONTAINERS, TABLES } from '../../shared/storage/layout.js';
import { withAzurite } from '../support/azurite.js';
import { duckExec, makeProject } from '../support/project.js';

// Retention of a run's data files: the raw parts and the changes and sample files of finished
// runs go after TIDEMARK_RUN_FILES_KEEP_DAYS; manifests stay; a run in flight, or a failed
// validation nobody has acknowledged, keeps everything.
const PIPELINE = `name: accounts
source:
  connection: SRC
  table: crm.accounts
  changeDetection: { mode: full }
key: [id]
target:
  warehouse: WH
  table: dw.dim_account
validation:
  rowCount: exact
  sample: 5
`;

const DAY = 24 * 3600_000;

describe('housekeeping of run data files', () => {
  let az: AzuriteHandle;
  let stack: LocalStack;
  let dir: string;
  const clock = { t: Date.parse('2026-03-01T00:00:00Z') };
  const source = (...sql: string[]) => duckExec(join(dir, 'source.duckdb'), ...sql);
  const blobs = async (container: string) => {
    const names: string[] = [];
    for await (const b of stack.ctx.blobs.list(container, 'accounts/')) names.push(b.name);
    return names.sort();
  };

  beforeAll(async () => {
    az = await withAzurite();
    dir = makeProject({ pipelines: { accounts: PIPELINE } });
    await source('create schema crm', 'create table crm.accounts (id integer, city varchar)', `insert into crm.accounts select i, 'c' || i from range(1, 51) t(i)`);
    stack = await openLocalStack({
      projectDir: dir,
      connectionString: az.connectionString,
      env: { ...process.env, TIDEMARK_RUN_FILES_KEEP_DAYS: '7' },
      now: () => new Date(clock.t),
    });
  });
  afterAll(async () => {
    await stack?.close();
    await az?.stop();
  });

  it('deletes the Parquet of finished runs past the keep period, keeps manifests, recent runs and runs in flight', async () => {
    const r1 = await runOnce(stack, { pipeline: 'accounts' });
    clock.t += DAY;
    await source(`update crm.accounts set city = 'x' where id = 1`);
    const r2 = await runOnce(stack, { pipeline: 'accounts' });
    clock.t += 8 * DAY;
    await source(`update crm.accounts set city = 'y' where id = 2`);
    const r3 = await runOnce(stack, { pipeline: 'accounts' });
    expect([r1.status, r2.status, r3.status]).toEqual(['succeeded', 'succeeded', 'succeeded']);
    clock.t += DAY;

    // Run 2 looks in flight (say, stuck before its lease expired): nothing of it may go.
    const stored = await stack.ctx.tables.get<RunRecord>(TABLES.runs, 'accounts', r2.runId);
    await stack.ctx.tables.replace(TABLES.runs, { ...stored!.entity, status: 'running' }, stored!.etag);

    // Run 1 failed validation and nobody has acknowledged it: its files stay while it is looked into.
    const failed = await stack.ctx.tables.get<RunRecord>(TABLES.runs, 'accounts', r1.runId);
    await stack.ctx.tables.replace(TABLES.runs, { ...failed!.entity, status: 'validation_failed' }, failed!.etag);
    const untouched = await blobs(CONTAINERS.raw);
    expect((await dailyHousekeeping(stack.ctx)).some((r) => r.includes('run data file'))).toBe(false);
    expect(await blobs(CONTAINERS.raw)).toEqual(untouched);
    const held = await stack.ctx.tables.get<RunRecord>(TABLES.runs, 'accounts', r1.runId);
    await stack.ctx.tables.replace(TABLES.runs, { ...held!.entity, acknowledgedAt: new Date(clock.t).toISOString(), acknowledgedBy: 'test' }, held!.etag);

    const rawBefore = await blobs(CONTAINERS.raw);
    const changesBefore = await blobs(CONTAINERS.changes);
    expect(rawBefore.filter((n) => n.startsWith(`accounts/${r1.runId}/`) && n.endsWith('.parquet')).length).toBeGreaterThan(0);
    expect(changesBefore).toContain(`accounts/${r1.runId}/sample.parquet`);

    const removed = await dailyHousekeeping(stack.ctx);
    expect(removed).toContain('3 run data file(s) of accounts');
    const rawAfter = await blobs(CONTAINERS.raw);
    const changesAfter = await blobs(CONTAINERS.changes);
    const gone = [...rawBefore.filter((n) => !rawAfter.includes(n)), ...changesBefore.filter((n) => !changesAfter.includes(n))];
    expect(gone.every((n) => n.startsWith(`accounts/${r1.runId}/`) && n.endsWith('.parquet'))).toBe(true);
    expect(rawAfter).toContain(`accounts/${r1.runId}/_manifest.json`);
    expect(changesAfter).toContain(`accounts/${r1.runId}/_manifest.json`);
    for (const r of [r2, r3]) {
      expect(rawAfter.filter((n) => n.startsWith(`accounts/${r.runId}/`))).toEqual(rawBefore.filter((n) => n.startsWith(`accounts/${r.runId}/`)));
      expect(changesAfter.filter((n) => n.startsWith(`accounts/${r.runId}/`))).toEqual(changesBefore.filter((n) => n.startsWith(`accounts/${r.runId}/`)));
    }

    // The next run works on what is left (its schema-drift check reads the base run's raw manifest).
    const again = await stack.ctx.tables.get<RunRecord>(TABLES.runs, 'accounts', r2.runId);
    await stack.ctx.tables.replace(TABLES.runs, { ...again!.entity, status: 'succeeded' }, again!.etag);
    await source(`update crm.accounts set city = 'z' where id = 3`);
    expect((await runOnce(stack, { pipeline: 'accounts' })).counts).toMatchObject({ updated: 1, unchanged: 49 });
  });

  it('a bad keep period names the setting', () => {
    expect(runFilesKeepMs({})).toBe(7 * DAY);
    expect(runFilesKeepMs({ TIDEMARK_RUN_FILES_KEEP_DAYS: '0.5' })).toBe(DAY / 2);
    expect(() => runFilesKeepMs({ TIDEMARK_RUN_FILES_KEEP_DAYS: 'soon' })).toThrow(/TIDEMARK_RUN_FILES_KEEP_DAYS must be a number of days/);
  });
});
