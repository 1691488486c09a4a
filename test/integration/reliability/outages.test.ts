import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePorts, startAzurite, type AzuriteHandle } from '../../../shared/local/azurite.js';
import type { LocalStack } from '../../../shared/local/stack.js';
import { TransientError } from '../../../shared/errors.js';
import { layout, CONTAINERS } from '../../../shared/storage/layout.js';
import type { LogLevel } from '../../../shared/telemetry/logger.js';
import { FaultPlan } from '../../support/faults.js';
import {
  HOUR,
  T0,
  accountsProject,
  changeAccounts,
  drain,
  openFaultyStack,
  pipelineState,
  runThroughHost,
  type PipelineState,
} from '../../support/reliability.js';

type Logs = Array<{ level: LogLevel; message: string; props: Record<string, unknown> }>;

async function baselineState(): Promise<PipelineState> {
  const az = await startAzurite();
  const dir = await accountsProject();
  const clock = { t: T0 };
  const stack = await openFaultyStack({ az, dir, clock });
  try {
    await runThroughHost(stack, 'accounts');
    await changeAccounts(dir);
    clock.t += HOUR;
    await runThroughHost(stack, 'accounts');
    await drain(stack);
    return await pipelineState(stack, dir, 'accounts');
  } finally {
    await stack.close();
    await az.stop();
  }
}

const retryDelays = (logs: Logs, what: RegExp) =>
  logs.filter((l) => what.test(l.message)).map((l) => Number(/retrying in (\d+) ms/.exec(l.message)?.[1]));

describe('outages: storage, source and warehouse unavailable mid-run', () => {
  let baseline: PipelineState;
  beforeAll(async () => {
    baseline = await baselineState();
  });

  it('storage (Azurite) stopped mid-run and restarted on its folder: the run resumes and ends as the fault-free run', async () => {
    const location = mkdtempSync(join(tmpdir(), 'tidemark-azurite-'));
    const [blob, queue, table] = await freePorts(3);
    const ports = { blob: blob!, queue: queue!, table: table! };
    let az: AzuriteHandle = await startAzurite({ location, ports });
    const dir = await accountsProject();
    const clock = { t: T0 };
    const plan = new FaultPlan();
    const stack = await openFaultyStack({ az, dir, clock, plan, host: { processingTimeoutSeconds: 5 } });
    try {
      expect((await runThroughHost(stack, 'accounts')).status).toBe('succeeded');
      await drain(stack);
      await changeAccounts(dir);
      clock.t += HOUR;
      // Storage goes away just as the transform hands over to the merge, for two seconds.
      let restarted: Promise<void> | undefined;
      plan.add({
        op: 'queue.send',
        target: /^merge$/,
        when: 'before',
        throws: false,
        onFire: async () => {
          await az.stop();
          restarted = new Promise((r) => setTimeout(r, 2000)).then(async () => {
            az = await startAzurite({ location, ports });
          });
        },
      });
      const second = await runThroughHost(stack, 'accounts', { tolerateHostErrors: true, timeoutMs: 120_000 });
      await restarted;
      await drain(stack);
      expect(plan.fired.length).toBe(1);
      expect(second.status).toBe('succeeded');
      expect(await pipelineState(stack, dir, 'accounts')).toEqual(baseline);
    } finally {
      await stack.close();
      await az.stop();
    }
  });

  describe('source and warehouse', () => {
    let az: AzuriteHandle;
    let stack: LocalStack;
    let dir: string;
    const clock = { t: T0 };
    const plan = new FaultPlan();
    const logs: Logs = [];

    beforeAll(async () => {
      az = await startAzurite();
      dir = await accountsProject();
      stack = await openFaultyStack({ az, dir, clock, plan, logs, host: { maxDequeueCount: 2 } });
      expect((await runThroughHost(stack, 'accounts')).status).toBe('succeeded');
      await drain(stack);
      await changeAccounts(dir);
    });
    afterAll(async () => {
      await stack?.close();
      await az?.stop();
    });

    it('a source down for good: retried with backoff, then a clean failure; nothing half-applied', async () => {
      const before = await pipelineState(stack, dir, 'accounts');
      plan.add({ op: 'source.extract', when: 'before', times: 1000, error: () => new TransientError('source connection refused (ECONNREFUSED)') });
      clock.t += HOUR;
      const r = await runThroughHost(stack, 'accounts');
      await drain(stack);
      plan.clear();
      expect(r.status).toBe('failed');
      expect(r.error).toBe('poisoned in extract after 2 attempt(s): source connection refused (ECONNREFUSED)');
      // 2 deliveries × 3 attempts (retry.attempts), with growing, jittered delays between attempts.
      expect(plan.fired.length).toBe(6);
      const delays = retryDelays(logs, /^source read failed/);
      expect(delays.length).toBe(4);
      for (const [i, d] of delays.entries()) {
        const base = 20 * 2 ** (i % 2);
        expect(d).toBeGreaterThanOrEqual(base / 2);
        expect(d).toBeLessThanOrEqual(base);
      }
      expect(await stack.ctx.blobs.exists(CONTAINERS.raw, layout.rawManifest('accounts', r.runId))).toBe(false);
      const after = await pipelineState(stack, dir, 'accounts');
      expect(after.dimension).toEqual(before.dimension);
      expect(after.ledger).toEqual(before.ledger);
      expect(after.checkpoint).toEqual(before.checkpoint);
    });

    it('a source and a warehouse that come back within the retries: the run succeeds, applied once', async () => {
      logs.length = 0;
      plan.fired.length = 0;
      plan.add(
        { op: 'source.extract', when: 'before', times: 2, error: () => new TransientError('source timeout') },
        { op: 'warehouse.merge', when: 'before', times: 2, error: () => new TransientError('warehouse file is locked by another process') },
      );
      clock.t += HOUR;
      const r = await runThroughHost(stack, 'accounts');
      await drain(stack);
      expect(r.status).toBe('succeeded');
      expect(plan.fired.map((f) => f.op)).toEqual(['source.extract', 'source.extract', 'warehouse.merge', 'warehouse.merge']);
      expect(retryDelays(logs, /^source read failed/).length).toBe(2);
      expect(retryDelays(logs, /^warehouse merge failed/).length).toBe(2);
      const state = await pipelineState(stack, dir, 'accounts');
      // Run 2 failed on the source; run 3 applies day two's changes exactly once.
      expect(state.ledger.map((l) => l.run_id)).toEqual(['run#1', 'run#3']);
      expect(state.dimension.filter((d) => d._tm_run_id === 'run#3').length).toBe(
        baseline.dimension.filter((d) => d._tm_run_id === 'run#2').length,
      );
    });
  });
});
