import { beforeAll, describe, expect, it } from 'vitest';
import { startAzurite, type AzuriteHandle } from '../../../shared/local/azurite.js';
import { failRun, startRun } from '../../../shared/engine/start-run.js';
import { connectionStringStorage, createStorageClients } from '../../../shared/storage/clients.js';
import { readCheckpoint } from '../../../shared/state/checkpoints.js';
import { FaultPlan } from '../../support/faults.js';
import {
  HOUR,
  T0,
  accountsProject,
  changeAccounts,
  driveUntilEnded,
  openFaultyStack,
  pipelineState,
  runThroughHost,
  sleep,
  type PipelineState,
} from '../../support/reliability.js';

/**
 * The commit point is the warehouse transaction (README "Guarantees"). The bug this pins: a run
 * killed right after its merge committed, before its checkpoint write, was failed by the next
 * start's lease takeover; the next run re-read the old window against the old snapshot and
 * applied the same changes again (every changed key got a second, identical version).
 *
 * Here the process "dies" after the merge commit: the fault fires on the checkpoint write that
 * follows the merge, and its queued messages are thrown away (no redelivery heals it), so only the next
 * start can. Each case has its own Azurite (the pipeline's state lives there) and project folder.
 */
async function clearQueues(az: AzuriteHandle): Promise<void> {
  const svc = createStorageClients(connectionStringStorage('AzureWebJobsStorage', az.connectionString), {}).queue;
  for await (const q of svc.listQueues()) await svc.getQueueClient(q.name).clearMessages();
}

/** Three runs: the first load, a run with changes, a run with none; `crash` kills the second after its merge commit. */
async function threeRuns(crash: 'none' | 'after-merge-commit' | 'after-merge-commit-then-failed'): Promise<{ state: PipelineState; statuses: string[] }> {
  const az = await startAzurite();
  const dir = await accountsProject();
  const clock = { t: T0 };
  const plan = new FaultPlan();
  // A failed delivery comes back only after an hour: the dead process's messages are cleared before that.
  const stack = await openFaultyStack({ az, dir, plan, clock, host: { retryDelaySeconds: 3600 } });
  try {
    expect((await runThroughHost(stack, 'accounts')).status).toBe('succeeded');
    await changeAccounts(dir);
    clock.t += HOUR;
    if (crash === 'none') {
      expect((await runThroughHost(stack, 'accounts')).status).toBe('succeeded');
    } else {
      // Dies between the merge commit and the checkpoint write.
      plan.add({ op: 'table.replace', target: /^checkpoints\/accounts\/checkpoint$/, when: 'before' });
      const second = await startRun(stack.ctx, { pipeline: 'accounts', trigger: 'cli' });
      const deadline = Date.now() + 60_000;
      while (plan.fired.length === 0) {
        await stack.host.pollOnce().catch(() => undefined);
        if (Date.now() > deadline) throw new Error('the merge fault never fired');
        await sleep(10);
      }
      await clearQueues(az);
      const { checkpoint } = await readCheckpoint(stack.ctx.tables, 'accounts');
      expect(checkpoint.history).toHaveLength(1);
      if (crash === 'after-merge-commit-then-failed') {
        // Another path (an operator, a poisoned message) failed the run: the lease is gone and
        // nothing completes the run; the next start must still not re-apply its changes.
        await failRun(stack.ctx, 'accounts', second.runId, 'killed');
      }
    }
    // The lease of a dead run lapses (60 min by default); the clean project waits as long.
    clock.t += 3 * HOUR;
    const third = await startRun(stack.ctx, { pipeline: 'accounts', trigger: 'cli' });
    await driveUntilEnded(stack, 'accounts', third.runId);
    const state = await pipelineState(stack, dir, 'accounts');
    return { state, statuses: state.runs.map((r) => String(r.status)) };
  } finally {
    await stack.close();
    await az.stop();
  }
}

describe('the warehouse transaction is the commit point', () => {
  let clean: Awaited<ReturnType<typeof threeRuns>>;
  beforeAll(async () => {
    clean = await threeRuns('none');
  }, 120_000);

  /** A row hash as text: hex under rules 1-3; under rule 4 its 16 bytes, which the state's JSON form keeps as `{ type: 'Buffer', data }`. */
  const hashText = (v: unknown): string => (typeof v === 'object' && v !== null && 'data' in v ? Buffer.from((v as { data: number[] }).data).toString('hex') : String(v));

  it('a run killed after its merge commit is completed by the next start, never re-applied', async () => {
    const got = await threeRuns('after-merge-commit');
    expect(got.statuses).toEqual(['succeeded', 'succeeded', 'succeeded']);
    expect(got.state.dimension).toEqual(clean.state.dimension);
    expect(got.state.ledger).toEqual(clean.state.ledger);
    const { committedAt: _a, ...cp } = got.state.checkpoint;
    const { committedAt: _b, ...cleanCp } = clean.state.checkpoint;
    expect(cp).toEqual(cleanCp);
    // No key holds two consecutive identical versions.
    const byKey = new Map<unknown, string[]>();
    for (const r of got.state.dimension) byKey.set(r.id, [...(byKey.get(r.id) ?? []), hashText(r._tm_row_hash)]);
    for (const hashes of byKey.values()) expect(new Set(hashes).size).toBe(hashes.length);
  }, 120_000);

  it('a committed run that was marked failed: the next start rolls the checkpoint forward from the ledger', async () => {
    const got = await threeRuns('after-merge-commit-then-failed');
    expect(got.statuses).toEqual(['succeeded', 'failed', 'succeeded']);
    expect(got.state.dimension).toEqual(clean.state.dimension);
    expect(got.state.ledger).toEqual(clean.state.ledger);
    expect(got.state.checkpoint.lastRunId).toBe('run#3');
    expect((got.state.checkpoint.history as Array<{ runId: string }>).map((h) => h.runId)).toEqual(['run#1', 'run#2', 'run#3']);
  }, 120_000);
});
