import { afterEach, describe, expect, it, vi } from 'vitest';
import { TransientError } from '../../../shared/errors.js';
import { claimStage } from '../../../shared/state/stage-claims.js';
import { MemoryTables } from '../../support/memory-tables.js';

const args = { pipeline: 'p', runId: '20260101T000000Z-abcd', stage: 'merge', ttlMs: 60_000 };

describe('stage claims', () => {
  afterEach(() => vi.useRealTimers());

  it('turns a concurrent copy away with a retryable error, and lets the next delivery in after release', async () => {
    const t = new MemoryTables();
    const first = await claimStage(t, args);
    const second = claimStage(t, args);
    await expect(second).rejects.toThrow(TransientError);
    await expect(claimStage(t, args)).rejects.toThrow(/^stage merge of run 20260101T000000Z-abcd \(p\) is being processed by another delivery until /);
    await first.release();
    const third = await claimStage(t, args);
    await third.release();
  });

  it('two claims racing for an absent row: exactly one wins', async () => {
    const t = new MemoryTables();
    const results = await Promise.allSettled([claimStage(t, args), claimStage(t, args)]);
    expect(results.filter((r) => r.status === 'fulfilled').length).toBe(1);
  });

  it('a claim left by a dead invocation is taken over after its time; the late release of the dead one does not free the new claim', async () => {
    vi.useFakeTimers({ now: Date.parse('2026-01-01T00:00:00Z') });
    const t = new MemoryTables();
    const dead = await claimStage(t, args);
    vi.setSystemTime(Date.parse('2026-01-01T00:00:30Z'));
    await expect(claimStage(t, args)).rejects.toThrow(TransientError);
    vi.setSystemTime(Date.parse('2026-01-01T00:01:01Z'));
    const live = await claimStage(t, args);
    await dead.release();
    await expect(claimStage(t, args)).rejects.toThrow(TransientError);
    await live.release();
    await (await claimStage(t, args)).release();
  });

  it('different stages or runs do not block each other', async () => {
    const t = new MemoryTables();
    await claimStage(t, args);
    await claimStage(t, { ...args, stage: 'validate' });
    await claimStage(t, { ...args, runId: '20260101T000000Z-ffff' });
  });
});
