import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startAzurite, type AzuriteHandle } from '../../../shared/local/azurite.js';
import type { AzureTableStore } from '../../../shared/state/azure-tables.js';
import { recall, remember } from '../../../shared/state/known-versions.js';
import { acquireLease, readLease, releaseLease, renewLease } from '../../../shared/state/leases.js';
import { getRun, insertRun, newRunRecord, updateRun, type RunRecord } from '../../../shared/state/runs.js';
import { TABLES } from '../../../shared/storage/layout.js';
import { storageOf } from '../../support/storage-clients.js';

/**
 * updateRun's first attempt is made on the version this process last read or wrote, not on a
 * new read (shared/state/known-versions.ts). On Azurite, which enforces the ETag: two table
 * stores are two processes, each with its own remembered versions, writing one run record.
 * What must hold: a remembered version that went stale costs one 412 and one read, never a
 * lost write; a decision to write nothing is never taken on a remembered version.
 */
let az: AzuriteHandle;
let connectionString: string;
beforeAll(async () => {
  az = await startAzurite();
  connectionString = az.connectionString;
  await storageOf(connectionString).tables.ensureTables(Object.values(TABLES));
});
afterAll(async () => az?.stop());

/** Two processes' table stores on the same Azurite: each remembers its own versions. */
const twoStores = () => ({ one: storageOf(connectionString).tables, two: storageOf(connectionString).tables });

/** Sets the error only where none is recorded: a mutation that may decide to write nothing. */
const firstError = (text: string) => (r: RunRecord) => (r.error ? undefined : { ...r, error: text });

let n = 0;
async function twoProcesses(): Promise<{ one: AzureTableStore; two: AzureTableStore; runId: string }> {
  const { one, two } = twoStores();
  const runId = `20260101T000000Z-${String(++n).padStart(4, '0')}`;
  await insertRun(one, newRunRecord({ pipeline: 'p', runId, trigger: 'cli', mode: 'incremental', now: new Date('2026-01-01T00:00:00Z') }));
  return { one, two, runId };
}

function calls(store: AzureTableStore) {
  return { get: vi.spyOn(store, 'get'), replace: vi.spyOn(store, 'replace') };
}

describe('updates on a remembered version of the run record', () => {
  it('write without a read while nothing else wrote the record', async () => {
    const { one, runId } = await twoProcesses();
    const c = calls(one);
    await updateRun(one, 'p', runId, (r) => ({ ...r, timings: { ...r.timings, extract: 1 } }));
    await updateRun(one, 'p', runId, (r) => ({ ...r, timings: { ...r.timings, transform: 2 } }));
    expect(c.get).not.toHaveBeenCalled();
    expect(c.replace).toHaveBeenCalledTimes(2);
    expect((await getRun(one, 'p', runId)).timings).toEqual({ extract: 1, transform: 2 });
  });

  it('a version another process replaced fails its write with 412, is read again, and both writes stay', async () => {
    const { one, two, runId } = await twoProcesses();
    await updateRun(two, 'p', runId, (r) => ({ ...r, timings: { ...r.timings, extract: 5 } }));
    const c = calls(one);
    await updateRun(one, 'p', runId, (r) => ({ ...r, counts: { ...r.counts, inserted: 7 } }));
    // The stale attempt, the read, the write on the fresh version: nothing more.
    expect(c.replace).toHaveBeenCalledTimes(2);
    expect(c.get).toHaveBeenCalledTimes(1);
    const r = await getRun(two, 'p', runId);
    expect(r.timings).toEqual({ extract: 5 });
    expect(r.counts.inserted).toBe(7);
    // The version it wrote is remembered again: the next update needs no read.
    c.get.mockClear();
    await updateRun(one, 'p', runId, (x) => ({ ...x, timings: { ...x.timings, merge: 3 } }));
    expect(c.get).not.toHaveBeenCalled();
  });

  it('a stale version that would write is decided again on the fresh one, which may write nothing', async () => {
    const { one, two, runId } = await twoProcesses();
    await updateRun(two, 'p', runId, firstError('from two'));
    const result = await updateRun(one, 'p', runId, firstError('from one'));
    expect(result.error).toBe('from two');
    expect((await getRun(two, 'p', runId)).error).toBe('from two');
  });

  it('a remembered version on which the decision is "write nothing" is read again before that is believed', async () => {
    const { one, two, runId } = await twoProcesses();
    await updateRun(one, 'p', runId, firstError('old'));
    // Another process clears it; one still remembers the version with the error.
    await updateRun(two, 'p', runId, (r) => {
      const { error: _e, ...rest } = r;
      return rest;
    });
    const c = calls(one);
    const result = await updateRun(one, 'p', runId, firstError('new'));
    expect(c.get).toHaveBeenCalledTimes(1);
    expect(result.error).toBe('new');
    expect((await getRun(two, 'p', runId)).error).toBe('new');
  });
});

describe('renewing and releasing a remembered lease', () => {
  const T = Date.parse('2026-01-01T00:00:00Z');
  const take = (tables: AzureTableStore, pipeline: string, runId: string, at: number) =>
    acquireLease(tables, {
      pipeline,
      runId,
      now: new Date(at),
      ttlMs: 60_000,
      isActive: async () => false,
      // What startRun does with a stuck holder: releases its lease row.
      onStale: async (stale) => releaseLease(tables, pipeline, stale),
    });

  it('renews its own lease without a read', async () => {
    const { one } = twoStores();
    await take(one, 'lease-own', 'A', T);
    const c = calls(one);
    await renewLease(one, 'lease-own', 'A', new Date(T + 30_000), 60_000);
    expect(c.get).not.toHaveBeenCalled();
    expect((await readLease(one, 'lease-own'))?.expiresAt).toBe(new Date(T + 90_000).toISOString());
  });

  it('a lease taken over by another process is neither renewed nor released by the process that remembers it', async () => {
    const { one, two } = twoStores();
    await take(one, 'lease-taken', 'A', T);
    // A ran out; another process fails it and takes the lease for B.
    await take(two, 'lease-taken', 'B', T + 61_000);
    const c = calls(one);
    await renewLease(one, 'lease-taken', 'A', new Date(T + 62_000), 60_000);
    await releaseLease(one, 'lease-taken', 'A');
    // Each tried the remembered version once (412), read the row, found B's, and left it.
    expect(c.replace).toHaveBeenCalledTimes(1);
    expect(c.get).toHaveBeenCalledTimes(2);
    const lease = await readLease(two, 'lease-taken');
    expect(lease?.runId).toBe('B');
    expect(lease?.expiresAt).toBe(new Date(T + 121_000).toISOString());
  });
});

describe('the remembered versions', () => {
  it('are kept per store and bounded, the oldest forgotten first', async () => {
    const { one, two } = twoStores();
    const row = (i: number) => ({ entity: { partitionKey: 'q', rowKey: `r${i}` }, etag: `W/"${i}"` });
    for (let i = 0; i < 300; i++) remember(one, 'T', row(i));
    expect(recall(one, 'T', 'q', 'r0')).toBeUndefined();
    expect(recall(one, 'T', 'q', 'r299')?.etag).toBe('W/"299"');
    expect(recall(one, 'T', 'q', 'r44')?.etag).toBe('W/"44"');
    expect(recall(two, 'T', 'q', 'r299')).toBeUndefined();
    // An empty ETag (a store that returned none) replaces nothing with a guess.
    remember(one, 'T', { entity: { partitionKey: 'q', rowKey: 'r299' }, etag: '' });
    expect(recall(one, 'T', 'q', 'r299')).toBeUndefined();
  });
});
