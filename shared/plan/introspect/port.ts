import type { SourceKind, TableProfile } from '../profile.js';

/**
 * The one thing `init` and `plan` ask of a source: a profile of its tables. One adapter per
 * source kind; the planning code above it is pure.
 */
export interface Introspector {
  readonly kind: SourceKind;
  /** Profiles of every user table, or only the named ones (`schema.table` or `table`), in name order. */
  profile(tables?: readonly string[]): Promise<TableProfile[]>;
  /** What could not be read (a feature the engine lacks), said on the terminal and in the plan. */
  readonly notes: string[];
  close(): Promise<void>;
}

/** Keeps the requested tables, refusing a name that matches none so a typo is not silently dropped. */
export function selectTables<T extends { schema: string | null; name: string }>(all: readonly T[], wanted: readonly string[] | undefined, where: string): T[] {
  if (!wanted || wanted.length === 0) return [...all];
  return wanted.map((w) => {
    const lower = w.toLowerCase();
    const hit = all.filter((t) => (t.schema ? `${t.schema}.${t.name}` : t.name).toLowerCase() === lower || t.name.toLowerCase() === lower);
    if (hit.length === 0) {
      throw new Error(`table ${JSON.stringify(w)} not found in ${where}; tables there: ${all.map((t) => (t.schema ? `${t.schema}.${t.name}` : t.name)).join(', ') || 'none'}`);
    }
    if (hit.length > 1) throw new Error(`table ${JSON.stringify(w)} is ambiguous in ${where} (${hit.map((t) => `${t.schema}.${t.name}`).join(', ')}); name it schema.table`);
    return hit[0]!;
  });
}

/** A catalog row of one column, as the SQL introspectors read it. */
export interface CatalogColumn {
  schema_name: string;
  table_name: string;
  column_name: string;
  data_type: string;
}

/** A catalog row of one index column: `ord` is its place in the index (1 leads), primary key indexes flagged. */
export interface CatalogIndexColumn {
  schema_name: string;
  table_name: string;
  column_name: string;
  is_primary: boolean;
  ord: number;
}

/**
 * The table profiles of the chosen tables from catalog rows: columns in catalog order, the
 * primary key in key order, the columns that lead an index. `stats` adds what each engine
 * reads per table (row count, bytes, engine extras), and wins over the catalog's fields.
 */
export async function assembleProfiles<T extends { schema: string; name: string }>(
  chosen: readonly T[],
  catalog: { columns: readonly CatalogColumn[]; indexes: readonly CatalogIndexColumn[]; temporal: (type: string) => boolean },
  stats: (t: T) => Promise<Pick<TableProfile, 'rowCount' | 'bytes'> & Partial<TableProfile>>,
): Promise<TableProfile[]> {
  const out: TableProfile[] = [];
  for (const t of chosen) {
    const mine = (r: { schema_name: string; table_name: string }) => r.schema_name === t.schema && r.table_name === t.name;
    const idx = catalog.indexes.filter(mine);
    out.push({
      schema: t.schema,
      name: t.name,
      columns: catalog.columns.filter(mine).map((c) => ({ name: c.column_name, type: c.data_type, temporal: catalog.temporal(c.data_type) })),
      primaryKey: idx.filter((i) => i.is_primary).sort((a, b) => a.ord - b.ord).map((i) => i.column_name),
      indexedColumns: [...new Set(idx.filter((i) => i.ord === 1).map((i) => i.column_name))],
      ...(await stats(t)),
    });
  }
  return out;
}
