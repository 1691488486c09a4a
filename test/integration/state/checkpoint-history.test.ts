import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAzurite, type AzuriteHandle } from '../../../shared/local/azurite.js';
import type { AzureTableStore } from '../../../shared/state/azure-tables.js';
import { HISTORY_LIMIT, commitCheckpoint, readCheckpoint, rewindCheckpoint } from '../../../shared/state/checkpoints.js';
import { nextRunSeq } from '../../../shared/state/run-sequence.js';
import { TABLES } from '../../../shared/storage/layout.js';
import { storageOf } from '../../support/storage-clients.js';

/**
 * No entity grows with history (issue: `historyJson` overflowed Table Storage's 64 KiB
 * property limit at commit 196 of a 40-character pipeline name, and from then on every merge
 * committed while the checkpoint never moved). On Azurite, which enforces the limit: the state
 * layer directly (not 1 000 full runs), 1 000 commits of a 63-character pipeline name.
 */
let az: AzuriteHandle;
let tables: AzureTableStore;
beforeAll(async () => {
  az = await startAzurite();
  tables = storageOf(az.connectionString).tables;
  await tables.ensureTables(Object.values(TABLES));
});
afterAll(async () => az?.stop());

const runId = (i: number) => `20260101T${String(Math.floor(i / 3600) % 24).padStart(2, '0')}${String(Math.floor(i / 60) % 60).padStart(2, '0')}${String(i % 60).padStart(2, '0')}Z-${String(i).padStart(4, '0')}`;

describe('checkpoint history', () => {
  const pipeline = 'p'.repeat(32) + '_with_a_name_63_characters_long';

  it('takes 1 000 commits of a 63-character pipeline name; each entity stays small; rollback still rewinds', async () => {
    expect(pipeline).toHaveLength(63);
    const t0 = Date.now();
    let base: string | null = null;
    for (let i = 1; i <= 1000; i++) {
      expect(await nextRunSeq(tables, pipeline)).toBe(i);
      const id = runId(i);
      const snapshot = `state/${pipeline}/${id}/_snapshot.json`;
      expect(await commitCheckpoint(tables, { pipeline, runId: id, baseRunId: base, watermark: `2026-01-01T00:00:${i}Z`, snapshot, now: new Date() })).toBe('committed');
      base = id;
    }
    const { checkpoint } = await readCheckpoint(tables, pipeline);
    expect(checkpoint.lastRunId).toBe(runId(1000));
    expect(checkpoint.position).toBe(1000);
    expect(checkpoint.history).toHaveLength(HISTORY_LIMIT);
    expect(checkpoint.history.map((h) => h.runId)).toEqual(Array.from({ length: HISTORY_LIMIT }, (_, k) => runId(1000 - HISTORY_LIMIT + 1 + k)));
    const rows = await tables.list(TABLES.checkpoints, pipeline);
    // The head, the run-sequence row and at most HISTORY_LIMIT history rows; none holds a list.
    expect(rows.length).toBeLessThanOrEqual(HISTORY_LIMIT + 2);
    for (const r of rows) expect(Buffer.byteLength(JSON.stringify(r))).toBeLessThan(1024);
    // The 1 001st commit still moves the checkpoint; rollback rewinds into the kept history.
    expect(await commitCheckpoint(tables, { pipeline, runId: runId(1001), baseRunId: base, watermark: null, snapshot: 's', now: new Date() })).toBe('committed');
    const rewound = await rewindCheckpoint(tables, pipeline, runId(990), new Date());
    expect(rewound.lastRunId).toBe(runId(990));
    expect((await readCheckpoint(tables, pipeline)).checkpoint.history.at(-1)!.runId).toBe(runId(990));
    expect(await commitCheckpoint(tables, { pipeline, runId: runId(1002), baseRunId: runId(990), watermark: null, snapshot: 's2', now: new Date() })).toBe('committed');
    const after = (await readCheckpoint(tables, pipeline)).checkpoint;
    expect(after.history.slice(-2).map((h) => h.runId)).toEqual([runId(990), runId(1002)]);
    // The rewind dropped 991…1001; what is older than the kept 200 was already gone.
    expect(after.history).toHaveLength(HISTORY_LIMIT - 10);
    console.log(`1 000 commits of a 63-character pipeline name on Azurite in ${Date.now() - t0} ms`);
  }, 240_000);

  it('a checkpoint written with its history in one property becomes rows on its next commit', async () => {
    const legacy = 'legacy';
    const history = [1, 2, 3].map((i) => ({ runId: runId(i), watermark: `w${i}`, snapshot: `s${i}` }));
    await tables.insert(TABLES.checkpoints, { partitionKey: legacy, rowKey: 'checkpoint', pipeline: legacy, watermark: 'w3', snapshot: 's3', lastRunId: runId(3), committedAt: '', history });
    expect((await readCheckpoint(tables, legacy)).checkpoint.history).toEqual(history);
    await commitCheckpoint(tables, { pipeline: legacy, runId: runId(4), baseRunId: runId(3), watermark: 'w4', snapshot: 's4', now: new Date() });
    const { checkpoint } = await readCheckpoint(tables, legacy);
    expect(checkpoint.history).toEqual([...history, { runId: runId(4), watermark: 'w4', snapshot: 's4' }]);
    const head = await tables.get(TABLES.checkpoints, legacy, 'checkpoint');
    expect(head!.entity.history).toBeUndefined();
  });
});
