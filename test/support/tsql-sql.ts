import sql from 'mssql';

/** Runs one T-SQL batch on its own connection and returns the first result set. */
export async function tsqlQuery(url: string, text: string, params: readonly unknown[] = []): Promise<Array<Record<string, unknown>>> {
  const pool = await new sql.ConnectionPool(sql.ConnectionPool.parseConnectionString(url)).connect();
  try {
    const req = pool.request();
    params.forEach((v, i) => req.input(`p${i + 1}`, v));
    return ((await req.query(text)).recordset ?? []) as Array<Record<string, unknown>>;
  } finally {
    await pool.close();
  }
}
