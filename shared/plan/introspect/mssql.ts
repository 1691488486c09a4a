import type { MssqlConnector } from '../../extract/mssql/driver.js';
import type { MssqlStatement } from '../../extract/mssql/plan.js';
import { streamRows } from '../../extract/mssql/source.js';
import { errorMessage } from '../../errors.js';
import type { TableProfile } from '../profile.js';
import { selectTables, type Introspector } from './port.js';

type Row = Record<string, unknown>;
const st = (sql: string): MssqlStatement => ({ sql, parameters: [] });

/**
 * Catalog queries of the SQL Server introspector. Sizes and row counts come from
 * sys.dm_db_partition_stats (heap or clustered index rows; pages of every index), not from a
 * count, so a large table costs nothing to profile.
 */
export const MSSQL_INTROSPECTION = {
  /** INFORMATION_SCHEMA keeps names as declared (Babelfish's sys.* views lower-case them). */
  tables: st("SELECT TABLE_SCHEMA AS schema_name, TABLE_NAME AS table_name FROM INFORMATION_SCHEMA.TABLES WHERE TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_SCHEMA, TABLE_NAME"),
  sizes: st(
    'SELECT s.name AS schema_name, t.name AS table_name, ' +
      'CAST((SELECT SUM(ps.row_count) FROM sys.dm_db_partition_stats AS ps WHERE ps.object_id = t.object_id AND ps.index_id IN (0, 1)) AS bigint) AS row_count, ' +
      'CAST((SELECT SUM(ps.used_page_count) FROM sys.dm_db_partition_stats AS ps WHERE ps.object_id = t.object_id) AS bigint) * 8192 AS bytes ' +
      'FROM sys.tables AS t JOIN sys.schemas AS s ON s.schema_id = t.schema_id WHERE t.is_ms_shipped = 0',
  ),
  columns: st(
    'SELECT TABLE_SCHEMA AS schema_name, TABLE_NAME AS table_name, COLUMN_NAME AS column_name, DATA_TYPE AS data_type ' +
      'FROM INFORMATION_SCHEMA.COLUMNS ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION',
  ),
  indexes: st(
    'SELECT s.name AS schema_name, t.name AS table_name, i.is_primary_key AS is_primary, ic.key_ordinal AS ord, c.name AS column_name ' +
      'FROM sys.indexes AS i JOIN sys.index_columns AS ic ON ic.object_id = i.object_id AND ic.index_id = i.index_id ' +
      'JOIN sys.columns AS c ON c.object_id = ic.object_id AND c.column_id = ic.column_id ' +
      'JOIN sys.tables AS t ON t.object_id = i.object_id JOIN sys.schemas AS s ON s.schema_id = t.schema_id ' +
      'WHERE t.is_ms_shipped = 0 AND ic.key_ordinal > 0 ORDER BY s.name, t.name, i.index_id, ic.key_ordinal',
  ),
  /** Fallback where the engine has no sys.dm_db_partition_stats (Babelfish). */
  count: (schema: string, table: string): MssqlStatement => st(`SELECT COUNT_BIG(*) AS n FROM ${q(schema)}.${q(table)}`),
  cdcTables: st(
    'SELECT OBJECT_SCHEMA_NAME(ct.source_object_id) AS schema_name, OBJECT_NAME(ct.source_object_id) AS table_name, ct.capture_instance AS capture_instance ' +
      'FROM cdc.change_tables AS ct ORDER BY ct.create_date DESC',
  ),
  /** Minutes the cleanup job keeps changes (msdb.dbo.cdc_jobs.retention). */
  cdcRetention: st("SELECT retention FROM msdb.dbo.cdc_jobs WHERE database_id = DB_ID() AND job_type = N'cleanup'"),
  changeTrackingTables: st('SELECT OBJECT_SCHEMA_NAME(object_id) AS schema_name, OBJECT_NAME(object_id) AS table_name FROM sys.change_tracking_tables'),
  changeTrackingRetention: st('SELECT retention_period, retention_period_units_desc FROM sys.change_tracking_databases WHERE database_id = DB_ID()'),
} as const;

function q(s: string): string {
  return `[${s.replace(/]/g, ']]')}]`;
}

const TEMPORAL = new Set(['datetime', 'datetime2', 'datetimeoffset', 'smalldatetime']);

/** Retention in minutes from sys.change_tracking_databases' period and unit. */
export function ctRetentionMinutes(period: unknown, unit: unknown): number | null {
  const n = Number(period);
  if (!Number.isFinite(n)) return null;
  const per: Record<string, number> = { MINUTES: 1, HOURS: 60, DAYS: 1440 };
  const f = per[String(unit).toUpperCase()];
  return f === undefined ? null : n * f;
}

async function collect(conn: MssqlConnector, stmt: MssqlStatement): Promise<Row[]> {
  const rows: Row[] = [];
  await streamRows(conn, stmt, (r) => (rows.push(r), false), async () => undefined);
  return rows;
}

/**
 * SQL Server (or Azure SQL). CDC and Change Tracking are asked of their catalog views; an
 * engine without them (the views do not exist) counts as "not enabled" and says so in notes.
 */
export class MssqlIntrospector implements Introspector {
  readonly kind = 'mssql' as const;
  readonly notes: string[] = [];
  constructor(
    private readonly connect: () => Promise<MssqlConnector>,
    private readonly setting: string,
  ) {}

  private async optional(what: string, stmt: MssqlStatement, conn: MssqlConnector): Promise<Row[] | undefined> {
    try {
      return await collect(conn, stmt);
    } catch (err) {
      this.notes.push(`${what} could not be read (${errorMessage(err).split('\n')[0]}); treated as not enabled`);
      return undefined;
    }
  }

  async profile(tables?: readonly string[]): Promise<TableProfile[]> {
    let conn: MssqlConnector;
    try {
      conn = await this.connect();
    } catch (cause) {
      throw new Error(`cannot connect to the SQL Server database in setting ${this.setting}: ${errorMessage(cause)}`, { cause });
    }
    try {
      const all = await collect(conn, MSSQL_INTROSPECTION.tables);
      const sizes = await this.optional('sys.dm_db_partition_stats (row counts and sizes; counting rows instead)', MSSQL_INTROSPECTION.sizes, conn);
      const counted = sizes === undefined;
      const chosen = selectTables(
        all.map((r) => ({ schema: String(r.schema_name), name: String(r.table_name) })),
        tables,
        `the database of ${this.setting}`,
      );
      const cols = await collect(conn, MSSQL_INTROSPECTION.columns);
      const idx = await collect(conn, MSSQL_INTROSPECTION.indexes);
      const cdc = (await this.optional('CDC (cdc.change_tables)', MSSQL_INTROSPECTION.cdcTables, conn)) ?? [];
      const cdcRetention = cdc.length ? await this.optional('CDC retention (msdb.dbo.cdc_jobs)', MSSQL_INTROSPECTION.cdcRetention, conn) : undefined;
      const ct = (await this.optional('Change Tracking (sys.change_tracking_tables)', MSSQL_INTROSPECTION.changeTrackingTables, conn)) ?? [];
      const ctRet = ct.length ? await this.optional('Change Tracking retention', MSSQL_INTROSPECTION.changeTrackingRetention, conn) : undefined;
      const out: TableProfile[] = [];
      for (const t of chosen) {
        // Babelfish lower-cases catalog names; compare case-insensitively like SQL Server's default collation.
        const mine = (r: Row) => String(r.schema_name).toLowerCase() === t.schema.toLowerCase() && String(r.table_name).toLowerCase() === t.name.toLowerCase();
        const tCols = cols.filter(mine).map((c) => ({ name: String(c.column_name), type: String(c.data_type).toLowerCase() }));
        const declared = (n: unknown) => tCols.find((c) => c.name.toLowerCase() === String(n).toLowerCase())?.name ?? String(n);
        const size = sizes?.find(mine);
        const tIdx = idx.filter(mine);
        const rowversion = tCols.find((c) => c.type === 'timestamp' || c.type === 'rowversion');
        const cdcRow = cdc.find(mine);
        const rows = counted ? Number((await collect(conn, MSSQL_INTROSPECTION.count(t.schema, t.name)))[0]?.n ?? 0) : Number(size?.row_count ?? 0);
        const ctRow = ctRet?.[0];
        out.push({
          schema: t.schema,
          name: t.name,
          columns: tCols.map((c) => ({ name: c.name, type: c.type, temporal: TEMPORAL.has(c.type) })),
          primaryKey: tIdx.filter((i) => i.is_primary === true || i.is_primary === 1).map((i) => declared(i.column_name)),
          rowCount: rows,
          bytes: counted ? null : Number(size?.bytes ?? 0),
          indexedColumns: [...new Set(tIdx.filter((i) => Number(i.ord) === 1).map((i) => declared(i.column_name)))],
          ...(rowversion ? { rowversionColumn: rowversion.name } : {}),
          ...(cdcRow
            ? { cdc: { captureInstance: String(cdcRow.capture_instance), retentionMinutes: cdcRetention?.[0] ? Number(cdcRetention[0].retention) : null } }
            : {}),
          ...(ct.some(mine) ? { changeTracking: { retentionMinutes: ctRow ? ctRetentionMinutes(ctRow.retention_period, ctRow.retention_period_units_desc) : null } } : {}),
        });
      }
      return out;
    } finally {
      await conn.close();
    }
  }

  async close(): Promise<void> {}
}
