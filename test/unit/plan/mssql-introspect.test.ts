import { describe, expect, it } from 'vitest';
import { MSSQL_INTROSPECTION, MssqlIntrospector, ctRetentionMinutes } from '../../../shared/plan/introspect/mssql.js';
import { proposeChangeDetection } from '../../../shared/plan/profile.js';
import { renderPipeline } from '../../../shared/plan/propose.js';
import { FakeMssql } from '../../support/fake-mssql.js';

/*
 * FAKE SQL Server: the T-SQL engine here has no CDC, Change Tracking or rowversion, so their
 * detection is proven by the exact statements sent and the answers SQL Server gives them.
 */
function fake() {
  return new FakeMssql((sql) => {
    if (sql === MSSQL_INTROSPECTION.tables.sql) return { rows: ['Orders', 'Customers', 'Products', 'Lines'].map((t) => ({ schema_name: 'dbo', table_name: t })) };
    if (sql === MSSQL_INTROSPECTION.sizes.sql) return { rows: [{ schema_name: 'dbo', table_name: 'Orders', row_count: 5000, bytes: 819200 }] };
    if (sql === MSSQL_INTROSPECTION.columns.sql)
      return {
        rows: [
          { schema_name: 'dbo', table_name: 'Orders', column_name: 'OrderId', data_type: 'int' },
          { schema_name: 'dbo', table_name: 'Orders', column_name: 'ModifiedAt', data_type: 'datetime2' },
          { schema_name: 'dbo', table_name: 'Customers', column_name: 'CustomerId', data_type: 'int' },
          { schema_name: 'dbo', table_name: 'Products', column_name: 'ProductId', data_type: 'int' },
          { schema_name: 'dbo', table_name: 'Products', column_name: 'RV', data_type: 'timestamp' },
          { schema_name: 'dbo', table_name: 'Lines', column_name: 'LineId', data_type: 'int' },
          { schema_name: 'dbo', table_name: 'Lines', column_name: 'UpdatedAt', data_type: 'datetime' },
        ],
      };
    if (sql === MSSQL_INTROSPECTION.indexes.sql)
      return {
        rows: ['Orders:OrderId', 'Customers:CustomerId', 'Products:ProductId', 'Lines:LineId'].map((x) => ({ schema_name: 'dbo', table_name: x.split(':')[0], is_primary: true, ord: 1, column_name: x.split(':')[1] })),
      };
    if (sql === MSSQL_INTROSPECTION.cdcTables.sql) return { rows: [{ schema_name: 'dbo', table_name: 'Orders', capture_instance: 'dbo_Orders' }] };
    if (sql === MSSQL_INTROSPECTION.cdcRetention.sql) return { rows: [{ retention: 4320 }] };
    if (sql === MSSQL_INTROSPECTION.changeTrackingTables.sql) return { rows: [{ schema_name: 'dbo', table_name: 'Customers' }] };
    if (sql === MSSQL_INTROSPECTION.changeTrackingRetention.sql) return { rows: [{ retention_period: 2, retention_period_units_desc: 'DAYS' }] };
    throw new Error(`unexpected statement: ${sql}`);
  });
}

describe('SQL Server introspection (fake SQL Server for CDC / Change Tracking / rowversion)', () => {
  it('detects CDC, Change Tracking, rowversion and an unindexed modified-at, best first, with the exact catalog SQL', async () => {
    const f = fake();
    const intro = new MssqlIntrospector(async () => f.connector(), 'CRM_SQL');
    const tables = await intro.profile();
    expect(f.sent.map((s) => s.sql)).toEqual([
      MSSQL_INTROSPECTION.tables.sql,
      MSSQL_INTROSPECTION.sizes.sql,
      MSSQL_INTROSPECTION.columns.sql,
      MSSQL_INTROSPECTION.indexes.sql,
      MSSQL_INTROSPECTION.cdcTables.sql,
      MSSQL_INTROSPECTION.cdcRetention.sql,
      MSSQL_INTROSPECTION.changeTrackingTables.sql,
      MSSQL_INTROSPECTION.changeTrackingRetention.sql,
    ]);
    expect(MSSQL_INTROSPECTION.cdcTables.sql).toBe(
      'SELECT OBJECT_SCHEMA_NAME(ct.source_object_id) AS schema_name, OBJECT_NAME(ct.source_object_id) AS table_name, ct.capture_instance AS capture_instance FROM cdc.change_tables AS ct ORDER BY ct.create_date DESC',
    );
    const by = Object.fromEntries(tables.map((t) => [t.name, t]));
    expect(by.Orders).toMatchObject({ rowCount: 5000, bytes: 819200, cdc: { captureInstance: 'dbo_Orders', retentionMinutes: 4320 } });
    expect(by.Customers!.changeTracking).toEqual({ retentionMinutes: 2880 });
    expect(by.Products!.rowversionColumn).toBe('RV');
    const modes = tables.map((t) => [t.name, proposeChangeDetection(t, 'mssql').mode]);
    expect(modes).toEqual([
      ['Orders', 'cdc'],
      ['Customers', 'changeTracking'],
      ['Products', 'rowversion'],
      ['Lines', 'full'],
    ]);
    expect(proposeChangeDetection(by.Lines!, 'mssql').warnings[0]).toMatch(/UpdatedAt looks like a modified-at column but no index leads with it/);
    const yaml = renderPipeline(by.Orders!, 'orders', 0, { kind: 'mssql', location: 'CRM_SQL' }).text;
    expect(yaml).toContain('changeDetection: { mode: cdc, captureInstance: dbo_Orders }');
    expect(yaml).toContain('cleanup retention 4320 min');
    expect(yaml).toContain('deletes: retire');
    // A rowversion window sees no hard delete: retired by reconcile --deletes (which refuses deletes: ignore).
    expect(renderPipeline(by.Products!, 'products', 1, { kind: 'mssql', location: 'CRM_SQL' }).text).toContain(
      'deletes: retire                # rowversion windows do not see hard deletes: a periodic `tidemark reconcile products --deletes` (or `run --full`) retires them',
    );
  });

  it('an engine without the CDC / CT views counts them as not enabled and says so', async () => {
    const f = new FakeMssql((sql) => {
      if (/cdc\.change_tables|change_tracking_tables|dm_db_partition_stats/.test(sql)) return { rows: [], errorAfter: { rows: 0, error: new Error("Invalid object name 'cdc.change_tables'.") } };
      if (sql === MSSQL_INTROSPECTION.tables.sql) return { rows: [{ schema_name: 'dbo', table_name: 'T' }] };
      if (sql.startsWith('SELECT COUNT_BIG(*)')) return { rows: [{ n: 3 }] };
      return { rows: [] };
    });
    const intro = new MssqlIntrospector(async () => f.connector(), 'X');
    const [t] = await intro.profile();
    expect(t).toMatchObject({ rowCount: 3, bytes: null });
    expect(t!.cdc).toBeUndefined();
    expect(intro.notes).toEqual([
      expect.stringMatching(/^sys\.dm_db_partition_stats .* could not be read/),
      expect.stringMatching(/^CDC \(cdc\.change_tables\) could not be read \(Invalid object name/),
      expect.stringMatching(/^Change Tracking \(sys\.change_tracking_tables\) could not be read/),
    ]);
    expect(f.sent.map((s) => s.sql)).toContain('SELECT COUNT_BIG(*) AS n FROM [dbo].[T]');
    expect(ctRetentionMinutes(3, 'HOURS')).toBe(180);
    expect(ctRetentionMinutes(3, 'WEEKS')).toBeNull();
  });
});
