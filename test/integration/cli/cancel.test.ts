import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { hostname } from 'node:os';
import { cancelCommand } from '../../../cli/commands/cancel.js';
import { runsCommand } from '../../../cli/commands/runs.js';
import { commands } from '../../../cli/commands/index.js';
import { getPipeline } from '../../../shared/config/load.js';
import { isCommitted } from '../../../shared/engine/commit-protocol.js';
import { startRun } from '../../../shared/engine/start-run.js';
import type { AzuriteHandle } from '../../../shared/local/azurite.js';
import { openLocalStack, type LocalStack } from '../../../shared/local/stack.js';
import { readCheckpoint } from '../../../shared/state/checkpoints.js';
import { acquireLease, readLease } from '../../../shared/state/leases.js';
import { getRun, isTerminalStatus, updateRun, type RunRecord } from '../../../shared/state/runs.js';
import { withAzurite } from '../../support/azurite.js';
import { duckExec, duckQuery, makeProject } from '../../support/project.js';

describe('tidemark cancel (Azurite + DuckDB)', () => {
  let az: AzuriteHandle;
  let stack: LocalStack;
  let dir: string;
  let out: string[];
  const saved = { ...process.env };
  beforeAll(async () => {
    az = await withAzurite();
    dir = makeProject({ pipelines: { acc: 'name: acc\nsource: { connection: SRC, table: accounts }\nkey: [id]\ntarget: { warehouse: WH, table: dim_acc }\n' } });
    await duckExec(join(dir, 'source.duckdb'), `create table accounts as select range::int as id, 'n' || range as name from range(3)`);
    stack = await openLocalStack({ projectDir: dir, connectionString: az.connectionString });
  });
  afterAll(async () => {
    await stack?.close();
    await az?.stop();
  });
  beforeEach(() => {
    out = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => (out.push(String(chunk)), true));
    process.env.AzureWebJobsStorage = az.connectionString;
  });
  afterEach(() => {
    vi.restoreAllMocks();
    process.env = { ...saved };
  });
  const cancel = async () => {
    out.length = 0;
    const code = await cancelCommand.run(['acc', '--project', dir, '--json']);
    return { code, body: JSON.parse(out.join('')) as Record<string, unknown> };
  };
  const drive = (runId: string) => stack.host.runUntil(async () => isTerminalStatus((await getRun(stack.ctx.tables, 'acc', runId)).status), 60_000);
  const p = () => getPipeline(stack.project, 'acc');

  it('is registered and says so when nothing is in flight', async () => {
    expect(commands.cancel).toBe(cancelCommand);
    expect(await cancel()).toEqual({ code: 0, body: { pipeline: 'acc', kind: 'none' } });
  });

  it('runs names the in-flight run with its lease owner and age, and says how to end it', async () => {
    const run = await startRun(stack.ctx, { pipeline: 'acc', trigger: 'cli' });
    out.length = 0;
    expect(await runsCommand.run(['acc', '--project', dir])).toBe(0);
    expect(out.join('')).toContain(`in flight: ${run.runId} · owner ${hostname()} pid ${process.pid} · for 0 min · lease until `);
    expect(out.join('')).toContain('(tidemark cancel acc ends it)');
    expect((await cancel()).body).toMatchObject({ kind: 'cancelled', runId: run.runId });
    out.length = 0;
    expect(await runsCommand.run(['acc', '--project', dir, '--status', 'cancelled'])).toBe(0);
    expect(out.join('')).toContain(run.runId);
    expect(out.join('')).not.toContain('in flight');
  });

  it('an uncommitted run is marked cancelled, applies nothing, releases the lease; its queued messages are drained harmlessly', async () => {
    const run = await startRun(stack.ctx, { pipeline: 'acc', trigger: 'cli' });
    expect(await cancel()).toEqual({ code: 0, body: { pipeline: 'acc', kind: 'cancelled', runId: run.runId } });
    const r = await getRun(stack.ctx.tables, 'acc', run.runId);
    expect(r.status).toBe('cancelled');
    expect(r.error).toMatch(/^cancelled: cancelled by .+ before its merge committed; nothing was applied$/);
    expect(await readLease(stack.ctx.tables, 'acc')).toBeUndefined();
    await stack.host.runUntil(async () => false, 1500).catch(() => undefined); // the extract message: skipped
    expect(await isCommitted(stack.ctx, p(), run.runId)).toBe(false);
    expect((await readCheckpoint(stack.ctx.tables, 'acc')).checkpoint.lastRunId ?? null).toBeNull();
    const next = await startRun(stack.ctx, { pipeline: 'acc', trigger: 'cli' });
    await drive(next.runId);
    expect((await getRun(stack.ctx.tables, 'acc', next.runId)).status).toBe('succeeded');
  });

  it('a run whose merge committed is completed, not cancelled', async () => {
    await duckExec(join(dir, 'source.duckdb'), `insert into accounts values (9, 'nine')`);
    const run = await startRun(stack.ctx, { pipeline: 'acc', trigger: 'cli', mode: 'full' });
    await drive(run.runId);
    // The state a crash right after the merge transaction leaves: ledger row in the warehouse,
    // the run record still running and its lease held (the local host validates in the merge's
    // message, so the crash is staged on the records).
    expect(await isCommitted(stack.ctx, p(), run.runId)).toBe(true);
    // Staged past the lifecycle's check, which refuses succeeded → running.
    await updateRun(stack.ctx.tables, 'acc', run.runId, (r) => ({ ...r, status: 'running', finishedAt: undefined } as RunRecord), undefined, { statusChange: true });
    await acquireLease(stack.ctx.tables, { pipeline: 'acc', runId: run.runId, now: new Date(), ttlMs: 3_600_000, isActive: async () => true, onStale: async () => undefined });
    expect(await cancel()).toEqual({ code: 0, body: { pipeline: 'acc', kind: 'completed', runId: run.runId } });
    expect((await getRun(stack.ctx.tables, 'acc', run.runId)).status).toBe('succeeded');
    expect((await readCheckpoint(stack.ctx.tables, 'acc')).checkpoint.lastRunId).toBe(run.runId);
    expect(await readLease(stack.ctx.tables, 'acc')).toBeUndefined();
    expect(await duckQuery(join(dir, 'warehouse.duckdb'), 'select count(*)::int as n from dim_acc where _tm_is_current')).toEqual([{ n: 4 }]);
  });
});
