import { listQuarantine } from '../../shared/validate/quarantine.js';
import { EXIT, UsageError, parse, printJson, table, withStack, type Command } from '../common.js';
import { jsonValue } from '../json-values.js';

const usage = 'tidemark quarantine <pipeline> [--run ID] [--limit N] [--hide-rolled-back] [--project DIR] [--json]';


export const quarantineCommand: Command = {
  summary: 'list rows held back by quality rules (onFail: quarantine), with the rules they failed; rows of rolled-back runs are marked',
  usage,
  async run(argv) {
    const { values, positionals } = parse(argv, { run: { type: 'string' }, limit: { type: 'string' }, 'hide-rolled-back': { type: 'boolean' } }, usage);
    const name = positionals[0];
    if (!name || positionals.length > 1) throw new UsageError(`name one pipeline\nusage: ${usage}`);
    const limit = values.limit === undefined ? 1000 : Number(values.limit);
    if (!Number.isInteger(limit) || limit < 1) throw new UsageError(`--limit must be a positive integer\nusage: ${usage}`);
    return withStack(values, async (stack) => {
      const rows = await listQuarantine(stack.ctx, { pipeline: name, ...(values.run ? { runId: values.run } : {}), limit, includeRolledBack: !values['hide-rolled-back'] });
      // A rolled-back run's rows are marked: its load was undone, so they wait on nothing.
      const flat = rows.map((r) => ({ runId: r.runStatus === 'rolled_back' ? `${r.runId} (rolled back)` : r.runId, rules: r.rules.join(','), ...Object.fromEntries(Object.entries(r.row).map(([k, v]) => [k, jsonValue(v)])) }));
      if (values.json) printJson(rows.map((r) => ({ runId: r.runId, runStatus: r.runStatus, rolledBack: r.runStatus === 'rolled_back', rules: r.rules, row: Object.fromEntries(Object.entries(r.row).map(([k, v]) => [k, jsonValue(v)])) })));
      else process.stdout.write(flat.length ? `${table(flat, Object.keys(flat[0]!))}\n` : `${name}: no quarantined rows\n`);
      return EXIT.ok;
    });
  },
};
