import type * as Mssql from 'mssql';
import { lazyModule } from '../../lazy-module.js';

const mssqlLib = lazyModule<typeof Mssql>('mssql');
import { parseDuration } from '../../config/duration.js';
import type { ConnectionConfig } from '../../config/schema.js';
import { TerminalError } from '../../errors.js';

/**
 * The part of an `mssql` Request the source uses. A streaming request emits `recordset`
 * (column metadata), `row` per row, `error`, then `done`; `pause()` / `resume()` stop and
 * restart the rows (tedious may still deliver the rows of a packet already read after pause).
 */
export interface MssqlRequestLike {
  stream: boolean;
  input(name: string, type: unknown, value: unknown): unknown;
  on(event: 'recordset', fn: (columns: Record<string, unknown>) => void): unknown;
  on(event: 'row', fn: (row: Record<string, unknown>) => void): unknown;
  on(event: 'error', fn: (err: unknown) => void): unknown;
  on(event: 'done', fn: (result: unknown) => void): unknown;
  query(sql: string): unknown;
  pause(): unknown;
  resume(): unknown;
  cancel(): unknown;
}

/** What a statement is sent through: a pool, or one transaction's connection. */
export interface MssqlRequester {
  request(): MssqlRequestLike;
}

/** A transaction on one connection of the pool; its requests all run inside it. */
export interface MssqlTransactionLike extends MssqlRequester {
  commit(): Promise<void>;
  rollback(): Promise<void>;
}

/** A connection the source asks for requests; the real one is an mssql ConnectionPool. */
export interface MssqlConnector extends MssqlRequester {
  /**
   * Begins a SNAPSHOT isolation transaction: every statement sent through it reads the same
   * committed state of the database (which must have ALLOW_SNAPSHOT_ISOLATION ON).
   */
  beginSnapshot(): Promise<MssqlTransactionLike>;
  close(): Promise<void>;
}

export type MssqlConnectionConfig = Extract<ConnectionConfig, { kind: 'mssql' }>;

/**
 * Driver config from the connection string in the named setting plus tidemark.yaml:
 * requestTimeout and the pool size are always explicit (the driver's 15 s default would cut
 * long reads), and `authentication: entra` uses tedious's DefaultAzureCredential type, which
 * covers managed identity in Azure and a developer login locally; a user-assigned identity is
 * chosen with AZURE_CLIENT_ID as usual for azure-identity.
 */
export function mssqlDriverConfig(conn: MssqlConnectionConfig, connectionString: string, env: NodeJS.ProcessEnv): Mssql.config {
  let base: ReturnType<typeof Mssql.ConnectionPool.parseConnectionString>;
  try {
    base = mssqlLib().ConnectionPool.parseConnectionString(connectionString);
  } catch (cause) {
    throw new TerminalError(`the connection string in setting ${conn.setting} is not a valid SQL Server connection string: ${(cause as Error).message}`, { cause });
  }
  const requestTimeout = parseDuration(conn.requestTimeout);
  const cfg: Mssql.config = {
    ...base,
    requestTimeout,
    connectionTimeout: Math.min(requestTimeout, 30_000),
    pool: { max: conn.pool.max, min: 0, idleTimeoutMillis: 30_000 },
    options: { encrypt: true, ...base.options, appName: 'tidemark' },
  };
  if (conn.authentication === 'entra') {
    delete cfg.user;
    delete cfg.password;
    cfg.authentication = {
      type: 'azure-active-directory-default',
      options: env.AZURE_CLIENT_ID ? { clientId: env.AZURE_CLIENT_ID } : {},
    } as Mssql.config['authentication'];
  }
  return cfg;
}

export async function connectMssql(conn: MssqlConnectionConfig, connectionString: string, env: NodeJS.ProcessEnv): Promise<MssqlConnector> {
  const mssql = mssqlLib();
  const pool = new mssql.ConnectionPool(mssqlDriverConfig(conn, connectionString, env));
  await pool.connect();
  return {
    request: () => pool.request() as unknown as MssqlRequestLike,
    beginSnapshot: async () => {
      const tx = new mssql.Transaction(pool);
      await tx.begin(mssql.ISOLATION_LEVEL.SNAPSHOT);
      return {
        request: () => new mssql.Request(tx) as unknown as MssqlRequestLike,
        commit: () => tx.commit(),
        rollback: () => tx.rollback(),
      };
    },
    close: () => pool.close(),
  };
}

/** Every parameter is text; the SQL converts it with an explicit style (see plan.ts). */
export const paramType = (): unknown => mssqlLib().NVarChar(mssqlLib().MAX);
