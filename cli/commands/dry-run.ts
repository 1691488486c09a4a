import { dryRun } from '../../shared/engine/dry-run.js';
import { EXIT, printJson, withStack } from '../common.js';

/** `tidemark run <pipeline> --dry-run`: what the run would read and change, writing nothing. */
export async function runDryRun(values: { project?: string | undefined; json?: boolean | undefined }, pipeline: string, mode: 'incremental' | 'full'): Promise<number> {
  return withStack(values, async (stack) => {
    const r = await dryRun(stack.ctx, { pipeline, mode });
    if (values.json) {
      printJson(r);
      return EXIT.ok;
    }
    const out = process.stdout;
    out.write(`${r.pipeline}: dry run of a ${r.mode} run — nothing was written\n`);
    out.write(`window (${r.window.mode}): ${r.window.fullRead ? 'the whole table' : `from ${r.window.from ?? 'the beginning'} to ${r.window.to ?? '(nothing new)'}`}\n`);
    out.write(r.source.sql ? `source SQL: ${r.source.sql}\n${r.source.parameters.length ? `parameters: ${JSON.stringify(r.source.parameters)}\n` : ''}` : 'source SQL: none (nothing new to read)\n');
    out.write(`rows read now: ${r.estimatedRows}\n`);
    const c = r.changes;
    out.write(`would apply: ${c.inserted} inserted, ${c.updated} updated, ${c.type1} type-1 updated, ${c.deleted} deleted, ${c.unchanged} unchanged${c.stale ? `, ${c.stale} stale` : ''}${c.quarantined ? `, ${c.quarantined} quarantined` : ''}\n`);
    for (const f of r.checks.filter((x) => !x.passed)) out.write(`would stop at ${f.check}: expected ${f.expected}, got ${f.actual}\n`);
    for (const w of r.warnings) out.write(`warning: ${w}\n`);
    out.write(`target ${r.target.table}: ${r.target.exists ? (r.target.ddl.length ? 'would change' : 'no DDL needed') : 'would be created'}\n`);
    for (const st of r.target.ddl) out.write(`  ${st.sql};\n`);
    return EXIT.ok;
  });
}
