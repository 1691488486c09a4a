import sql from 'mssql';
import { inject } from 'vitest';
import type { EngineAnswer } from './tsql-engine-broker.js';
import { TsqlConnections } from './tsql-pool.js';

/**
 * A real T-SQL engine for tests, reached with the `mssql` driver over TDS:
 * TIDEMARK_TEST_MSSQL_URL when set (a real SQL Server), otherwise the Babelfish engine beside the
 * repository, started once per vitest run by the global setup. Without either the answer is
 * `{ skip }` with the reason, which is printed once per file; skip the T-SQL tests on it.
 */
let printed = false;

export async function tsqlEngine(): Promise<{ url: string } | { skip: string }> {
  const external = process.env.TIDEMARK_TEST_MSSQL_URL;
  let a: EngineAnswer;
  if (external) a = { url: external };
  else {
    let broker: string | undefined;
    try {
      broker = inject('tsqlBroker');
    } catch {
      broker = undefined;
    }
    if (!broker) a = { skip: 'the T-SQL engine broker is not running (vitest.config.ts globalSetup test/support/tsql-global-setup.ts)' };
    else {
      const res = await fetch(`${broker}/engine`);
      a = (await res.json()) as EngineAnswer;
    }
  }
  if ('skip' in a) {
    if (!printed) console.log(`T-SQL tests skipped: ${a.skip}`);
    printed = true;
  }
  return a;
}

/** The connection string with another database. */
export function withDatabase(url: string, database: string): string {
  const parts = url.split(';').filter((p) => p && !/^\s*(database|initial catalog)\s*=/i.test(p));
  return [...parts, `Database=${database}`].join(';');
}

/**
 * A fresh database on the engine for one test file, so files running in parallel workers never
 * see each other's tables. Returns its connection string, the file's warm connections to it
 * (tsql-pool.ts: `tsqlQuery` on this URL uses them, and `warmWarehouseFor` lends them to the
 * mssql warehouse); `drop` closes those and removes the database.
 */
export async function freshTsqlDatabase(url: string, prefix: string): Promise<{ url: string; connections: TsqlConnections; drop(): Promise<void> }> {
  const name = `${prefix}_${process.pid}_${Date.now().toString(36)}`.replace(/[^A-Za-z0-9_]/g, '_').slice(0, 60);
  const admin = await new sql.ConnectionPool(sql.ConnectionPool.parseConnectionString(url)).connect();
  try {
    await admin.request().query(`CREATE DATABASE [${name}]`);
  } finally {
    await admin.close();
  }
  const connections = new TsqlConnections(withDatabase(url, name));
  return {
    url: connections.url,
    connections,
    drop: async () => {
      await connections.close();
      const p = await new sql.ConnectionPool(sql.ConnectionPool.parseConnectionString(url)).connect();
      try {
        await p.request().query(`DROP DATABASE [${name}]`);
      } catch {
        // a connection left open by a failed test keeps it; the engine is thrown away after the run
      } finally {
        await p.close();
      }
    },
  };
}
