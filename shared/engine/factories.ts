import { TerminalError } from '../errors.js';
import { DuckDbSource } from '../extract/duckdb-source.js';
import { readSetting } from '../config/load.js';
import { DuckDbWarehouse } from '../merge/duckdb/warehouse.js';
import { PostgresWarehouse } from '../merge/postgres/warehouse.js';
import { SynapseWarehouse } from '../merge/synapse/warehouse.js';
import { projectPath, type SourceFactory, type WarehouseFactory } from './context.js';

/** Default source per connection kind. Kinds not built yet are refused at run start (support.ts). */
export const defaultSourceFor: SourceFactory = (ctx, conn, pipeline) => {
  switch (conn.kind) {
    case 'duckdb':
      return new DuckDbSource(projectPath(ctx, conn.path), pipeline, ctx.duck);
    default:
      throw new TerminalError(`not supported yet: connections.${pipeline.source.connection}.kind: ${conn.kind}`);
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
  }
};
