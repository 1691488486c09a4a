import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureStorage } from '../../../shared/engine/context.js';
import { newRunId } from '../../../shared/engine/run-id.js';
import { startRun } from '../../../shared/engine/start-run.js';
import { startAzurite, type AzuriteHandle } from '../../../shared/local/azurite.js';
import { rollbackPipeline } from '../../../shared/rollback/undo-runs.js';
import { readCheckpoint } from '../../../shared/state/checkpoints.js';
import { thisProcessOwner } from '../../../shared/state/lease-owner.js';
import { acquireLease, readLease, releaseLease } from '../../../shared/state/leases.js';
import { getRun, listRuns } from '../../../shared/state/runs.js';
import { ProcessDeath, rawStorage, simProcess, tinyAccountsProject, type SimProcess } from '../../support/crash-harness.js';
import { duckExec, duckQuery } from '../../support/project.js';

/**
 * Rollback and restore hold the pipeline's lease with an owner, like runs (state/lease-owner.ts):
 * a rollback whose process died is taken over at once by the next start or operation, instead
 * of blocking the pipeline for the lease's hour; one whose process still runs keeps it. Each
 * process here is simulated by the crash harness (its own context and lease owner; a death
 * abandons all it held in memory).
 */
let az: AzuriteHandle;
beforeAll(async () => {
  az = await startAzurite();
}, 60_000);
afterAll(async () => az?.stop());

async function project(): Promise<{ dir: string; clock: { t: number }; proc: (crash?: Parameters<typeof simProcess>[0]['crash']) => SimProcess }> {
  await rawStorage(az.connectionString).reset();
  const dir = await tinyAccountsProject([[1, 'a'], [2, 'b'], [3, 'c']]);
  const clock = { t: Date.parse('2026-03-01T00:00:00Z') };
  const proc = (crash?: Parameters<typeof simProcess>[0]['crash']) =>
    simProcess({ dir, connectionString: az.connectionString, now: () => new Date(clock.t), ...(crash ? { crash } : {}) });
  await ensureStorage(proc().ctx);
  return { dir, clock, proc };
}

async function runToEnd(p: SimProcess): Promise<string> {
  const r = await startRun(p.ctx, { pipeline: 'accounts', trigger: 'cli' });
  for (let i = 0; i < 20 && (await p.host.pollOnce()) > 0; i++);
  return r.runId;
}

/** Two committed runs: the first load and a change. */
async function twoRuns(e: Awaited<ReturnType<typeof project>>): Promise<[string, string]> {
  const first = await runToEnd(e.proc());
  await duckExec(join(e.dir, 'source.duckdb'), `update crm.accounts set city = 'moved' where id = 2`);
  e.clock.t += 3_600_000;
  const second = await runToEnd(e.proc());
  e.clock.t += 3_600_000;
  return [first, second];
}

const leaseInsert = { match: (c: { op: string; target: string }) => c.op === 'table.insert' && c.target === 'leases/accounts/lease', side: 'after' as const };

describe('rollback and restore leases name their owner', () => {
  it('a rollback that died holding the lease: its lease names the process; the next start takes it over at once and runs', async () => {
    const e = await project();
    const [first, second] = await twoRuns(e);
    const dying = e.proc(leaseInsert);
    await expect(rollbackPipeline(dying.ctx, { pipeline: 'accounts', toRunId: first, by: 'test' })).rejects.toThrow(/process died/);
    expect(dying.crash.diedAt).toMatch(/after call \d+ table.insert leases\/accounts\/lease/);
    const raw = rawStorage(az.connectionString);
    const held = await readLease(raw.tables, 'accounts');
    expect(held).toMatchObject({ ownerPid: process.pid, ownerHost: thisProcessOwner().ownerHost, ownerStartTime: dying.ctx.owner!.ownerStartTime });
    expect(held!.runId).not.toBe(second);

    // Without an owner the lease blocked every start for an hour ("run … is in flight").
    const next = e.proc();
    const third = await runToEnd(next);
    expect((await getRun(raw.tables, 'accounts', third)).status).toBe('succeeded');
    expect((await getRun(raw.tables, 'accounts', second)).status).toBe('succeeded');
    expect(await readLease(raw.tables, 'accounts')).toBeUndefined();
  }, 120_000);

  it('a rollback that died after its warehouse transaction: the next start rewinds the checkpoint and marks the undone run', async () => {
    const e = await project();
    const [first, second] = await twoRuns(e);
    const dying = e.proc({ match: (c) => c.op === 'warehouse.transaction', side: 'after' });
    await expect(rollbackPipeline(dying.ctx, { pipeline: 'accounts', toRunId: first, by: 'test' })).rejects.toBeInstanceOf(ProcessDeath);
    const raw = rawStorage(az.connectionString);
    expect((await readCheckpoint(raw.tables, 'accounts')).checkpoint.lastRunId).toBe(second);

    const third = await runToEnd(e.proc());
    const runs = new Map((await listRuns(raw.tables, 'accounts')).map((r) => [r.runId, r]));
    expect(runs.get(second)).toMatchObject({ status: 'rolled_back', rolledBackBy: 'recovery', rolledBackTo: first });
    expect(runs.get(third)!.status).toBe('succeeded');
    const ledger = await duckQuery<{ run_id: string; base_run_id: string | null }>(join(e.dir, 'warehouse.duckdb'), 'select run_id, base_run_id from dw._tm_ledger order by run_seq');
    expect(ledger).toEqual([
      // The first run's base is stored as '' so that the unique (pipeline, base) holds for it too.
      { run_id: first, base_run_id: '' },
      { run_id: third, base_run_id: first },
    ]);
    // Run 3 re-applied the change run 2 made, against run 1's state: one closed, one current version of key 2.
    const key2 = await duckQuery(join(e.dir, 'warehouse.duckdb'), `select city, _tm_valid_to is null as current from dw.dim_account where id = 2 order by _tm_valid_from`);
    expect(key2).toEqual([
      { city: 'b', current: false },
      { city: 'moved', current: true },
    ]);
  }, 120_000);

  it('a second rollback takes over a dead rollback and finishes it; a live holder is never taken over', async () => {
    const e = await project();
    const [first, second] = await twoRuns(e);
    const raw = rawStorage(az.connectionString);

    // A live operation (this very process) holds the lease: refused, nothing undone.
    const liveId = newRunId(new Date(e.clock.t));
    await acquireLease(raw.tables, { pipeline: 'accounts', runId: liveId, now: new Date(e.clock.t), ttlMs: 3_600_000, owner: thisProcessOwner(), isActive: async () => true, onStale: async () => undefined });
    await expect(rollbackPipeline(e.proc().ctx, { pipeline: 'accounts', toRunId: first, by: 'test' })).rejects.toThrow(/rollback refused: .*in flight/);
    await expect(startRun(e.proc().ctx, { pipeline: 'accounts', trigger: 'cli' })).rejects.toThrow(/in flight/);
    expect((await getRun(raw.tables, 'accounts', second)).status).toBe('succeeded');
    await releaseLease(raw.tables, 'accounts', liveId);

    // A dead one: the next rollback takes its lease at once and completes the undo.
    const dying = e.proc({ match: (c) => c.op === 'warehouse.transaction', side: 'after' });
    await expect(rollbackPipeline(dying.ctx, { pipeline: 'accounts', toRunId: first, by: 'test' })).rejects.toBeInstanceOf(ProcessDeath);
    const again = await rollbackPipeline(e.proc().ctx, { pipeline: 'accounts', toRunId: first, by: 'test' });
    expect(again.undone).toEqual([second]);
    expect((await getRun(raw.tables, 'accounts', second)).status).toBe('rolled_back');
    expect((await readCheckpoint(raw.tables, 'accounts')).checkpoint.lastRunId).toBe(first);
    expect(await readLease(raw.tables, 'accounts')).toBeUndefined();
  }, 120_000);
});
