import { rollbackPipeline } from '../../shared/rollback/undo-runs.js';
import { EXIT, UsageError, parse, printJson, withStack, type Command } from '../common.js';

const usage = 'tidemark rollback <pipeline> --to-run <runId> [--project DIR] [--json]';

export const rollbackCommand: Command = {
  summary: 'undo the runs newer than a committed run (warehouse, checkpoint, run records)',
  usage,
  async run(argv) {
    const { values, positionals } = parse(argv, { 'to-run': { type: 'string' } }, usage);
    const name = positionals[0];
    const to = values['to-run'];
    if (!name || positionals.length > 1 || !to) throw new UsageError(`name one pipeline and --to-run\nusage: ${usage}`);
    return withStack(values, async (stack) => {
      const r = await rollbackPipeline(stack.ctx, { pipeline: name, toRunId: to, by: 'cli' });
      if (values.json) printJson(r);
      else if (r.undone.length === 0) process.stdout.write(`${name}: nothing to roll back, ${to} is the last committed run\n`);
      else process.stdout.write(`${name}: rolled back to ${to}; undone (newest first): ${r.undone.join(', ')}\n`);
      return EXIT.ok;
    });
  },
};
