import { afterAll, beforeAll } from 'vitest';
import type { AzuriteHandle } from '../../shared/local/azurite.js';
import { withAzurite } from './azurite.js';
import { startPostgres, type PostgresHandle } from './postgres.js';
import type { WarehouseKind } from './scd-harness.js';
import { freshTsqlDatabase, tsqlEngine } from './tsql-engine.js';

export interface WarehouseEngines {
  /** The warehouse kinds this machine can run: mssql only where the T-SQL engine is available. */
  kinds: WarehouseKind[];
  az(): AzuriteHandle;
  pg(): PostgresHandle;
  /** The file's own T-SQL database; undefined without the engine. */
  ms(): Awaited<ReturnType<typeof freshTsqlDatabase>> | undefined;
}

/**
 * Azurite, a PostgreSQL server and (where the T-SQL engine runs) a fresh T-SQL database for a
 * whole test file, started in beforeAll and stopped in afterAll.
 */
export async function useWarehouseEngines(tsqlPrefix: string): Promise<WarehouseEngines> {
  const engine = await tsqlEngine();
  let az: AzuriteHandle | undefined;
  let pgh: PostgresHandle | undefined;
  let ms: Awaited<ReturnType<typeof freshTsqlDatabase>> | undefined;
  beforeAll(async () => {
    [az, pgh] = await Promise.all([withAzurite(), startPostgres()]);
    if ('url' in engine) ms = await freshTsqlDatabase(engine.url, tsqlPrefix);
  });
  afterAll(async () => {
    await ms?.drop();
    await az?.stop();
    await pgh?.stop();
  });
  return {
    kinds: ['duckdb', 'postgres', ...('url' in engine ? (['mssql'] as WarehouseKind[]) : [])],
    az: () => az!,
    pg: () => pgh!,
    ms: () => ms,
  };
}
