import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureStorage } from '../../../shared/engine/context.js';
import { endInFlightRun } from '../../../shared/engine/end-run.js';
import { startRun } from '../../../shared/engine/start-run.js';
import { startAzurite, type AzuriteHandle } from '../../../shared/local/azurite.js';
import { readCheckpoint } from '../../../shared/state/checkpoints.js';
import { readLease } from '../../../shared/state/leases.js';
import { thisProcessOwner } from '../../../shared/state/lease-owner.js';
import { getRun } from '../../../shared/state/runs.js';
import { rawStorage, simProcess, tinyAccountsProject, type CallRecord } from '../../support/crash-harness.js';
import { duckQuery } from '../../support/project.js';

/**
 * `tidemark cancel` racing a merge (issue #13). The merge re-reads its run just before it
 * begins: a cancel before that applies nothing. A cancel that lands while the merge is inside
 * its transaction waits for it (the merge claim) and lets the ledger decide: committed means
 * the run is completed and the cancel says so; it is never left "cancelled, nothing applied"
 * with its rows in the warehouse. Two processes (crash-harness.ts): one merging, held at a
 * chosen call, and one cancelling.
 */
let az: AzuriteHandle;
beforeAll(async () => {
  az = await startAzurite();
}, 60_000);
afterAll(async () => az?.stop());

interface Gate {
  reached: Promise<void>;
  open(): void;
}

/** Holds the process at the first call `match` accepts until `open()`. */
function gate(match: (c: CallRecord) => boolean): Gate & { hook: (c: CallRecord) => Promise<void> } {
  let reach!: () => void;
  let release!: () => void;
  const reached = new Promise<void>((r) => (reach = r));
  const released = new Promise<void>((r) => (release = r));
  let fired = false;
  return {
    reached,
    open: () => release(),
    hook: async (c) => {
      if (fired || !match(c)) return;
      fired = true;
      reach();
      await released;
    },
  };
}

async function setup(g: ReturnType<typeof gate>) {
  await rawStorage(az.connectionString).reset();
  const dir = await tinyAccountsProject([[1, 'a'], [2, 'b']]);
  const now = () => new Date('2026-04-01T00:00:00Z');
  const merger = simProcess({ dir, connectionString: az.connectionString, now, beforeCall: g.hook });
  // Two live processes here: the merge's claim must last as in production for the cancel to see it.
  merger.ctx.stageClaimTtlMs = 120_000;
  // …and its lease names a live process (a simulated one counts as gone: its merges could not be running).
  merger.ctx.owner = thisProcessOwner();
  const canceller = simProcess({ dir, connectionString: az.connectionString, now });
  await ensureStorage(canceller.ctx);
  const run = await startRun(merger.ctx, { pipeline: 'accounts', trigger: 'cli' });
  const driving = (async () => {
    for (let i = 0; i < 20 && (await merger.host.pollOnce()) > 0; i++);
  })();
  return { dir, merger, canceller, runId: run.runId, driving };
}

async function untilStatus(runId: string, status: string): Promise<void> {
  const raw = rawStorage(az.connectionString);
  for (let i = 0; i < 300; i++) {
    if ((await getRun(raw.tables, 'accounts', runId)).status === status) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`run ${runId} never became ${status}`);
}

const ledgerOf = (dir: string) => duckQuery<{ run_id: string }>(join(dir, 'warehouse.duckdb'), 'select run_id from dw._tm_ledger').catch(() => []);

describe('cancel racing a merge', () => {
  it('cancel while the merge is inside its transaction, which then commits: the cancel waits and reports the run completed', async () => {
    const g = gate((c) => c.op === 'warehouse.statement');
    const { dir, canceller, runId, driving } = await setup(g);
    await g.reached;
    const cancelling = endInFlightRun(canceller.ctx, 'accounts', { kind: 'cancelled', reason: 'test cancel', waitMs: 60_000 });
    await untilStatus(runId, 'cancelled');
    g.open();
    const ended = await cancelling;
    await driving;
    expect(ended).toEqual({ kind: 'completed', runId, committedDuringCancel: true });
    const raw = rawStorage(az.connectionString);
    const run = await getRun(raw.tables, 'accounts', runId);
    expect(run.status).toBe('succeeded');
    expect(run.error).toBeUndefined();
    expect(await ledgerOf(dir)).toEqual([{ run_id: runId }]);
    expect((await readCheckpoint(raw.tables, 'accounts')).checkpoint.lastRunId).toBe(runId);
    expect(await readLease(raw.tables, 'accounts')).toBeUndefined();
  }, 120_000);

  it('cancel before the merge begins: the merge applies nothing and the cancel reports cancelled', async () => {
    // Held after the merge delivery took its claim, before it re-reads the run.
    const g = gate((c) => c.op === 'blob.getText' && c.target.startsWith('changes/'));
    const { dir, canceller, runId, driving } = await setup(g);
    await g.reached;
    const cancelling = endInFlightRun(canceller.ctx, 'accounts', { kind: 'cancelled', reason: 'test cancel', waitMs: 60_000 });
    await untilStatus(runId, 'cancelled');
    g.open();
    const ended = await cancelling;
    await driving;
    expect(ended).toEqual({ kind: 'cancelled', runId });
    const raw = rawStorage(az.connectionString);
    expect((await getRun(raw.tables, 'accounts', runId)).status).toBe('cancelled');
    expect(await ledgerOf(dir)).toEqual([]);
    expect((await readCheckpoint(raw.tables, 'accounts')).checkpoint.lastRunId).toBeNull();
  }, 120_000);

  it('a cancel that stops waiting: the merge that commits afterwards completes its own run', async () => {
    const g = gate((c) => c.op === 'warehouse.statement');
    const { dir, canceller, runId, driving } = await setup(g);
    await g.reached;
    const ended = await endInFlightRun(canceller.ctx, 'accounts', { kind: 'cancelled', reason: 'test cancel', waitMs: 300 });
    expect(ended).toEqual({ kind: 'cancelled', runId, mergeStillRunning: true });
    g.open();
    await driving;
    const raw = rawStorage(az.connectionString);
    expect((await getRun(raw.tables, 'accounts', runId)).status).toBe('succeeded');
    expect(await ledgerOf(dir)).toEqual([{ run_id: runId }]);
    expect((await readCheckpoint(raw.tables, 'accounts')).checkpoint.lastRunId).toBe(runId);
  }, 120_000);
});
