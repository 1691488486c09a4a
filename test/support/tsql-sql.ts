import sql from 'mssql';
import { openConnectionsFor } from './tsql-pool.js';

/**
 * Runs one T-SQL batch and returns the first result set: on the file's warm connections when it
 * opened a `TsqlConnections` for this database (tsql-pool.ts), otherwise on a connection of its own.
 */
export async function tsqlQuery(url: string, text: string, params: readonly unknown[] = []): Promise<Array<Record<string, unknown>>> {
  const warm = openConnectionsFor(url);
  if (warm) return warm.query(text, params);
  const pool = await new sql.ConnectionPool(sql.ConnectionPool.parseConnectionString(url)).connect();
  try {
    const req = pool.request();
    params.forEach((v, i) => req.input(`p${i + 1}`, v));
    return ((await req.query(text)).recordset ?? []) as Array<Record<string, unknown>>;
  } finally {
    await pool.close();
  }
}
