import { spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startScheduledRun } from '../../../shared/engine/schedule.js';
import { startRun } from '../../../shared/engine/start-run.js';
import { RunResumedError } from '../../../shared/engine/resume.js';
import { ConflictError } from '../../../shared/errors.js';
import type { AzuriteHandle } from '../../../shared/local/azurite.js';
import { openLocalStack, resumeOrphans, type LocalStack } from '../../../shared/local/stack.js';
import { processStartTime, thisProcessOwner } from '../../../shared/state/lease-owner.js';
import { readLease } from '../../../shared/state/leases.js';
import { getRun, isTerminalStatus } from '../../../shared/state/runs.js';
import { createLogger } from '../../../shared/telemetry/logger.js';
import { withAzurite } from '../../support/azurite.js';
import { duckExec, duckQuery, makeProject } from '../../support/project.js';

/** Orphaned runs (issue point "taken over at once"): the lease names its owner, and a dead local owner is taken over without waiting for expiry. */
describe('run lease owner and takeover (Azurite + DuckDB)', () => {
  let az: AzuriteHandle;
  let stack: LocalStack;
  let dir: string;
  const lines: Array<{ level: string; message: string; props: Record<string, unknown> }> = [];
  beforeAll(async () => {
    az = await withAzurite();
    dir = makeProject({ pipelines: { acc: 'name: acc\nsource: { connection: SRC, table: accounts }\nkey: [id]\ntarget: { warehouse: WH, table: dim_acc }\n' } });
    await duckExec(join(dir, 'source.duckdb'), `create table accounts as select range::int as id, 'n' || range as name from range(3)`);
    stack = await openLocalStack({ projectDir: dir, connectionString: az.connectionString, log: createLogger((level, message, props) => void lines.push({ level, message, props })) });
  });
  afterAll(async () => {
    await stack?.close();
    await az?.stop();
  });
  const drive = (runId: string) => stack.host.runUntil(async () => isTerminalStatus((await getRun(stack.ctx.tables, 'acc', runId)).status), 60_000);

  it('records host, pid and process start time in the lease', async () => {
    const run = await startRun(stack.ctx, { pipeline: 'acc', trigger: 'cli', owner: { ownerInvocationId: 'inv-1' } });
    const lease = await readLease(stack.ctx.tables, 'acc');
    expect(lease).toMatchObject({ runId: run.runId, ownerHost: hostname(), ownerPid: process.pid, ownerInvocationId: 'inv-1' });
    if (process.platform === 'linux') expect(lease!.ownerStartTime).toBe(processStartTime(process.pid));
    // A live owner keeps its run: the next start is refused although the lease is far from expiry.
    await expect(startRun(stack.ctx, { pipeline: 'acc', trigger: 'cli' })).rejects.toThrow(`run ${run.runId} of acc is in flight`);
    await drive(run.runId);
    expect((await getRun(stack.ctx.tables, 'acc', run.runId)).status).toBe('succeeded');
  });

  it('a lease held by a dead pid of this host is taken over at once: the orphan is resumed (its extract re-sent), then the next start runs', async () => {
    const dead = spawnSync(process.execPath, ['-e', '']).pid!;
    await duckExec(join(dir, 'source.duckdb'), `insert into accounts values (7, 'seven')`);
    const orphan = await startRun(stack.ctx, { pipeline: 'acc', trigger: 'cli', owner: { ownerPid: dead } });
    const err = await startRun(stack.ctx, { pipeline: 'acc', trigger: 'cli' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RunResumedError);
    expect(err).toBeInstanceOf(ConflictError);
    expect((err as Error).message).toBe(
      `run ${orphan.runId} of acc was resumed at its extract stage (the process that ran it, pid ${dead} on ${hostname()}, is gone); it is in flight now: start again when it has ended`,
    );
    expect(lines.some((l) => l.level === 'warn' && l.props.runId === orphan.runId && l.message === `resumed run ${orphan.runId} of acc at its extract stage (its process, pid ${dead} on ${hostname()}, is gone)`)).toBe(true);
    // The orphan's lease is this process's now: a third start is refused as in flight, not resumed again.
    expect(await readLease(stack.ctx.tables, 'acc')).toMatchObject({ runId: orphan.runId, ownerPid: process.pid, ownerHost: hostname() });
    await expect(startRun(stack.ctx, { pipeline: 'acc', trigger: 'cli' })).rejects.toThrow(`run ${orphan.runId} of acc is in flight`);
    await drive(orphan.runId);
    const o = await getRun(stack.ctx.tables, 'acc', orphan.runId);
    expect(o).toMatchObject({ status: 'succeeded', counts: { inserted: 1 }, resumes: [{ stage: 'extract', from: `pid ${dead} on ${hostname()}`, by: `pid ${process.pid} on ${hostname()}` }] });
    const next = await startRun(stack.ctx, { pipeline: 'acc', trigger: 'cli' });
    await drive(next.runId);
    expect(await getRun(stack.ctx.tables, 'acc', next.runId)).toMatchObject({ status: 'succeeded', counts: { inserted: 0 } });
    expect(await duckQuery(join(dir, 'warehouse.duckdb'), 'select count(*)::int as n from dim_acc')).toEqual([{ n: 4 }]);
  });

  it.runIf(process.platform === 'linux')('a reused pid (alive, other start time) counts as gone; an owner on another host does not', async () => {
    const reused = await startRun(stack.ctx, { pipeline: 'acc', trigger: 'cli', owner: { ownerStartTime: '1' } });
    await expect(startRun(stack.ctx, { pipeline: 'acc', trigger: 'cli' })).rejects.toBeInstanceOf(RunResumedError);
    await drive(reused.runId);
    expect((await getRun(stack.ctx.tables, 'acc', reused.runId)).resumes).toHaveLength(1);
    const remote = await startRun(stack.ctx, { pipeline: 'acc', trigger: 'cli', owner: { ownerHost: `${hostname()}-elsewhere`, ownerPid: spawnSync(process.execPath, ['-e', '']).pid! } });
    await expect(startRun(stack.ctx, { pipeline: 'acc', trigger: 'cli' })).rejects.toThrow(`run ${remote.runId} of acc is in flight`);
    expect(thisProcessOwner().ownerPid).toBe(process.pid);
    await drive(remote.runId);
  });

  it('the local host at its start (tidemark dev) resumes an orphaned run without waiting for a start; a live holder is left alone', async () => {
    const dead = spawnSync(process.execPath, ['-e', '']).pid!;
    const orphan = await startRun(stack.ctx, { pipeline: 'acc', trigger: 'cli', owner: { ownerPid: dead } });
    expect(await resumeOrphans(stack.ctx)).toEqual([`resumed run ${orphan.runId} of acc at its extract stage (its process, pid ${dead} on ${hostname()}, is gone)`]);
    expect(await resumeOrphans(stack.ctx)).toEqual([]);
    await drive(orphan.runId);
    expect(await getRun(stack.ctx.tables, 'acc', orphan.runId)).toMatchObject({ status: 'succeeded', resumes: [{ stage: 'extract' }] });
    expect(await readLease(stack.ctx.tables, 'acc')).toBeUndefined();
  });

  it('a timer start names its Functions invocation in the lease', async () => {
    expect(await startScheduledRun(stack.ctx, 'acc', { isPastDue: false, invocationId: 'inv-timer-7' })).toBe('started');
    const lease = await readLease(stack.ctx.tables, 'acc');
    expect(lease).toMatchObject({ ownerInvocationId: 'inv-timer-7', ownerPid: process.pid });
    await drive(lease!.runId);
  });
});
