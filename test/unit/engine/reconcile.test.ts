import { describe, expect, it } from 'vitest';
import { assertReconcilable, planWarehouseCurrent } from '../../../shared/engine/reconcile.js';
import { pipelineSchema } from '../../../shared/config/schema.js';
import { planDuckKeys } from '../../../shared/extract/duckdb-source.js';
import { planPgKeys } from '../../../shared/extract/postgres-source.js';
import { pgColumnPlan } from '../../../shared/extract/postgres-types.js';
import { duckdbDialect } from '../../../shared/merge/duckdb/dialect.js';
import { postgresDialect } from '../../../shared/merge/postgres/dialect.js';
import { mssqlDialect, synapseDialect } from '../../../shared/merge/synapse/dialect.js';

const pipeline = (extra: Record<string, unknown> = {}) =>
  pipelineSchema.parse({
    name: 'acc',
    source: { connection: 'SRC', table: 'crm.accounts', changeDetection: { mode: 'timestamp', column: 'updated_at' } },
    key: ['region', 'id'],
    target: { warehouse: 'WH', table: 'dw.acc', deletes: 'retire' },
    ...extra,
  });

describe('reconcile SQL', () => {
  // Every value comes back as text, typed again in DuckDB by the committed run's schema.
  it.each([
    ['duckdb', duckdbDialect, `SELECT CAST("region" AS VARCHAR) AS "region", CAST("id" AS VARCHAR) AS "id", "_tm_row_hash" AS "_tm_row_hash", CAST("_tm_valid_from" AS VARCHAR) AS "_tm_valid_from", "_tm_is_deleted" AS "_tm_is_deleted" FROM "dw"."acc" WHERE "_tm_is_current" = true`],
    ['postgres', postgresDialect, `SELECT CAST("region" AS text) AS "region", CAST("id" AS text) AS "id", "_tm_row_hash" AS "_tm_row_hash", CAST("_tm_valid_from" AS text) AS "_tm_valid_from", "_tm_is_deleted" AS "_tm_is_deleted" FROM "dw"."acc" WHERE "_tm_is_current" = true`],
    // Synapse keys are at most nvarchar(4000) (no LOB in a columnstore target), so the cast cuts nothing.
    ['synapse', synapseDialect(), `SELECT CAST([region] AS nvarchar(4000)) AS [region], CAST([id] AS nvarchar(4000)) AS [id], [_tm_row_hash] AS [_tm_row_hash], CAST([_tm_valid_from] AS nvarchar(4000)) AS [_tm_valid_from], [_tm_is_deleted] AS [_tm_is_deleted] FROM [dw].[acc] WHERE [_tm_is_current] = 1`],
    ['mssql', mssqlDialect(), `SELECT CAST([region] AS nvarchar(max)) AS [region], CAST([id] AS nvarchar(max)) AS [id], [_tm_row_hash] AS [_tm_row_hash], CAST([_tm_valid_from] AS nvarchar(max)) AS [_tm_valid_from], [_tm_is_deleted] AS [_tm_is_deleted] FROM [dw].[acc] WHERE [_tm_is_current] = 1`],
  ])('current versions on %s', (_name, dialect, sql) => {
    expect(planWarehouseCurrent({ dialect }, { schema: 'dw', name: 'acc' }, ['region', 'id'])).toEqual({ sql, parameters: [] });
  });

  it('key-only source reads select the key columns alone', () => {
    expect(planDuckKeys(pipeline())).toEqual({ sql: 'SELECT "region", "id" FROM "crm"."accounts"', parameters: [] });
    const cols = [pgColumnPlan('region', 'text'), pgColumnPlan('id', 'integer')];
    expect(planPgKeys(pipeline(), cols).sql).toMatch(/^SELECT .* AS "region", .* AS "id" FROM "crm"."accounts"$/);
  });

  it('refuses --deletes where it has no meaning', () => {
    expect(() => assertReconcilable(pipeline(), { deletes: true, allowEmpty: false })).not.toThrow();
    expect(() => assertReconcilable(pipeline({ source: { connection: 'SRC', table: 't', changeDetection: { mode: 'cdc' } } }), { deletes: true, allowEmpty: false })).toThrow(/cdc mode, which delivers deletes from the change feed/);
    expect(() => assertReconcilable(pipeline({ target: { warehouse: 'WH', table: 'dw.acc', deletes: 'ignore' } }), { deletes: true, allowEmpty: false })).toThrow(/deletes: ignore/);
    // Without --deletes every pipeline can have its snapshot rebuilt.
    expect(() => assertReconcilable(pipeline({ target: { warehouse: 'WH', table: 'dw.acc', deletes: 'ignore' } }), { deletes: false, allowEmpty: false })).not.toThrow();
  });
});
