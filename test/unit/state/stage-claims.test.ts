import { afterEach, describe, expect, it, vi } from 'vitest';
import { TransientError } from '../../../shared/errors.js';
import { spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import { claimStage, stageInFlight } from '../../../shared/state/stage-claims.js';
import { thisProcessOwner } from '../../../shared/state/lease-owner.js';
import { TABLES } from '../../../shared/storage/layout.js';
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

  it('a claim names its owner; one held by a process of this host that is gone is taken over at once, one of a live or remote process is not', async () => {
    const t = new MemoryTables();
    const deadPid = spawnSync(process.execPath, ['-e', '']).pid!;
    await claimStage(t, { ...args, owner: { ownerHost: hostname(), ownerPid: deadPid } });
    expect((await t.get(TABLES.leases, 'p', `claim-${args.runId}-merge`))?.entity).toMatchObject({ ownerHost: hostname(), ownerPid: deadPid });
    expect(await stageInFlight(t, args)).toBe(false);
    const taken = await claimStage(t, args);
    expect((await t.get(TABLES.leases, 'p', `claim-${args.runId}-merge`))?.entity).toMatchObject(thisProcessOwner());
    // This process is alive: its claim holds.
    expect(await stageInFlight(t, args)).toBe(true);
    await expect(claimStage(t, args)).rejects.toThrow(TransientError);
    await taken.release();
    // A process on another host is never judged from here: its claim holds until it expires.
    await claimStage(t, { ...args, owner: { ownerHost: `${hostname()}-elsewhere`, ownerPid: deadPid } });
    await expect(claimStage(t, args)).rejects.toThrow(TransientError);
  });

  it('different stages or runs do not block each other', async () => {
    const t = new MemoryTables();
    await claimStage(t, args);
    await claimStage(t, { ...args, stage: 'validate' });
    await claimStage(t, { ...args, runId: '20260101T000000Z-ffff' });
  });
});
