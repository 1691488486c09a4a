import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { handleStartRun } from '../../../shared/engine/http-api.js';
import { startRun } from '../../../shared/engine/start-run.js';
import { extractStage, transformStage } from '../../../shared/engine/stages.js';
import { ConflictError } from '../../../shared/errors.js';
import { startAzurite, type AzuriteHandle } from '../../../shared/local/azurite.js';
import { readCheckpoint } from '../../../shared/state/checkpoints.js';
import { readLease } from '../../../shared/state/leases.js';
import { getRun } from '../../../shared/state/runs.js';
import { CONTAINERS, layout } from '../../../shared/storage/layout.js';
import {
  HOUR,
  T0,
  accountsProject,
  changeAccounts,
  drain,
  driveUntilEnded,
  openFaultyStack,
  pipelineState,
} from '../../support/reliability.js';
import type { LocalStack } from '../../../shared/local/stack.js';

describe('ordering and concurrency of runs (docs/design.md §5.1)', () => {
  let az: AzuriteHandle;
  let stack: LocalStack;
  let dir: string;
  const clock = { t: T0 };

  beforeAll(async () => {
    az = await startAzurite();
    dir = await accountsProject();
    // A one-minute lease, as TIDEMARK_LEASE_MINUTES sets it in an app.
    stack = await openFaultyStack({ az, dir, clock, env: { TIDEMARK_LEASE_MINUTES: '1' } });
  });
  afterAll(async () => {
    await stack?.close();
    await az?.stop();
  });

  it('a second run is refused while one is in flight (engine and HTTP), never interleaved', async () => {
    const a = await startRun(stack.ctx, { pipeline: 'accounts', trigger: 'cli' });
    clock.t += 1000;
    await expect(startRun(stack.ctx, { pipeline: 'accounts', trigger: 'schedule' })).rejects.toThrow(ConflictError);
    await expect(startRun(stack.ctx, { pipeline: 'accounts', trigger: 'schedule' })).rejects.toThrow(`run ${a.runId} of accounts is in flight`);
    const http = await handleStartRun(stack.ctx, { pipeline: 'accounts', bodyText: '', baseUrl: 'http://localhost' });
    expect(http.status).toBe(409);
    expect(http.jsonBody).toEqual({ error: expect.stringContaining(`run ${a.runId} of accounts is in flight`) });
    expect((await readLease(stack.ctx.tables, 'accounts'))?.runId).toBe(a.runId);
    await driveUntilEnded(stack, 'accounts', a.runId);
    expect((await getRun(stack.ctx.tables, 'accounts', a.runId)).status).toBe('succeeded');
    expect(await readLease(stack.ctx.tables, 'accounts')).toBeUndefined();
    const state = await pipelineState(stack, dir, 'accounts');
    expect(state.runs.map((r) => r.runId)).toEqual(['run#1']);
  });

  it('a run stuck past its lease is marked failed and its lease released; its late work is ignored; the next run applies in order', async () => {
    await changeAccounts(dir);
    clock.t += HOUR;
    // The stuck run: its extract ran (called directly, no host), then its instance went silent;
    // its extract message is still on the queue and its manifest still un-transformed.
    const stuck = await startRun(stack.ctx, { pipeline: 'accounts', trigger: 'schedule' });
    const manifest = layout.rawManifest('accounts', stuck.runId);
    expect(await extractStage(stack.ctx, { pipeline: 'accounts', runId: stuck.runId })).toBe('done');
    expect(await stack.ctx.blobs.exists(CONTAINERS.raw, manifest)).toBe(true);
    const before = await pipelineState(stack, dir, 'accounts');

    // Within the lease: still refused.
    clock.t += 30_000;
    await expect(startRun(stack.ctx, { pipeline: 'accounts', trigger: 'schedule' })).rejects.toThrow(ConflictError);
    // Past the lease (1 min): the stuck run is detected, failed, and the lease passes on.
    clock.t += 60_000;
    const next = await startRun(stack.ctx, { pipeline: 'accounts', trigger: 'schedule' });
    const failed = await getRun(stack.ctx.tables, 'accounts', stuck.runId);
    expect(failed.status).toBe('failed');
    expect(failed.error).toBe('lease expired after 1 min: the run was stuck and is abandoned');
    expect((await readLease(stack.ctx.tables, 'accounts'))?.runId).toBe(next.runId);

    // The stuck run's manifest fires late: ignored, nothing of it is merged.
    expect(await transformStage(stack.ctx, manifest)).toBe('skipped');
    await driveUntilEnded(stack, 'accounts', next.runId);
    await drain(stack);
    expect((await getRun(stack.ctx.tables, 'accounts', next.runId)).status).toBe('succeeded');
    const after = await pipelineState(stack, dir, 'accounts');
    expect(after.ledger.map((l) => l.run_id)).toEqual(['run#1', 'run#3']);
    expect(after.checkpoint.history).toEqual([...(before.checkpoint.history as unknown[]), { runId: 'run#3', watermark: null, snapshot: 'accounts/snapshots/run#3.json' }]);
    expect(after.dimension.filter((r) => r._tm_run_id === 'run#2')).toEqual([]);
    const { checkpoint } = await readCheckpoint(stack.ctx.tables, 'accounts');
    expect(checkpoint.lastRunId).toBe(next.runId);
    expect(await readLease(stack.ctx.tables, 'accounts')).toBeUndefined();
  });
});
