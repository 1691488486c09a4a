import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { ConfigError } from '../../errors.js';
import { DuckSession, duckLiteral, quoteDuck, type DuckSettings } from '../../transform/duckdb-session.js';
import type { TableProfile } from '../profile.js';
import { assembleProfiles, selectTables, type Introspector } from './port.js';

/** Catalog queries of the DuckDB introspector, on the source attached as `src`. */
export const DUCK_INTROSPECTION = {
  tables: `SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = 'src' AND NOT internal ORDER BY schema_name, table_name`,
  columns: `SELECT schema_name, table_name, column_name, data_type FROM duckdb_columns() WHERE database_name = 'src' ORDER BY schema_name, table_name, column_index`,
  primaryKeys: `SELECT schema_name, table_name, constraint_column_names AS cols FROM duckdb_constraints() WHERE database_name = 'src' AND constraint_type = 'PRIMARY KEY'`,
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
          // Zone maps (min/max per row group) make every column a cheap range filter.
          return { rowCount: Number(n?.n ?? 0), bytes: null, indexedColumns: [], zoneMaps: true };
        },
      );
    } finally {
      s.close();
    }
  }

  async close(): Promise<void> {}
}
