import { TerminalError } from '../errors.js';
import { readSetting } from '../config/load.js';
import { DuckDbSource } from '../extract/duckdb-source.js';
import { connectMssql } from '../extract/mssql/driver.js';
import { MssqlSource } from '../extract/mssql/source.js';
import { PostgresSource } from '../extract/postgres-source.js';
import { SalesforceSource } from '../extract/salesforce/source.js';
import { parseDuration } from '../config/duration.js';
import { DuckDbWarehouse } from '../merge/duckdb/warehouse.js';
import { PostgresWarehouse } from '../merge/postgres/warehouse.js';
import { MssqlWarehouse, SynapseWarehouse } from '../merge/synapse/warehouse.js';
import { projectPath, type SourceFactory, type WarehouseFactory } from './context.js';

/** Default source per connection kind. Kinds not built yet are refused at run start (support.ts). */
export const defaultSourceFor: SourceFactory = (ctx, conn, pipeline) => {
  switch (conn.kind) {
    case 'duckdb':
      return new DuckDbSource(projectPath(ctx, conn.path), pipeline, ctx.duck);
    case 'mssql': {
      const cs = readSetting(conn.setting, ctx.env);
      return new MssqlSource(() => connectMssql(conn, cs, ctx.env), pipeline, ctx.duck);
    }
    case 'postgres':
      return new PostgresSource(conn, readSetting(conn.setting, ctx.env), pipeline, ctx.duck);
    /* salesforce source (issue 18) */
    case 'salesforce':
      return new SalesforceSource(conn, ctx.env, pipeline, ctx.duck, {
        retry: { attempts: pipeline.retry.attempts, backoff: pipeline.retry.backoff, initialDelayMs: parseDuration(pipeline.retry.initialDelay) },
        log: (level, message) => ctx.log.log(level, message, { pipeline: pipeline.name }),
      });
    /* end salesforce source */
    default:
      throw new TerminalError(`not supported yet: connections.${pipeline.source.connection}.kind: ${(conn as { kind: string }).kind}`);
  }
};

export const defaultWarehouseFor: WarehouseFactory = (ctx, wh, pipeline) => {
  switch (wh.kind) {
    case 'duckdb':
      return new DuckDbWarehouse(projectPath(ctx, wh.path), ctx.duck);
    case 'postgres':
      return new PostgresWarehouse(readSetting(wh.setting, ctx.env), ctx.duck);
    case 'synapse':
      return SynapseWarehouse.fromConfig(wh, pipeline, ctx.env, ctx.duck);
    case 'mssql':
      return MssqlWarehouse.fromConfig(wh, pipeline, ctx.env, ctx.duck);
  }
};
