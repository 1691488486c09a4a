import { TerminalError } from '../errors.js';
import type { ExistingColumn } from './dialect.js';
import type { LogicalType, MergePlan, PlanColumn } from './plan.js';
import { SCD_COLUMNS } from './plan.js';

export function scdColumnDefs(types: { timestamp: string; boolean: string; hash: string }): Array<[string, string]> {
  return [
    ['_tm_valid_from', types.timestamp],
    ['_tm_valid_to', types.timestamp],
    ['_tm_is_current', types.boolean],
    ['_tm_is_deleted', types.boolean],
    ['_tm_row_hash', types.hash],
    ['_tm_run_id', types.hash],
    ['_tm_version_key', types.hash],
  ];
}

const norm = (t: string) => t.toUpperCase().replace(/\s+/g, ' ').trim();

/**
 * Schema evolution of the target: a new source column is added (nullable) and tracked from
 * then on; a column the source dropped stays in the target and gets NULL in new versions; a
 * changed type fails the run with table, column, old and new type named.
 */
export function planTargetChanges(
  plan: MergePlan,
  existing: readonly ExistingColumn[],
  typeName: (t: LogicalType) => string,
  widening: (from: string, to: string) => boolean = () => false,
): PlanColumn[] {
  const have = new Map(existing.map((c) => [c.name.toLowerCase(), c]));
  for (const s of SCD_COLUMNS) {
    if (!have.has(s)) {
      throw new TerminalError(
        `target ${plan.target.schema ? `${plan.target.schema}.` : ''}${plan.target.name} exists but has no ${s} column: it was not created by tidemark; choose another target.table`,
      );
    }
  }
  const added: PlanColumn[] = [];
  for (const c of plan.columns) {
    const e = have.get(c.name.toLowerCase());
    if (!e) {
      added.push(c);
      continue;
    }
    const want = norm(typeName(c.type));
    const got = norm(e.type);
    if (want !== got && !widening(got, want)) {
      throw new TerminalError(
        `type change in ${plan.target.schema ? `${plan.target.schema}.` : ''}${plan.target.name}.${c.name}: target has ${got}, source now gives ${want}; migrate the column or set target.allowTypeWidening`,
      );
    }
  }
  return added;
}
