import { TerminalError } from '../errors.js';
import type { ColumnInfo } from '../storage/manifest.js';

export interface SchemaDrift {
  added: ColumnInfo[];
  dropped: ColumnInfo[];
  retyped: Array<{ name: string; from: string; to: string }>;
}

/** Column changes of the source between two extracts, by name (case-insensitive, as SQL names are). */
export function compareSchemas(before: readonly ColumnInfo[], after: readonly ColumnInfo[]): SchemaDrift {
  const key = (c: ColumnInfo) => c.name.toLowerCase();
  const was = new Map(before.map((c) => [key(c), c]));
  const now = new Map(after.map((c) => [key(c), c]));
  return {
    added: after.filter((c) => !was.has(key(c))),
    dropped: before.filter((c) => !now.has(key(c))),
    retyped: after.flatMap((c) => {
      const b = was.get(key(c));
      return b && b.type !== c.type ? [{ name: c.name, from: b.type, to: c.type }] : [];
    }),
  };
}

export function isDrift(d: SchemaDrift): boolean {
  return d.added.length + d.dropped.length + d.retyped.length > 0;
}

export function describeDrift(d: SchemaDrift): string {
  return [
    ...d.added.map((c) => `added ${c.name} ${c.type}`),
    ...d.dropped.map((c) => `dropped ${c.name}`),
    ...d.retyped.map((c) => `${c.name} changed from ${c.from} to ${c.to}`),
  ].join(', ');
}

/**
 * Applies `source.schemaDrift`. Under `evolve`, added and dropped columns pass (the merge adds
 * new target columns; a dropped one is NULL in new versions) but a changed type fails, since
 * the target column and every stored row hash were made for the old type.
 */
export function checkSchemaDrift(pipeline: string, policy: 'evolve' | 'fail', drift: SchemaDrift): void {
  if (!isDrift(drift)) return;
  const file = `pipelines/${pipeline}.yaml`;
  if (policy === 'fail') {
    throw new TerminalError(
      `the source of ${pipeline} changed its columns since the last committed run (${describeDrift(drift)}) and ${file} has source.schemaDrift: fail; nothing was changed. Update the pipeline for the new columns, or set source.schemaDrift: evolve`,
    );
  }
  if (drift.retyped.length > 0) {
    throw new TerminalError(
      `the source of ${pipeline} changed column types since the last committed run (${drift.retyped.map((c) => `${c.name} from ${c.from} to ${c.to}`).join(', ')}); source.schemaDrift: evolve does not change types, nothing was changed. Cast the column back in transform.sql, or migrate the target column and its history`,
    );
  }
}
