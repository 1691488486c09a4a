import type { PipelineConfig } from '../config/schema.js';
import type { EngineContext } from '../engine/context.js';
import { TerminalError } from '../errors.js';
import { writeValidations, type ValidationResult } from '../state/validations.js';
import { readKindOf, type RawManifest } from '../storage/manifest.js';

/**
 * Checks on the extract before the transform runs (validation.extract): enough rows, and the
 * columns and types the pipeline expects. NULL and duplicate keys are checked by the transform
 * itself (transform/run-transform.ts), also before anything reaches the warehouse.
 */
export function checkExtract(p: PipelineConfig, m: Pick<RawManifest, 'rowCount' | 'schema' | 'read' | 'window'>, backfill = false): ValidationResult[] {
  const out: ValidationResult[] = [];
  const cfg = p.validation.extract;
  // minRows bounds a whole table: an incremental window with no changes is not a short read.
  if (cfg.minRows > 0 && readKindOf(m, backfill) === 'full') {
    out.push({
      check: 'extract_min_rows',
      passed: m.rowCount >= cfg.minRows,
      expected: `>= ${cfg.minRows}`,
      actual: m.rowCount,
      detail: 'rows of the full read vs validation.extract.minRows (window reads are not checked)',
    });
  }
  if (cfg.columns) {
    const have = new Map(m.schema.map((c) => [c.name, c.type]));
    const problems: string[] = [];
    for (const [name, type] of Object.entries(cfg.columns)) {
      const got = have.get(name);
      if (got === undefined) problems.push(`${name} missing`);
      else if (type.toLowerCase() !== 'any' && normType(type) !== normType(got)) problems.push(`${name} is ${got}, expected ${type}`);
    }
    out.push({
      check: 'extract_schema',
      passed: problems.length === 0,
      expected: Object.entries(cfg.columns).map(([n, t]) => `${n} ${t}`).join(', '),
      actual: problems.length ? problems.join('; ') : 'as expected',
      detail: 'extract columns vs validation.extract.columns',
    });
  }
  return out;
}

const normType = (t: string) => t.toUpperCase().replace(/\s+/g, '');

/** Records the extract checks of a run and stops it before the transform when one failed. */
export async function assertExtractValid(ctx: EngineContext, p: PipelineConfig, m: RawManifest, backfill = false): Promise<void> {
  const results = checkExtract(p, m, backfill);
  if (results.length === 0) return;
  await writeValidations(ctx.tables, p.name, m.runId, results, ctx.now());
  const failed = results.filter((r) => !r.passed);
  if (failed.length > 0) {
    throw new TerminalError(
      `extract validation failed (${failed.map((f) => `${f.check}: expected ${f.expected}, got ${f.actual}`).join('; ')}); nothing was transformed or merged. Fix the source or pipelines/${p.name}.yaml validation.extract`,
    );
  }
}
