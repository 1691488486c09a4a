import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runOnce, type LocalStack } from '../../shared/local/stack.js';
import type { AzuriteHandle } from '../../shared/local/azurite.js';
import { dryRun } from '../../shared/engine/dry-run.js';
import { readCheckpoint } from '../../shared/state/checkpoints.js';
import { CONTAINERS, layout } from '../../shared/storage/layout.js';
import { duckQuery } from '../support/project.js';
import { storageState } from '../support/storage-state.js';
import type { SalesforceDouble } from '../support/salesforce-server.js';
import { openSalesforceStack, type SalesforceStack } from '../support/salesforce-stack.js';

// Salesforce cannot run here: the chain reads test/support/salesforce-server.ts, a test double
// of the documented OAuth, REST query / queryAll and Bulk API 2.0 endpoints; Azurite and the
// DuckDB warehouse are the real ones.
const PIPELINE = `name: sf_accounts
source:
  connection: CRM
  object: Account
  fields: [Id, Name, AnnualRevenue, NumberOfEmployees, SystemModstamp]
  changeDetection: { mode: timestamp }
  partRows: 1000
key: [Id]
target:
  warehouse: WH
  table: dw.sf_accounts
validation:
  rowCount: exact
retry: { attempts: 4, backoff: exponential, initialDelay: 50ms }
`;
const ROWS = 3000;

describe('salesforce source end to end on the local stack (Salesforce test double)', () => {
  let h: SalesforceStack | undefined;
  let sf: SalesforceDouble;
  let az: AzuriteHandle;
  let stack: LocalStack;
  let dir: string;

  beforeAll(async () => {
    h = await openSalesforceStack(ROWS, { sf_accounts: PIPELINE });
    ({ sf, az, stack, dir } = h);
  });
  afterAll(async () => {
    await h?.close();
  });

  const current = () =>
    duckQuery<{ Id: string; Name: string; cur: boolean }>(join(dir, 'warehouse.duckdb'), 'select Id, Name, _tm_is_current cur from dw.sf_accounts order by Id, _tm_valid_from');

  it('first load through Bulk 2.0, increments with updates and deletes, a limit-exceeded answer retried, a purged-deletes gap', async () => {
    const first = await runOnce(stack, { pipeline: 'sf_accounts' });
    expect(first.status, JSON.stringify(first)).toBe('succeeded');
    expect(first.counts).toMatchObject({ extracted: ROWS, inserted: ROWS });
    expect(first.validations.every((v) => v.passed)).toBe(true);
    expect(sf.requests.some((r) => r.method === 'POST' && r.path.endsWith('/jobs/query'))).toBe(true);
    expect((await readCheckpoint(stack.ctx.tables, 'sf_accounts')).checkpoint.watermark).toBe('2026-01-01T00:49:59.000Z');

    // Run 2: 10 updated, 2 deleted (queryAll, IsDeleted = true), and a throttled answer first.
    const at = Date.parse('2026-02-01T00:00:00Z');
    sf.update([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], at, { Name: 'renamed' });
    sf.remove([40, 41], at + 1000);
    // A dry run first: it reads the same window through the same client and says what the run
    // will apply, writing nothing (storage and the warehouse unchanged).
    const storageBefore = await storageState(az.connectionString);
    const tableBefore = JSON.stringify(await current());
    const report = await dryRun(stack.ctx, { pipeline: 'sf_accounts' });
    expect(report).toMatchObject({ mode: 'incremental', estimatedRows: 12, changes: { updated: 10, deleted: 2, inserted: 0 } });
    expect(await storageState(az.connectionString)).toBe(storageBefore);
    expect(JSON.stringify(await current())).toBe(tableBefore);
    sf.failNext('limit', /GET .*\/queryAll$/);
    const before = sf.requests.length;
    const inc = await runOnce(stack, { pipeline: 'sf_accounts' });
    expect(inc.status, JSON.stringify(inc)).toBe('succeeded');
    // 10 updated and 2 delete rows extracted.
    expect(inc.counts).toMatchObject({ extracted: 12, updated: 10, deleted: 2, inserted: 0 });
    expect(inc.validations.every((v) => v.passed)).toBe(true);
    expect(sf.requests.slice(before).filter((r) => r.path.includes('/queryAll?')).length).toBeGreaterThanOrEqual(3);
    expect(sf.requests.slice(before).some((r) => r.path.includes('/jobs/query'))).toBe(false);
    const rows = await current();
    expect(rows.filter((r) => r.Id === sf.idOf(40)).map((r) => r.cur)).toEqual([false]);
    expect(rows.filter((r) => r.Id === sf.idOf(1)).map((r) => [r.Name, r.cur])).toEqual([['Account 1', false], ['renamed', true]]);

    // Run 3: a delete the recycle bin purged before anyone read it; the gap is detected and a
    // full re-read retires the row instead of keeping it current for ever.
    sf.remove([100], Date.parse('2026-02-05T00:00:00Z'));
    sf.purge(Date.parse('2026-02-10T00:00:00Z'));
    sf.update([200], Date.parse('2026-02-15T00:00:00Z'), { Name: 'late' });
    const gap = await runOnce(stack, { pipeline: 'sf_accounts' });
    expect(gap.status, JSON.stringify(gap)).toBe('succeeded');
    expect(gap.counts).toMatchObject({ extracted: ROWS - 3, updated: 1, deleted: 1, inserted: 0 });
    const manifest = JSON.parse((await stack.ctx.blobs.getText(CONTAINERS.raw, layout.rawManifest('sf_accounts', gap.runId)))!) as { warnings?: Array<{ event: string; message: string }> };
    expect(manifest.warnings?.[0]).toMatchObject({ event: 'SnapshotGap' });
    expect(manifest.warnings?.[0]?.message).toMatch(/deletes in between were purged from the recycle bin unseen/);
    const after = await current();
    expect(after.filter((r) => r.Id === sf.idOf(100)).map((r) => r.cur)).toEqual([false]);
    expect(after.filter((r) => r.cur).length).toBe(ROWS - 3);
    expect((await readCheckpoint(stack.ctx.tables, 'sf_accounts')).checkpoint.watermark).toBe('2026-02-15T00:00:00.000Z');
  }, 300_000);
});
