import { beforeAll, describe, expect, it } from 'vitest';
import { startAzurite } from '../../../shared/local/azurite.js';
import { extractStage, mergeStage, transformStage, validateStage, type StageOutcome } from '../../../shared/engine/stages.js';
import { parseStageMessage } from '../../../shared/engine/messages.js';
import { startRun } from '../../../shared/engine/start-run.js';
import type { LocalStack } from '../../../shared/local/stack.js';
import { decodeQueueMessage } from '../../../shared/storage/azure-storage.js';
import { expandConnectionString } from '../../../shared/storage/connection.js';
import { CONTAINERS, QUEUES, parseManifestPath } from '../../../shared/storage/layout.js';
import { getRun, isTerminalStatus } from '../../../shared/state/runs.js';
import { duplicatingQueues } from '../../support/faults.js';
import {
  HOUR,
  T0,
  accountsProject,
  changeAccounts,
  drain,
  openFaultyStack,
  pipelineState,
  runThroughHost,
  sleep,
  type PipelineState,
} from '../../support/reliability.js';
import { storageOf } from '../../support/storage-clients.js';

const handlers: Record<string, (stack: LocalStack, body: unknown) => Promise<StageOutcome>> = {
  [QUEUES.extract]: (s, b) => extractStage(s.ctx, parseStageMessage(QUEUES.extract, b)),
  [QUEUES.merge]: (s, b) => mergeStage(s.ctx, parseStageMessage(QUEUES.merge, b)),
  [QUEUES.validate]: (s, b) => validateStage(s.ctx, parseStageMessage(QUEUES.validate, b), startRun),
};

/**
 * A driver harsher than the host: every queue message (already sent twice by the port) is
 * handled by two concurrent invocations, and every manifest fires two concurrent transforms
 * plus a late third one. A copy that fails (e.g. it found the stage claimed) is redelivered,
 * as the Functions host would.
 */
async function runConcurrentDuplicates(stack: LocalStack, cs: string, pipeline: string): Promise<{ runId: string; refused: string[] }> {
  const refused: string[] = [];
  const note = (rs: PromiseSettledResult<unknown>[]) => rs.forEach((r) => r.status === 'rejected' && refused.push(String((r.reason as Error).message)));
  const run = await startRun(stack.ctx, { pipeline, trigger: 'cli' });
  const service = storageOf(cs).clients.queue;
  const fired = new Map<string, number>();
  const deadline = Date.now() + 90_000;
  while (!isTerminalStatus((await getRun(stack.ctx.tables, pipeline, run.runId)).status)) {
    if (Date.now() > deadline) throw new Error('the duplicate driver did not finish the run');
    for (const q of [QUEUES.extract, QUEUES.merge, QUEUES.validate]) {
      const client = service.getQueueClient(q);
      const got = await client.receiveMessages({ numberOfMessages: 32, visibilityTimeout: 30 });
      await Promise.all(
        got.receivedMessageItems.map(async (m) => {
          const body = decodeQueueMessage(m.messageText);
          const results = await Promise.allSettled([handlers[q]!(stack, body), handlers[q]!(stack, body)]);
          note(results);
          if (results.every((r) => r.status === 'fulfilled')) await client.deleteMessage(m.messageId, m.popReceipt);
          else await client.updateMessage(m.messageId, m.popReceipt, undefined, 0);
        }),
      );
    }
    for await (const b of stack.ctx.blobs.list(CONTAINERS.raw, `${pipeline}/`)) {
      if (!parseManifestPath(b.name) || fired.get(b.name) === 3) continue;
      note(await Promise.allSettled([transformStage(stack.ctx, b.name), transformStage(stack.ctx, b.name)]));
      // The late redelivery of whichever copy lost the race.
      const late = await transformStage(stack.ctx, b.name).then(
        () => true,
        () => false,
      );
      if (late) fired.set(b.name, 3);
    }
    await sleep(20);
  }
  return { runId: run.runId, refused };
}

describe('duplicates: every message and blob trigger delivered twice, also concurrently', () => {
  let baseline: PipelineState;

  beforeAll(async () => {
    const az = await startAzurite();
    const dir = await accountsProject();
    const clock = { t: T0 };
    const stack = await openFaultyStack({ az, dir, clock });
    try {
      await runThroughHost(stack, 'accounts');
      await changeAccounts(dir);
      clock.t += HOUR;
      await runThroughHost(stack, 'accounts');
      baseline = await pipelineState(stack, dir, 'accounts');
    } finally {
      await stack.close();
      await az.stop();
    }
  });

  it('through the host, with every message sent twice and every manifest re-fired: equal to the fault-free run', async () => {
    const az = await startAzurite();
    const dir = await accountsProject();
    const clock = { t: T0 };
    let sent: Array<{ queue: string }> = [];
    const stack = await openFaultyStack({
      az,
      dir,
      clock,
      queues: (inner) => {
        const d = duplicatingQueues(inner);
        sent = d.sent;
        return d;
      },
    });
    try {
      expect((await runThroughHost(stack, 'accounts')).status).toBe('succeeded');
      await drain(stack);
      await changeAccounts(dir);
      clock.t += HOUR;
      const second = await runThroughHost(stack, 'accounts');
      expect(second.status).toBe('succeeded');
      await drain(stack);
      // The blob trigger fires again for both manifests (e.g. after a host restart lost receipts).
      for await (const b of stack.ctx.blobs.list(CONTAINERS.raw, 'accounts/')) {
        if (parseManifestPath(b.name)) expect(await transformStage(stack.ctx, b.name)).toBe('skipped');
      }
      await drain(stack);
      expect(sent.filter((s) => s.queue === QUEUES.merge).length).toBeGreaterThanOrEqual(2);
      const state = await pipelineState(stack, dir, 'accounts');
      expect(state).toEqual(baseline);
    } finally {
      await stack.close();
      await az.stop();
    }
  });

  it('two concurrent invocations of every stage: no duplicate versions, one checkpoint advance per run, one run record', async () => {
    const az = await startAzurite();
    const dir = await accountsProject();
    const clock = { t: T0 };
    const stack = await openFaultyStack({ az, dir, clock, queues: (inner) => duplicatingQueues(inner) });
    const cs = expandConnectionString(az.connectionString);
    try {
      const a = await runConcurrentDuplicates(stack, cs, 'accounts');
      await changeAccounts(dir);
      clock.t += HOUR;
      const b = await runConcurrentDuplicates(stack, cs, 'accounts');
      // The copies really overlapped: the stage claim turned the second copy away (to be redelivered).
      const refused = [...a.refused, ...b.refused];
      expect(refused.length).toBeGreaterThan(0);
      for (const m of refused) expect(m).toMatch(/is being processed by another delivery|locked/);
      await drain(stack);
      const state = await pipelineState(stack, dir, 'accounts');
      expect(state.checkpoint.history).toEqual(baseline.checkpoint.history);
      expect(state.ledger).toEqual(baseline.ledger);
      expect(state.runs.map((r) => [r.runId, r.status, r.counts])).toEqual(baseline.runs.map((r) => [r.runId, r.status, r.counts]));
      expect(state.dimension).toEqual(baseline.dimension);
    } finally {
      await stack.close();
      await az.stop();
    }
  });
});
