import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dryRun } from '../../shared/engine/dry-run.js';
import { MssqlSource } from '../../shared/extract/mssql/source.js';
import { openLocalStack, runOnce, type LocalStack } from '../../shared/local/stack.js';
import type { AzuriteHandle } from '../../shared/local/azurite.js';
import { readCheckpoint } from '../../shared/state/checkpoints.js';
import { CONTAINERS, layout } from '../../shared/storage/layout.js';
import { withAzurite } from '../support/azurite.js';
import { FakeMssql, type FakeAnswer } from '../support/fake-mssql.js';
import { duckQuery, makeProject } from '../support/project.js';

/*
 * CDC through the whole chain (Azurite, transform, merge, checkpoints) with a FAKE SQL Server
 * (test/support/fake-mssql.ts; none runs here). The fake plays a table with a CDC capture
 * instance: min/max LSN, the current rows, and the net changes it reports for a window.
 */
const TIDEMARK = `storage: AzureWebJobsStorage
connections:
  CRM: { kind: mssql, setting: CRM_SQL_CONNECTION }
warehouses:
  WH: { kind: duckdb, path: warehouse.duckdb }
duckdb: { memoryLimit: 512MB, threads: 1 }
`;
const PIPELINE = `name: accounts
source:
  connection: CRM
  table: dbo.Accounts
  changeDetection: { mode: cdc }
key: [AccountId]
target: { warehouse: WH, table: dw.dim_account, deletes: retire }
validation: { rowCount: exact, checksumColumns: [AccountId, Email] }
retry: { attempts: 1, initialDelay: 100ms }
`;

interface Db {
  minLsn: string;
  maxLsn: string;
  rows: Map<number, string>;
  changes: Array<{ id: number; email: string; op: 'insert' | 'update' | 'delete' }>;
}

describe('mssql cdc through the local stack (fake SQL Server)', () => {
  let az: AzuriteHandle;
  let stack: LocalStack;
  let dir: string;
  const clock = { t: Date.parse('2026-03-01T00:00:00Z') };
  const db: Db = { minLsn: '0x00000001000000000001', maxLsn: '0x00000010000000000001', rows: new Map(), changes: [] };
  const fake = new FakeMssql((sql, params): FakeAnswer => {
    if (sql.startsWith('EXEC sys.sp_describe_first_result_set')) {
      return { rows: [{ is_hidden: false, name: 'AccountId', system_type_name: 'int' }, { is_hidden: false, name: 'Email', system_type_name: 'nvarchar(200)' }] };
    }
    // The source reads the result set's own column names (no rows).
    if (sql.startsWith('SELECT TOP 0 * FROM [dbo].[Accounts]')) return { rows: [] };
    if (sql.includes('AS max_lsn')) return { rows: [{ min_lsn: db.minLsn, max_lsn: db.maxLsn }] };
    if (sql.includes('FROM cdc.change_tables')) {
      return { rows: ['AccountId', 'Email'].map((c) => ({ capture_instance: 'dbo_Accounts', start_lsn: '0x00000001000000000001', created: '2026-01-01T00:00:00', column_name: c })) };
    }
    if (sql.includes('fn_cdc_get_net_changes_dbo_Accounts')) {
      expect(params.to).toBe(db.maxLsn);
      return { rows: db.changes.map((c) => ({ AccountId: String(c.id), Email: c.email, _tm_source_op: c.op })) };
    }
    if (sql.includes('FROM [dbo].[Accounts] AS _tm_src')) return { rows: [...db.rows].map(([id, email]) => ({ AccountId: String(id), Email: email })) };
    throw new Error(`fake SQL Server: unexpected statement ${sql}`);
  });

  beforeAll(async () => {
    az = await withAzurite();
    dir = makeProject({ tidemark: TIDEMARK, pipelines: { accounts: PIPELINE } });
    stack = await openLocalStack({
      projectDir: dir,
      connectionString: az.connectionString,
      now: () => new Date(clock.t),
      sourceFor: (ctx, _conn, p) => new MssqlSource(async () => fake.connector(), p, ctx.duck),
    });
  });
  afterAll(async () => {
    await stack?.close();
    await az?.stop();
  });

  const current = () =>
    duckQuery<{ id: number; email: string }>(join(dir, 'warehouse.duckdb'), 'select AccountId id, Email email from dw.dim_account where _tm_is_current order by 1');

  it('snapshot, then net changes incl. deletes, then a cleanup gap answered by a re-snapshot', async () => {
    for (let i = 1; i <= 5; i++) db.rows.set(i, `u${i}@x.com`);
    const first = await runOnce(stack, { pipeline: 'accounts' });
    expect(first.status, JSON.stringify(first)).toBe('succeeded');
    expect(first.counts).toMatchObject({ extracted: 5, inserted: 5 });
    expect((await readCheckpoint(stack.ctx.tables, 'accounts')).checkpoint.watermark).toBe('0x00000010000000000001');

    // Changes between LSNs: 2 updated, 3 deleted, 6 inserted.
    db.rows.set(2, 'new2@x.com');
    db.rows.delete(3);
    db.rows.set(6, 'u6@x.com');
    db.changes = [
      { id: 2, email: 'new2@x.com', op: 'update' },
      { id: 3, email: 'u3@x.com', op: 'delete' },
      { id: 6, email: 'u6@x.com', op: 'insert' },
    ];
    db.maxLsn = '0x00000020000000000001';
    clock.t += 3_600_000;
    // The dry run shows the LSN window and what the net changes would apply, and moves nothing.
    const dry = await dryRun(stack.ctx, { pipeline: 'accounts' });
    expect(dry.window).toMatchObject({ mode: 'cdc', from: '0x00000010000000000001', to: '0x00000020000000000001', fullRead: false });
    expect(dry.source.sql).toContain('fn_cdc_get_net_changes_dbo_Accounts');
    expect(dry.source.parameters).toEqual([
      { name: 'from', value: '0x00000010000000000001' },
      { name: 'to', value: '0x00000020000000000001' },
    ]);
    expect(dry).toMatchObject({ estimatedRows: 3, changes: { inserted: 1, updated: 1, deleted: 1, unchanged: 0 } });
    expect((await readCheckpoint(stack.ctx.tables, 'accounts')).checkpoint.watermark).toBe('0x00000010000000000001');
    const second = await runOnce(stack, { pipeline: 'accounts' });
    expect(second.status, JSON.stringify(second)).toBe('succeeded');
    expect(second.counts).toMatchObject({ extracted: 3, inserted: 1, updated: 1, deleted: 1 });
    expect(await current()).toEqual([1, 2, 4, 5, 6].map((id) => ({ id, email: id === 2 ? 'new2@x.com' : `u${id}@x.com` })));
    const cdcRead = fake.sent.find((s) => s.sql.includes('fn_cdc_get_net_changes'))!;
    expect(cdcRead.parameters).toEqual({ from: '0x00000010000000000001', to: '0x00000020000000000001' });
    expect((await readCheckpoint(stack.ctx.tables, 'accounts')).checkpoint.watermark).toBe('0x00000020000000000001');

    // Nothing new: the checkpoint stays.
    clock.t += 3_600_000;
    const idle = await runOnce(stack, { pipeline: 'accounts' });
    expect(idle.status).toBe('succeeded');
    expect(idle.counts).toMatchObject({ extracted: 0, inserted: 0, updated: 0, deleted: 0 });
    expect((await readCheckpoint(stack.ctx.tables, 'accounts')).checkpoint.watermark).toBe('0x00000020000000000001');

    // The cleanup job ran past our LSN while 4 was deleted and 7 inserted: the changes are
    // gone, so the run re-snapshots, finds 4 absent, and records the gap.
    db.rows.delete(4);
    db.rows.set(7, 'u7@x.com');
    db.minLsn = '0x00000030000000000001';
    db.maxLsn = '0x00000040000000000001';
    db.changes = [];
    const before = fake.sent.length;
    clock.t += 3_600_000;
    // A dry run already says the changes are gone: a re-snapshot, with its warning.
    const dryGap = await dryRun(stack.ctx, { pipeline: 'accounts' });
    expect(dryGap).toMatchObject({ window: { fullRead: true }, estimatedRows: 5, changes: { inserted: 1, deleted: 1, unchanged: 4 } });
    expect(dryGap.warnings).toEqual([expect.stringContaining('saved LSN 0x00000020000000000001 is older than')]);
    const gap = await runOnce(stack, { pipeline: 'accounts' });
    expect(gap.status, JSON.stringify(gap)).toBe('succeeded');
    expect(gap.counts).toMatchObject({ extracted: 5, inserted: 1, deleted: 1, unchanged: 4 });
    expect(fake.sent.slice(before).some((s) => s.sql.includes('fn_cdc_get_net_changes'))).toBe(false);
    expect(await current()).toEqual([1, 2, 5, 6, 7].map((id) => ({ id, email: id === 2 ? 'new2@x.com' : `u${id}@x.com` })));
    const manifest = JSON.parse((await stack.ctx.blobs.getText(CONTAINERS.raw, layout.rawManifest('accounts', gap.runId)))!) as { warnings?: Array<{ event: string; message: string }> };
    expect(manifest.warnings).toEqual([{ event: 'SnapshotGap', message: expect.stringContaining('saved LSN 0x00000020000000000001 is older than') }]);
    expect((await readCheckpoint(stack.ctx.tables, 'accounts')).checkpoint.watermark).toBe('0x00000040000000000001');
  });
});
