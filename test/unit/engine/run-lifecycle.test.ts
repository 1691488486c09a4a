import { describe, expect, it } from 'vitest';
import { RUN_TRANSITIONS, assertTransition, canTransition, recordStarted, transitionRun, type RecordedTransition } from '../../../shared/engine/run-lifecycle.js';
import { getRun, newRunRecord, RUN_STATUSES, updateRun, type RunRecord, type RunStatus } from '../../../shared/state/runs.js';
import { silentLogger } from '../../../shared/telemetry/logger.js';
import { MemoryTables } from '../../support/memory-tables.js';

const LIVE: RunStatus[] = ['queued', 'running'];

async function fresh(): Promise<{ ctx: { tables: MemoryTables; now: () => Date; log: typeof silentLogger }; run: RunRecord }> {
  const tables = new MemoryTables();
  const ctx = { tables, now: () => new Date('2026-12-02T04:00:00Z'), log: silentLogger };
  const run = newRunRecord({ pipeline: 'acc', runId: '20261202T040000Z-0001', trigger: 'cli', mode: 'incremental', now: ctx.now() });
  await recordStarted(ctx, run);
  return { ctx, run };
}

describe('run lifecycle: the transition table', () => {
  it('names only known statuses, and no ended run becomes live again except by reopening a committed one', () => {
    for (const [name, rule] of Object.entries(RUN_TRANSITIONS)) {
      expect(RUN_STATUSES, name).toContain(rule.to);
      for (const from of rule.from) expect(RUN_STATUSES, name).toContain(from);
      if (LIVE.includes(rule.to) && name !== 'reopened') expect(rule.from.every((f: RunStatus) => LIVE.includes(f)), name).toBe(true);
    }
    expect([...RUN_TRANSITIONS.reopened.from].sort()).toEqual(['cancelled', 'failed']);
  });

  it('refuses succeeded → running (the late duplicate) and a failure after a success', () => {
    expect(canTransition('succeeded', 'extracting')).toBe(false);
    expect(canTransition('succeeded', 'failed')).toBe(false);
    expect(canTransition('validation_failed', 'succeeded')).toBe(false);
    expect(canTransition('rolled_back', 'reopened')).toBe(false);
    expect(() => assertTransition('r1', 'succeeded', 'merging')).toThrow(/run r1 is succeeded: the merging transition \(to running\) is not allowed/);
    expect(() => assertTransition('r1', 'running', 'merging')).not.toThrow();
  });
});

describe('run lifecycle: transitionRun', () => {
  it('walks a run from started to succeeded, each step on the record', async () => {
    const { ctx, run } = await fresh();
    const steps: Array<[RecordedTransition, RunStatus, string]> = [
      ['extracting', 'running', 'extract'],
      ['extracted', 'running', 'transform'],
      ['transforming', 'running', 'transform'],
      ['transformed', 'running', 'merge'],
      ['merging', 'running', 'merge'],
      ['committed', 'running', 'validate'],
      ['succeeded', 'succeeded', 'done'],
    ];
    for (const [t, status, stage] of steps) {
      const out = await transitionRun(ctx, 'acc', run.runId, t);
      expect(out.applied, t).toBe(true);
      expect({ status: out.run.status, stage: out.run.stage }, t).toEqual({ status, stage });
    }
  });

  it('turns a late duplicate away: a succeeded run stays succeeded and its record is not written', async () => {
    const { ctx, run } = await fresh();
    await transitionRun(ctx, 'acc', run.runId, 'extracting');
    await transitionRun(ctx, 'acc', run.runId, 'succeeded', (r) => ({ ...r, finishedAt: '2026-12-02T04:05:00.000Z' }));
    const before = await ctx.tables.get<RunRecord>('runs', 'acc', run.runId);
    for (const t of ['extracting', 'extracted', 'transformed', 'merging', 'committed', 'failed', 'cancelled', 'validationFailed', 'reopened'] as const) {
      const out = await transitionRun(ctx, 'acc', run.runId, t, (r) => ({ ...r, error: 'late' }));
      expect(out.applied, t).toBe(false);
      expect(out.run.status, t).toBe('succeeded');
    }
    const after = await ctx.tables.get<RunRecord>('runs', 'acc', run.runId);
    expect(after!.etag).toBe(before!.etag);
    expect(after!.entity.error).toBeUndefined();
  });

  it('reopens a failed or cancelled run (its merge committed) and clears its error', async () => {
    const { ctx, run } = await fresh();
    await transitionRun(ctx, 'acc', run.runId, 'cancelled', (r) => ({ ...r, error: 'cancelled: by test', finishedAt: ctx.now().toISOString() }));
    const out = await transitionRun(ctx, 'acc', run.runId, 'reopened', ({ error: _e, finishedAt: _f, ...rest }) => rest);
    expect(out.applied).toBe(true);
    expect(out.run).toMatchObject({ status: 'running', stage: 'validate' });
    expect(out.run.error).toBeUndefined();
    expect(out.run.finishedAt).toBeUndefined();
    expect((await transitionRun(ctx, 'acc', run.runId, 'validationFailed')).run.status).toBe('validation_failed');
  });

  it('marks rollbacks: a repeated rollback re-marks, recovery leaves a marked run alone, a live run is refused', async () => {
    const { ctx, run } = await fresh();
    expect((await transitionRun(ctx, 'acc', run.runId, 'rolledBack')).applied).toBe(false);
    await transitionRun(ctx, 'acc', run.runId, 'succeeded');
    await transitionRun(ctx, 'acc', run.runId, 'rolledBack', (r) => ({ ...r, error: 'first' }));
    expect((await transitionRun(ctx, 'acc', run.runId, 'rolledBackByRecovery', (r) => ({ ...r, error: 'recovery' }))).applied).toBe(false);
    expect((await getRun(ctx.tables, 'acc', run.runId)).error).toBe('first');
    expect((await transitionRun(ctx, 'acc', run.runId, 'rolledBack', (r) => ({ ...r, error: 'again' }))).applied).toBe(true);
    expect((await getRun(ctx.tables, 'acc', run.runId)).error).toBe('again');
  });

  it('lets exactly one of two racing ends win (ETag retry re-checks the table)', async () => {
    const { ctx, run } = await fresh();
    await transitionRun(ctx, 'acc', run.runId, 'committed');
    const [failed, succeeded] = await Promise.all([
      transitionRun(ctx, 'acc', run.runId, 'failed', (r) => ({ ...r, error: 'poisoned' })),
      transitionRun(ctx, 'acc', run.runId, 'succeeded'),
    ]);
    expect([failed.applied, succeeded.applied].filter(Boolean)).toHaveLength(1);
    const final = await getRun(ctx.tables, 'acc', run.runId);
    expect(final.status).toBe(failed.applied ? 'failed' : 'succeeded');
  });

  it('refuses a status written past it, naming the way in', async () => {
    const { ctx, run } = await fresh();
    await expect(updateRun(ctx.tables, 'acc', run.runId, (r) => ({ ...r, status: 'succeeded' }))).rejects.toThrow(
      /status queued → succeeded written outside the run lifecycle; use transitionRun \(shared\/engine\/run-lifecycle\.ts\)/,
    );
    // Other fields still go through updateRun.
    expect((await updateRun(ctx.tables, 'acc', run.runId, (r) => ({ ...r, waitingFor: ['crm'] }))).waitingFor).toEqual(['crm']);
    expect((await getRun(ctx.tables, 'acc', run.runId)).status).toBe('queued');
  });

  it('starts a run only as queued at the extract, once', async () => {
    const { ctx, run } = await fresh();
    await expect(recordStarted(ctx, run)).rejects.toThrow(/exists/);
    const odd = { ...newRunRecord({ pipeline: 'acc', runId: '20261202T040000Z-0002', trigger: 'cli', mode: 'full', now: ctx.now() }), status: 'running' as const };
    await expect(recordStarted(ctx, odd)).rejects.toThrow(/must start queued at extract, not running at extract/);
  });
});
