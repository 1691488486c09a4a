import { TerminalError } from '../errors.js';
import type { ColumnInfo } from '../storage/manifest.js';
import { TM_PREFIX } from './classify.js';

export interface SchemaDrift {
  added: ColumnInfo[];
  dropped: ColumnInfo[];
  retyped: Array<{ name: string; from: string; to: string }>;
}

/**
 * Column changes of the source between two extracts, by name (case-insensitive, as SQL names are).
 * Columns with the `_tm_` prefix are tidemark's own (e.g. `_tm_source_op`, present on a CDC /
 * Change Tracking window read and absent on its re-snapshot), never the source's: left out.
 */
export function compareSchemas(before: readonly ColumnInfo[], after: readonly ColumnInfo[]): SchemaDrift {
  const key = (c: ColumnInfo) => c.name.toLowerCase();
  const user = (c: ColumnInfo) => !key(c).startsWith(TM_PREFIX);
  before = before.filter(user);
  after = after.filter(user);
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
 * Applies `source.schemaDrift`. Under `evolve` every change passes here: the merge adds new
 * target columns, leaves dropped ones NULL in new versions, and decides a changed type itself
 * (refused, or widened with target.allowTypeWidening), naming table, column and both types.
 * Under `fail` any change is refused before the transform writes anything.
 */
export function checkSchemaDrift(pipeline: string, policy: 'evolve' | 'fail', drift: SchemaDrift): void {
  if (policy === 'evolve' || !isDrift(drift)) return;
  throw new TerminalError(
    `the source of ${pipeline} changed its columns since the last committed run (${describeDrift(drift)}) and pipelines/${pipeline}.yaml has source.schemaDrift: fail; nothing was changed. Update the pipeline for the new columns, or set source.schemaDrift: evolve`,
  );
}
