import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { makePlan, recentRuns } from '../../shared/plan/make-plan.js';
import { renderMarkdown } from '../../shared/plan/render.js';
import { EXIT, UsageError, parse, withStack, type Command } from '../common.js';

const usage = 'tidemark plan [--project DIR] [--format md|json] [--out FILE]';

export const planCommand: Command = {
  summary: 'the migration plan of the project: scope, volumes, phases, mapping, validation, rollback, risks, estimate, dependency graph',
  usage,
  async run(argv) {
    const { values, positionals } = parse(argv, { format: { type: 'string' }, out: { type: 'string' } }, usage);
    if (positionals.length) throw new UsageError(`plan takes no positional arguments\nusage: ${usage}`);
    const format = values.format ?? (values.json ? 'json' : 'md');
    if (format !== 'md' && format !== 'json') throw new UsageError(`--format must be md or json\nusage: ${usage}`);
    // Recent runs live in Table Storage; the local stack reaches it (Azurite unless configured).
    const text = await withStack({ ...values, json: true }, async (stack) => {
      const plan = await makePlan({ project: stack.project, env: process.env, duck: stack.ctx.duck, runs: await recentRuns(stack.ctx.tables, stack.project), now: new Date() });
      return format === 'json' ? `${JSON.stringify(plan, null, 2)}\n` : renderMarkdown(plan);
    });
    if (values.out) {
      writeFileSync(resolve(values.out), text);
      process.stderr.write(`wrote the plan to ${resolve(values.out)}\n`);
    } else process.stdout.write(text);
    return EXIT.ok;
  },
};
