import { queryAsOf } from '../../shared/rollback/as-of.js';
import { EXIT, UsageError, parse, printJson, table, withStack, type Command } from '../common.js';

const usage = 'tidemark query <pipeline> --as-of <timestamp> [--project DIR] [--json]';

const cell = (v: unknown) => (typeof v === 'bigint' ? v.toString() : v instanceof Date ? v.toISOString() : v);

export const queryCommand: Command = {
  summary: 'print the dimension as it was at a point in time (UTC)',
  usage,
  async run(argv) {
    const { values, positionals } = parse(argv, { 'as-of': { type: 'string' } }, usage);
    const name = positionals[0];
    const at = values['as-of'];
    if (!name || positionals.length > 1 || !at) throw new UsageError(`name one pipeline and --as-of\nusage: ${usage}`);
    return withStack(values, async (stack) => {
      const rows = (await queryAsOf(stack.ctx, { pipeline: name, at })).map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, cell(v)])));
      if (values.json) printJson(rows);
      else process.stdout.write(rows.length ? `${table(rows, Object.keys(rows[0]!))}\n` : '(no rows)\n');
      return EXIT.ok;
    });
  },
};
