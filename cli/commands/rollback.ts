import { previewRollback, rollbackPipeline, type RollbackPreview } from '../../shared/rollback/undo-runs.js';
import { EXIT, UsageError, parse, printJson, table, withStack, type Command } from '../common.js';
import { confirm } from '../confirm.js';

const usage = 'tidemark rollback <pipeline> --to-run <runId> [--dry-run] [--yes] [--project DIR] [--json]';

function describePlan(p: RollbackPreview): string {
  const total = p.runs.reduce((t, r) => ({ inserted: t.inserted + r.inserted, updated: t.updated + r.updated, deleted: t.deleted + r.deleted }), { inserted: 0, updated: 0, deleted: 0 });
  return (
    `${p.pipeline}: rolling back to ${p.toRunId} undoes ${p.runs.length} run(s), newest first:\n` +
    `${table(p.runs.map((r) => ({ run: r.runId, inserted: r.inserted, updated: r.updated, deleted: r.deleted })), ['run', 'inserted', 'updated', 'deleted'])}\n` +
    `The versions these runs wrote are removed and the ${total.updated + total.deleted} version(s) they closed are open again ` +
    `(${total.inserted} inserted, ${total.updated} updated, ${total.deleted} deleted key(s) in all); the checkpoint goes back to ${p.toRunId}.\n`
  );
}

export const rollbackCommand: Command = {
  summary: 'undo the runs newer than a committed run (warehouse, checkpoint, run records); shows what it will do and asks first',
  usage,
  async run(argv) {
    const { values, positionals } = parse(argv, { 'to-run': { type: 'string' }, 'dry-run': { type: 'boolean' }, yes: { type: 'boolean', short: 'y' } }, usage);
    const name = positionals[0];
    const to = values['to-run'];
    if (!name || positionals.length > 1 || !to) throw new UsageError(`name one pipeline and --to-run\nusage: ${usage}`);
    return withStack(values, async (stack) => {
      const plan = await previewRollback(stack.ctx, { pipeline: name, toRunId: to });
      if (plan.runs.length === 0) {
        if (values.json) printJson({ pipeline: name, toRunId: to, undone: [], ...(values['dry-run'] ? { dryRun: true, runs: [] } : {}) });
        else process.stdout.write(`${name}: nothing to roll back, ${to} is the last committed run\n`);
        return EXIT.ok;
      }
      if (values['dry-run']) {
        if (values.json) printJson({ ...plan, undone: plan.runs.map((r) => r.runId), dryRun: true });
        else process.stdout.write(`${describePlan(plan)}(dry run: nothing was changed)\n`);
        return EXIT.ok;
      }
      if (!values.json && !values.yes) process.stdout.write(describePlan(plan));
      if (!(await confirm(`roll ${name} back to ${to}`, { yes: values.yes }))) {
        process.stdout.write('not rolled back\n');
        return EXIT.failed;
      }
      const r = await rollbackPipeline(stack.ctx, { pipeline: name, toRunId: to, by: 'cli' });
      if (values.json) printJson(r);
      else if (r.undone.length === 0) process.stdout.write(`${name}: nothing to roll back, ${to} is the last committed run\n`);
      else process.stdout.write(`${name}: rolled back to ${to}; undone (newest first): ${r.undone.join(', ')}\n`);
      return EXIT.ok;
    });
  },
};
