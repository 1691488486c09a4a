import { TerminalError } from '../errors.js';
import type { ExistingColumn } from './dialect.js';
import type { LogicalType, MergePlan, PlanColumn } from './plan.js';
import { SCD_COLUMNS, hashFormatOfPlan } from './plan.js';

/** A dialect's types of the SCD columns: `text` for the run id and hex hashes, `binaryHash` for 16-byte ones. */
export interface ScdTypes {
  timestamp: string;
  boolean: string;
  text: string;
  binaryHash: string;
}

/** The type of `_tm_row_hash` and `_tm_version_key` under the plan's hash format. */
export const scdHashType = (types: ScdTypes, plan: Pick<MergePlan, 'hashFormat'>): string =>
  hashFormatOfPlan(plan) === 'binary' ? types.binaryHash : types.text;

export function scdColumnDefs(types: ScdTypes, plan: Pick<MergePlan, 'hashFormat'>): Array<[string, string]> {
  const hash = scdHashType(types, plan);
  return [
    ['_tm_valid_from', types.timestamp],
    ['_tm_valid_to', types.timestamp],
    ['_tm_is_current', types.boolean],
    ['_tm_is_deleted', types.boolean],
    ['_tm_row_hash', hash],
    ['_tm_run_id', types.text],
    ['_tm_version_key', hash],
  ];
}

/**
 * The changes' hash format (recorded in their manifest) against the target's hash columns: a
 * target keeps the format it was created under, so a mismatch means the pipeline's state and
 * its target parted (state wiped or restored elsewhere). Refused before any write.
 */
function assertHashFormat(plan: MergePlan, have: ReadonlyMap<string, ExistingColumn>, types: ScdTypes): void {
  const format = hashFormatOfPlan(plan);
  for (const c of ['_tm_row_hash', '_tm_version_key']) {
    const got = have.get(c)!.type;
    const binary = norm(got) === norm(types.binaryHash);
    if (binary === (format === 'binary')) continue;
    throw new TerminalError(
      `target ${tableName(plan)}.${c} is ${got}, but this run's changes hold ${format === 'binary' ? '16-byte (hash rule 4)' : 'hex-text (hash rule 1–3)'} hashes: the pipeline's snapshot and its target disagree on the hash rule; restore the state the target was built with, or drop ${tableName(plan)} and run --full to rebuild it`,
    );
  }
}

const norm = (t: string) => t.toUpperCase().replace(/\s+/g, ' ').replace(/\s*,\s*/g, ',').trim();

export interface TargetChanges {
  /** Source columns the target lacks: added nullable, tracked from then on. */
  added: PlanColumn[];
  /** Columns whose type the pipeline allowed to widen: altered to the new type. */
  widened: PlanColumn[];
}

/**
 * Type widenings that keep every stored value: each chain lists type names of one dialect
 * from narrow to wide; a move to the right is widening. DECIMAL(p,s) → DECIMAL(p2,s2) widens
 * when neither the integer digits nor the scale shrink.
 */
export function widensBy(chains: ReadonlyArray<readonly string[]>): (from: string, to: string) => boolean {
  return (from, to) => {
    const f = norm(from);
    const t = norm(to);
    const dec = /^(?:DECIMAL|NUMERIC)\((\d+),(\d+)\)$/;
    const fd = dec.exec(f);
    const td = dec.exec(t);
    if (fd && td) {
      const [fp, fs, tp, ts] = [Number(fd[1]), Number(fd[2]), Number(td[1]), Number(td[2])];
      return ts >= fs && tp - ts >= fp - fs;
    }
    return chains.some((chain) => {
      const c = chain.map(norm);
      const i = c.indexOf(f);
      const j = c.indexOf(t);
      return i >= 0 && j > i;
    });
  };
}

function tableName(plan: Pick<MergePlan, 'target'>): string {
  return `${plan.target.schema ? `${plan.target.schema}.` : ''}${plan.target.name}`;
}

/**
 * Schema evolution of the target: a new source column is added (nullable) and tracked from
 * then on; a column the source dropped stays in the target and gets NULL in new versions; a
 * changed type fails the run with table, column, old and new type named, unless the pipeline
 * sets target.allowTypeWidening and the change keeps every stored value.
 */
export function planTargetChanges(
  plan: MergePlan,
  existing: readonly ExistingColumn[],
  /** The type the column should have; the T-SQL dialects also look at its name (its role). */
  typeName: (t: LogicalType, column: string) => string,
  widening: (from: string, to: string) => boolean,
  scdTypes: ScdTypes,
): TargetChanges {
  const have = new Map(existing.map((c) => [c.name.toLowerCase(), c]));
  for (const s of SCD_COLUMNS) {
    if (!have.has(s)) {
      throw new TerminalError(
        `target ${tableName(plan)} exists but has no ${s} column: it was not created by tidemark; choose another target.table`,
      );
    }
  }
  assertHashFormat(plan, have, scdTypes);
  const added: PlanColumn[] = [];
  const widened: PlanColumn[] = [];
  for (const c of plan.columns) {
    const e = have.get(c.name.toLowerCase());
    if (!e) {
      added.push(c);
      continue;
    }
    const want = norm(typeName(c.type, c.name));
    const got = norm(e.type);
    if (want === got) continue;
    if (plan.allowTypeWidening && widening(got, want)) {
      widened.push(c);
      continue;
    }
    throw new TerminalError(
      `type change in ${tableName(plan)}.${c.name}: target has ${got}, source now gives ${want}; ${
        plan.allowTypeWidening ? 'that is not a widening tidemark can apply in place; migrate the column' : 'migrate the column, or set target.allowTypeWidening: true if the new type is wider'
      }`,
    );
  }
  return { added, widened };
}

/**
 * Refuses names the engine would truncate or reject: PostgreSQL silently cuts identifiers at
 * 63 bytes, which would make two long column names collide.
 */
export function assertIdentifierLengths(plan: Pick<MergePlan, 'target' | 'columns'>, dialect: string, max: number): void {
  const names = [plan.target.schema, plan.target.name, ...plan.columns.map((c) => c.name)].filter((n): n is string => !!n);
  for (const n of names) {
    if (Buffer.byteLength(n, 'utf8') > max) {
      throw new TerminalError(`identifier ${n} is longer than ${max} bytes, the ${dialect} limit; rename it in transform.sql or target.table`);
    }
  }
}
