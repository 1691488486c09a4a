import { beforeAll, describe, expect, it } from 'vitest';
import { startAzurite } from '../../../shared/local/azurite.js';
import type { FaultRule } from '../../support/faults.js';
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

/**
 * docs/design.md §5.5: for any crash point, the host's normal retry or redelivery ends with the same
 * warehouse (dimension and ledger), checkpoint and run history as a fault-free run of the same
 * inputs. Each scenario runs two days (initial load, then changes) on its own Azurite; the fault
 * fires once, in the second run. A fault is a thrown error at the boundary (the instance died
 * there); with `when: 'after'` the write before it really happened.
 */
async function scenario(rules: FaultRule[]): Promise<{ state: PipelineState; fired: number; parts: number }> {
  const az = await startAzurite();
  const dir = await accountsProject();
  const clock = { t: T0 };
  const plan = new FaultPlan();
  const stack = await openFaultyStack({ az, dir, plan, clock });
  try {
    const first = await runThroughHost(stack, 'accounts');
    expect(first.status).toBe('succeeded');
    await changeAccounts(dir);
    clock.t += HOUR;
    plan.add(...rules);
    const second = await runThroughHost(stack, 'accounts');
    await drain(stack);
    expect(second.error).toBeUndefined();
    expect(second.status).toBe('succeeded');
    expect(plan.pending()).toEqual([]);
    const parts = plan.calls.filter((c) => c.op === 'blob.uploadFile' && c.target.includes(second.runId) && c.target.includes('/part-')).length;
    return { state: await pipelineState(stack, dir, 'accounts'), fired: plan.fired.length, parts };
  } finally {
    await stack.close();
    await az.stop();
  }
}

const manifest = /^raw\/accounts\/[^/]+\/_manifest\.json$/;
const changesManifest = /^changes\/accounts\/[^/]+\/_manifest\.json$/;

const CRASH_POINTS: Array<[string, FaultRule[]]> = [
  ['after some parts are uploaded', [{ op: 'blob.uploadFile', target: /^raw\/.*part-00001/, when: 'after' }]],
  ['before the manifest', [{ op: 'blob.putText', target: manifest, when: 'before' }]],
  ['after the manifest, before the transform', [{ op: 'blob.putText', target: manifest, when: 'after' }]],
  ['mid-transform (changes uploaded, snapshot not)', [{ op: 'blob.uploadFile', target: /^changes\/.*changes\.parquet$/, when: 'after' }]],
  ['after the changes manifest, before the merge message', [{ op: 'blob.putText', target: changesManifest, when: 'after' }]],
  ['inside the merge transaction', [{ op: 'warehouse.statement', target: /^INSERT INTO "dw"."dim_account"/, when: 'after' }]],
  ['after the merge commit, before the checkpoint', [{ op: 'warehouse.merge', when: 'after' }]],
  ['after the checkpoint, before validation', [{ op: 'table.replace', target: /^checkpoints\/accounts\/checkpoint$/, when: 'after' }]],
];

describe('crash points: a fault at each boundary, then the normal retry, ends equal to a fault-free run', () => {
  let baseline: Awaited<ReturnType<typeof scenario>>;

  beforeAll(async () => {
    baseline = await scenario([]);
  });

  it('the fault-free run is the reference: two runs, history with closed and current versions, three parts', () => {
    expect(baseline.fired).toBe(0);
    expect(baseline.parts).toBeGreaterThanOrEqual(2);
    expect(baseline.state.runs.map((r) => [r.runId, r.status])).toEqual([
      ['run#1', 'succeeded'],
      ['run#2', 'succeeded'],
    ]);
    expect(baseline.state.ledger.map((l) => l.run_id)).toEqual(['run#1', 'run#2']);
    expect(baseline.state.checkpoint.lastRunId).toBe('run#2');
    const closed = baseline.state.dimension.filter((r) => r.vt !== null);
    expect(closed.length).toBeGreaterThan(250);
  });

  for (const [name, rules] of CRASH_POINTS) {
    it(name, async () => {
      const got = await scenario(rules);
      expect(got.fired).toBe(rules.length);
      expect(got.state.dimension).toEqual(baseline.state.dimension);
      expect(got.state.ledger).toEqual(baseline.state.ledger);
      expect(got.state.checkpoint).toEqual(baseline.state.checkpoint);
      expect(got.state.runs).toEqual(baseline.state.runs);
    });
  }
});

