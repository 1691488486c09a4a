import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAzurite, type AzuriteHandle } from '../../../shared/local/azurite.js';
import type { LocalStack } from '../../../shared/local/stack.js';
import { readLease } from '../../../shared/state/leases.js';
import { decodeQueueMessage } from '../../../shared/storage/azure-storage.js';
import { FaultPlan } from '../../support/faults.js';
import { duckExec } from '../../support/project.js';
import { HOUR, T0, accountsProject, changeAccounts, drain, openFaultyStack, pipelineState, runThroughHost } from '../../support/reliability.js';
import { storageOf } from '../../support/storage-clients.js';

describe('poison: a message that keeps failing', () => {
  let az: AzuriteHandle;
  let stack: LocalStack;
  let dir: string;
  const clock = { t: T0 };
  const plan = new FaultPlan();

  beforeAll(async () => {
    az = await startAzurite();
    dir = await accountsProject();
    stack = await openFaultyStack({ az, dir, clock, plan, host: { maxDequeueCount: 3 } });
  });
  afterAll(async () => {
    await stack?.close();
    await az?.stop();
  });

  it('lands in the poison queue after maxDequeueCount, fails the run with the error, and does not wedge the pipeline', async () => {
    expect((await runThroughHost(stack, 'accounts')).status).toBe('succeeded');
    const before = await pipelineState(stack, dir, 'accounts');
    await changeAccounts(dir);
    clock.t += HOUR;

    // The warehouse rejects every merge: 3 deliveries × 3 in-stage attempts.
    plan.add({ op: 'warehouse.merge', when: 'before', times: 1000, error: () => new Error('warehouse refused the connection (ECONNRESET)') });
    const failed = await runThroughHost(stack, 'accounts');
    expect(failed.status).toBe('failed');
    expect(failed.error).toBe('poisoned in merge after 3 attempt(s): warehouse refused the connection (ECONNRESET)');
    expect(plan.fired.length).toBe(9);
    const poison = await storageOf(az.connectionString).clients.queue.getQueueClient('merge-poison').receiveMessages({ numberOfMessages: 32 });
    expect(poison.receivedMessageItems.map((m) => decodeQueueMessage(m.messageText))).toEqual([{ pipeline: 'accounts', runId: failed.runId }]);
    expect(await readLease(stack.ctx.tables, 'accounts')).toBeUndefined();

    // Nothing half-applied: warehouse and checkpoint as they were before the failed run.
    const during = await pipelineState(stack, dir, 'accounts');
    expect(during.dimension).toEqual(before.dimension);
    expect(during.ledger).toEqual(before.ledger);
    expect(during.checkpoint).toEqual(before.checkpoint);

    // The cause is fixed: the next run re-reads the window and applies the changes once.
    plan.clear();
    clock.t += HOUR;
    const next = await runThroughHost(stack, 'accounts');
    await drain(stack);
    expect(next.status).toBe('succeeded');
    expect(next.counts).toMatchObject({ inserted: 50, deleted: 25, unchanged: 2500 - 250 - 25 + 2 });
    const after = await pipelineState(stack, dir, 'accounts');
    expect(after.ledger.map((l) => l.run_id)).toEqual(['run#1', 'run#3']);
    expect(after.runs.map((r) => [r.runId, r.status])).toEqual([
      ['run#1', 'succeeded'],
      ['run#2', 'failed'],
      ['run#3', 'succeeded'],
    ]);
  });

  it('a blob trigger that keeps failing lands in webjobs-blobtrigger-poison and fails the run; the next run works', async () => {
    await drain(stack);
    const before = await pipelineState(stack, dir, 'accounts');
    await duckExec(join(dir, 'source.duckdb'), `insert into crm.accounts select i, 'x' || i, 'c2', 2.00 from range(3001, 3051) t(i)`);
    clock.t += HOUR;
    plan.clear();
    plan.fired.length = 0;
    plan.add({ op: 'blob.uploadFile', target: /^changes\//, when: 'before', times: 1000, error: () => new Error('storage throttled (503)') });
    const failed = await runThroughHost(stack, 'accounts');
    expect(failed.status).toBe('failed');
    expect(failed.error).toBe('poisoned in webjobs-blobtrigger after 3 attempt(s): storage throttled (503)');
    expect(plan.fired.length).toBe(3);
    const poison = await storageOf(az.connectionString).clients.queue
      .getQueueClient('webjobs-blobtrigger-poison')
      .receiveMessages({ numberOfMessages: 32 });
    expect(poison.receivedMessageItems.map((m) => JSON.parse(m.messageText))).toEqual([{ container: 'raw', blob: `accounts/${failed.runId}/_manifest.json` }]);
    const during = await pipelineState(stack, dir, 'accounts');
    expect(during.dimension).toEqual(before.dimension);
    expect(during.checkpoint).toEqual(before.checkpoint);

    plan.clear();
    clock.t += HOUR;
    const next = await runThroughHost(stack, 'accounts');
    expect(next.status).toBe('succeeded');
    expect(next.counts.inserted).toBe(50);
  });
});
