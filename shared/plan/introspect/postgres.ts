import type * as Pg from 'pg';
import { lazyModule } from '../../lazy-module.js';
import type { TableProfile } from '../profile.js';
import { assembleProfiles, selectTables, type Introspector } from './port.js';

const pgLib = lazyModule<typeof Pg>('pg');

/** Catalog queries of the PostgreSQL introspector (pg_catalog, so they need no statistics extension). */
export const PG_INTROSPECTION = {
  tables:
    `SELECT n.nspname AS schema_name, c.relname AS table_name, c.reltuples::float8 AS estimate, pg_total_relation_size(c.oid)::float8 AS bytes ` +
    `FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace ` +
    `WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%' ` +
    `ORDER BY 1, 2`,
  columns:
    `SELECT n.nspname AS schema_name, c.relname AS table_name, a.attname AS column_name, format_type(a.atttypid, a.atttypmod) AS data_type ` +
    `FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace ` +
    `WHERE c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped AND n.nspname NOT IN ('pg_catalog', 'information_schema') ` +
    `ORDER BY 1, 2, a.attnum`,
  /** Every index's columns in index order; indisprimary marks the primary key. */
  indexes:
    `SELECT n.nspname AS schema_name, c.relname AS table_name, i.indisprimary AS is_primary, k.ord AS ord, a.attname AS column_name ` +
    `FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace ` +
    `CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) ` +
    `JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum ` +
    `WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2, i.indexrelid, k.ord`,
} as const;

export function quotePgIdent(s: string): string {
  return `"${s.replace(/"/g, '""')}"`;
}

/**
 * A PostgreSQL database. Row counts come from the planner's statistics (reltuples); a table
 * never analyzed (reltuples -1) is counted instead, so a fresh database still gets numbers.
 */
export class PostgresIntrospector implements Introspector {
  readonly kind = 'postgres' as const;
  readonly notes: string[] = [];
  constructor(
    private readonly url: string,
    private readonly setting: string,
  ) {}

  async profile(tables?: readonly string[]): Promise<TableProfile[]> {
    const client = new (pgLib().Client)({ connectionString: this.url });
    try {
      await client.connect();
    } catch (cause) {
      throw new Error(`cannot connect to the PostgreSQL database in setting ${this.setting}: ${(cause as Error).message}`, { cause });
    }
    try {
      const all = (await client.query<{ schema_name: string; table_name: string; estimate: number; bytes: number }>(PG_INTROSPECTION.tables)).rows;
      const chosen = selectTables(all.map((t) => ({ ...t, schema: t.schema_name, name: t.table_name })), tables, `the database of ${this.setting}`);
      const cols = (await client.query<{ schema_name: string; table_name: string; column_name: string; data_type: string }>(PG_INTROSPECTION.columns)).rows;
      const idx = (await client.query<{ schema_name: string; table_name: string; is_primary: boolean; ord: string; column_name: string }>(PG_INTROSPECTION.indexes)).rows;
      return await assembleProfiles(
        chosen,
        { columns: cols, indexes: idx.map((i) => ({ ...i, ord: Number(i.ord) })), temporal: (t) => /^timestamp/i.test(t) },
        async (t) => {
          let rows = t.estimate;
          if (!(rows >= 0)) {
            const r = await client.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${quotePgIdent(t.schema)}.${quotePgIdent(t.name)}`);
            rows = Number(r.rows[0]?.n ?? 0);
          }
          return { rowCount: Math.round(rows), bytes: Number(t.bytes) };
        },
      );
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  async close(): Promise<void> {}
}
