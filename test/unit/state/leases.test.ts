import { describe, expect, it } from 'vitest';
import { ConflictError } from '../../../shared/errors.js';
import { acquireLease, readLease, releaseLease } from '../../../shared/state/leases.js';
import { MemoryTables } from '../../support/memory-tables.js';

const T = Date.parse('2026-01-01T00:00:00Z');

describe('the pipeline lease', () => {
  it('refuses a second run while the first is in flight, and takes over from a stuck run past its lease', async () => {
    const t = new MemoryTables();
    const active = new Set(['A']);
    const stale: string[] = [];
    const base = {
      pipeline: 'p',
      ttlMs: 60_000,
      isActive: async (id: string) => active.has(id),
      // What startRun does: fail the stuck run, which releases its lease row.
      onStale: async (id: string) => {
        stale.push(id);
        active.delete(id);
        await releaseLease(t, 'p', id);
      },
    };
    await acquireLease(t, { ...base, runId: 'A', now: new Date(T) });
    await expect(acquireLease(t, { ...base, runId: 'B', now: new Date(T + 30_000) })).rejects.toThrow(
      new ConflictError('run A of p is in flight (lease until 2026-01-01T00:01:00.000Z)'),
    );
    await acquireLease(t, { ...base, runId: 'C', now: new Date(T + 61_000) });
    expect(stale).toEqual(['A']);
    expect((await readLease(t, 'p'))?.runId).toBe('C');
  });

  it('a finished holder does not block, whatever its lease time says', async () => {
    const t = new MemoryTables();
    const base = { pipeline: 'p', ttlMs: 60_000, isActive: async () => false, onStale: async () => undefined };
    await acquireLease(t, { ...base, runId: 'A', now: new Date(T) });
    await acquireLease(t, { ...base, runId: 'B', now: new Date(T + 1000) });
    expect((await readLease(t, 'p'))?.runId).toBe('B');
  });
});
