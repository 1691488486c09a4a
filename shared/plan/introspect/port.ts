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
