import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runOnce, type LocalStack } from '../../shared/local/stack.js';
import type { AzuriteHandle } from '../../shared/local/azurite.js';
import { previewReconcile } from '../../shared/engine/reconcile.js';
import { rollbackPipeline } from '../../shared/rollback/undo-runs.js';
import { CONTAINERS, layout } from '../../shared/storage/layout.js';
import { duckQuery } from '../support/project.js';
import type { SalesforceDouble } from '../support/salesforce-server.js';
import { openSalesforceStack, type SalesforceStack } from '../support/salesforce-stack.js';

// Salesforce cannot run here: test/support/salesforce-server.ts is a test double of the
// documented OAuth, REST query / queryAll and Bulk API 2.0 endpoints; Azurite and the DuckDB
// warehouse are the real ones. Key-only reads ask for Id alone.
const PIPELINE = `name: sf_keys
source:
  connection: CRM
  object: Account
  fields: [Id, Name, SystemModstamp]
  changeDetection: { mode: timestamp }
  bulkThreshold: 100
  deletesGap: keys
key: [Id]
target:
  warehouse: WH
  table: dw.sf_keys
validation:
  rowCount: exact
retry: { attempts: 3, backoff: exponential, initialDelay: 50ms }
`;
const ROWS = 300;

describe('salesforce key-only reads (Salesforce test double)', () => {
  let h: SalesforceStack | undefined;
  let sf: SalesforceDouble;
  let az: AzuriteHandle;
  let stack: LocalStack;
  let dir: string;

  beforeAll(async () => {
    h = await openSalesforceStack(ROWS, { sf_keys: PIPELINE });
    ({ sf, az, stack, dir } = h);
  });
  afterAll(async () => {
    await h?.close();
  });

  const currentIds = async () =>
    (await duckQuery<{ Id: string }>(join(dir, 'warehouse.duckdb'), 'select Id from dw.sf_keys where _tm_is_current and not _tm_is_deleted order by Id')).map((r) => r.Id);

  it('a recycle-bin gap under deletesGap: keys reads the window plus every Id, not every row; reconcile --deletes finds purged deletes and rollback undoes it', async () => {
    const first = await runOnce(stack, { pipeline: 'sf_keys' });
    expect(first.status, JSON.stringify(first)).toBe('succeeded');
    expect(first.counts.inserted).toBe(ROWS);

    // A delete purged before any run saw it, and an update after: the gap run reads 1 changed
    // row through REST and the 299 live Ids through Bulk 2.0 (above bulkThreshold).
    sf.remove([100], Date.parse('2026-02-05T00:00:00Z'));
    sf.purge(Date.parse('2026-02-10T00:00:00Z'));
    sf.update([200], Date.parse('2026-02-15T00:00:00Z'), { Name: 'late' });
    const before = sf.requests.length;
    const gap = await runOnce(stack, { pipeline: 'sf_keys' });
    expect(gap.status, JSON.stringify(gap)).toBe('succeeded');
    expect(gap.counts).toMatchObject({ extracted: 1, updated: 1, deleted: 1, inserted: 0 });
    expect(gap.validations.every((v) => v.passed)).toBe(true);
    const raw = JSON.parse((await stack.ctx.blobs.getText(CONTAINERS.raw, layout.rawManifest('sf_keys', gap.runId)))!) as {
      read: { kind: string };
      keys?: Array<{ rows: number }>;
      warnings?: Array<{ event: string; message: string }>;
    };
    expect(raw.read.kind).toBe('window');
    expect(raw.keys?.reduce((a, k) => a + k.rows, 0)).toBe(ROWS - 1);
    expect(raw.warnings?.[0]).toMatchObject({ event: 'SnapshotGap' });
    expect(raw.warnings?.[0]?.message).toMatch(/window was read with every live Id beside it \(deletesGap: keys\)/);
    const asked = sf.requests.slice(before).map((r) => `${r.method} ${r.path}`);
    expect(asked.filter((r) => r.startsWith('POST') && r.endsWith('/jobs/query')).length).toBe(1);
    expect(asked.some((r) => r.includes('/queryAll?'))).toBe(true);
    expect(await currentIds()).toHaveLength(ROWS - 1);
    expect(await currentIds()).not.toContain(sf.idOf(100));

    // Two more deletes: one purged, one still in the recycle bin. `query` (not queryAll)
    // returns neither, so the key-only pass deletes both.
    sf.remove([150], Date.parse('2026-02-16T00:00:00Z'));
    sf.remove([151], Date.parse('2026-02-20T00:00:00Z'));
    sf.purge(Date.parse('2026-02-18T00:00:00Z'));
    const preview = await previewReconcile(stack.ctx, { pipeline: 'sf_keys', deletes: true, allowEmpty: false });
    expect(preview.report.deletes).toEqual({ sourceKeys: ROWS - 3, nullKeys: 0, absent: 2, sample: [{ Id: sf.idOf(150) }, { Id: sf.idOf(151) }] });
    expect(preview.report.snapshot).toMatchObject({ onlyInSnapshot: 0, onlyInWarehouse: 0, hashDiffers: 0 });
    const rec = await runOnce(stack, { pipeline: 'sf_keys', mode: 'reconcile', reconcile: { deletes: true, allowEmpty: false } });
    expect(rec.status, JSON.stringify(rec)).toBe('succeeded');
    expect(rec.counts.deleted).toBe(2);
    expect(await currentIds()).toHaveLength(ROWS - 3);

    const rb = await rollbackPipeline(stack.ctx, { pipeline: 'sf_keys', toRunId: gap.runId, by: 'test' });
    expect(rb.undone).toEqual([rec.runId]);
    expect(await currentIds()).toHaveLength(ROWS - 1);
  }, 300_000);
});
