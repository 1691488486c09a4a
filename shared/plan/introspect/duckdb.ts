import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { ConfigError } from '../../errors.js';
import { DuckSession, duckLiteral, quoteDuck, type DuckSettings } from '../../duckdb/session.js';
import type { TableProfile } from '../profile.js';
import { assembleProfiles, selectTables, type Introspector } from './port.js';

/** Catalog queries of the DuckDB introspector, on the source attached as `src`. */
export const DUCK_INTROSPECTION = {
  tables: `SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = 'src' AND NOT internal ORDER BY schema_name, table_name`,
  columns: `SELECT schema_name, table_name, column_name, data_type FROM duckdb_columns() WHERE database_name = 'src' ORDER BY schema_name, table_name, column_index`,
  primaryKeys: `SELECT schema_name, table_name, constraint_column_names AS cols FROM duckdb_constraints() WHERE database_name = 'src' AND constraint_type = 'PRIMARY KEY'`,
  /**
   * Per row group, the smallest and largest value of one column, from the segment statistics
   * DuckDB keeps (`pragma_storage_info`, text "[Min: …, Max: …]"); then how many row groups a
   * window starting at the newest row group's smallest value reads. Metadata only: no scan.
   */
  zoneMapReach: (table: string, column: string) => `WITH seg AS (
  SELECT row_group_id AS g, TRY_CAST(regexp_extract(stats, 'Min: ([^,\\]]+)', 1) AS TIMESTAMPTZ) AS lo, TRY_CAST(regexp_extract(stats, 'Max: ([^,\\]]+)', 1) AS TIMESTAMPTZ) AS hi
  FROM pragma_storage_info(${duckLiteral(table)}) WHERE column_name = ${duckLiteral(column)} AND segment_type <> 'VALIDITY'
), rg AS (SELECT g, min(lo) AS lo, max(hi) AS hi FROM seg GROUP BY g HAVING max(hi) IS NOT NULL)
SELECT count(*)::INTEGER AS row_groups, count(*) FILTER (WHERE hi >= (SELECT lo FROM rg ORDER BY hi DESC, lo DESC LIMIT 1))::INTEGER AS touched FROM rg`,
} as const;

/**
 * A DuckDB file, opened read-only. DuckDB keeps no per-table byte size, so `bytes` is null and
 * the plan shows the file's size; row counts are exact (`count(*)` reads only metadata).
 */
export class DuckDbIntrospector implements Introspector {
  readonly kind = 'duckdb' as const;
  readonly notes: string[] = [];
  constructor(
    private readonly file: string,
    private readonly duck: DuckSettings,
  ) {}

  fileBytes(): number | null {
    return existsSync(this.file) ? statSync(this.file).size : null;
  }

  async profile(tables?: readonly string[]): Promise<TableProfile[]> {
    if (!existsSync(this.file)) throw new ConfigError('--from', 'duckdb', `no DuckDB file at ${this.file}; give the path of an existing database file`);
    const s = await DuckSession.open(':memory:', this.duck);
    try {
      await s.run(`ATTACH ${duckLiteral(resolve(this.file))} AS src (READ_ONLY)`);
      const all = await s.rows<{ schema_name: string; table_name: string }>(DUCK_INTROSPECTION.tables);
      const chosen = selectTables(
        all.map((t) => ({ schema: t.schema_name, name: t.table_name })),
        tables,
        this.file,
      );
      const cols = await s.rows<{ schema_name: string; table_name: string; column_name: string; data_type: string }>(DUCK_INTROSPECTION.columns);
      const pks = await s.rows<{ schema_name: string; table_name: string; cols: string[] }>(DUCK_INTROSPECTION.primaryKeys);
      return await assembleProfiles(
        chosen,
        {
          columns: cols,
          // DuckDB has no index catalog to speak of: the primary key is its one index here.
          indexes: pks.flatMap((k) => k.cols.map((c, i) => ({ schema_name: k.schema_name, table_name: k.table_name, column_name: c, is_primary: true, ord: i + 1 }))),
          temporal: (t) => /^TIMESTAMP/i.test(t),
        },
        async (t) => {
          const n = await s.one<{ n: bigint }>(`SELECT count(*)::BIGINT AS n FROM src.${quoteDuck(t.schema)}.${quoteDuck(t.name)}`);
          // Zone maps (min/max per row group) make a range filter cheap on a column the row
          // groups are ordered on; how far a window reaches is read per date-time column.
          const zoneMapReach: NonNullable<TableProfile['zoneMapReach']> = {};
          for (const c of cols.filter((c) => c.schema_name === t.schema && c.table_name === t.name && /^TIMESTAMP/i.test(c.data_type))) {
            // Storage metadata is an engine detail: if a version reads it differently, the column
            // keeps the plain zone-map assumption rather than failing the plan.
            const r = await s
              .one<{ row_groups: number; touched: number }>(DUCK_INTROSPECTION.zoneMapReach(`src.${quoteDuck(t.schema)}.${quoteDuck(t.name)}`, c.column_name))
              .catch(() => undefined);
            if (r && r.row_groups > 0) zoneMapReach[c.column_name] = { rowGroups: r.row_groups, touched: r.touched };
          }
          return { rowCount: Number(n?.n ?? 0), bytes: null, indexedColumns: [], zoneMaps: true, zoneMapReach };
        },
      );
    } finally {
      await s.close();
    }
  }

  async close(): Promise<void> {}
}
