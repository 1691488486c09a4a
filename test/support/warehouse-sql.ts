import { join } from 'node:path';
import pg from 'pg';
import { duckExec, duckQuery } from './project.js';
import type { WarehouseKind } from './scd-harness.js';
import { tsqlQuery } from './tsql-sql.js';

/** tidemark.yaml for a test project whose warehouse WH is DuckDB, the test PostgreSQL or the T-SQL engine (setting TIDEMARK_TEST_WH). */
export function projectYaml(kind: WarehouseKind): string {
  return `storage: AzureWebJobsStorage
connections:
  SRC: { kind: duckdb, path: source.duckdb }
warehouses:
  WH: ${kind === 'duckdb' ? '{ kind: duckdb, path: warehouse.duckdb }' : `{ kind: ${kind}, setting: TIDEMARK_TEST_WH }`}
duckdb: { memoryLimit: 256MB, threads: 1 }
`;
}

/** Runs SQL against the test warehouse of any kind (the project folder for DuckDB, the URL for PostgreSQL and T-SQL). */
export async function whQuery(kind: WarehouseKind, dir: string, pgUrl: string, sql: string): Promise<Array<Record<string, unknown>>> {
  if (kind === 'duckdb') return duckQuery(join(dir, 'warehouse.duckdb'), sql);
  if (kind === 'mssql') return tsqlQuery(pgUrl, sql);
  const c = new pg.Client({ connectionString: pgUrl });
  await c.connect();
  try {
    return (await c.query(sql)).rows as Array<Record<string, unknown>>;
  } finally {
    await c.end();
  }
}

export async function whExec(kind: WarehouseKind, dir: string, pgUrl: string, sql: string): Promise<void> {
  if (kind === 'duckdb') await duckExec(join(dir, 'warehouse.duckdb'), sql);
  else await whQuery(kind, dir, pgUrl, sql);
}
