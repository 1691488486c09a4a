import { getPipeline } from '../../shared/config/load.js';
import { queryAsOfWithTypes } from '../../shared/rollback/as-of.js';
import { EXIT, UsageError, parse, printJson, table, withStack, type Command } from '../common.js';
import { jsonRow } from '../json-values.js';

const usage = 'tidemark query <pipeline> --as-of <timestamp> [--key K] [--columns a,b] [--limit N] [--project DIR] [--json]';

/** On a terminal a whole dimension is never what a person wants to scroll through. */
const TERMINAL_LIMIT = 50;

export const queryCommand: Command = {
  summary: 'print the dimension as it was at a point in time (UTC); --key one key, --columns some columns, --limit N rows',
  usage,
  async run(argv) {
    const { values, positionals } = parse(argv, { 'as-of': { type: 'string' }, key: { type: 'string' }, columns: { type: 'string' }, limit: { type: 'string' } }, usage);
    const name = positionals[0];
    const at = values['as-of'];
    if (!name || positionals.length > 1 || !at) throw new UsageError(`name one pipeline and --as-of\nusage: ${usage}`);
    const limit = values.limit === undefined ? (process.stdout.isTTY && !values.json ? TERMINAL_LIMIT : undefined) : Number(values.limit);
    if (limit !== undefined && (!Number.isInteger(limit) || limit < 1)) throw new UsageError(`--limit must be a positive integer, got ${JSON.stringify(values.limit)}\nusage: ${usage}`);
    return withStack(values, async (stack) => {
      const p = getPipeline(stack.project, name);
      // --key gives the key's value(s) in the order of the pipeline's key, comma-separated.
      const keyValues = values.key === undefined ? undefined : values.key.split(',').map((k) => k.trim());
      if (keyValues && keyValues.length !== p.key.length) throw new UsageError(`--key needs ${p.key.length} value(s), one per key column (${p.key.join(', ')}), comma-separated`);
      const { types, rows } = await queryAsOfWithTypes(stack.ctx, { pipeline: name, at });
      const known = Object.keys(types).filter((c) => !c.startsWith('_tm_'));
      const columns = values.columns === undefined ? known : values.columns.split(',').map((c) => c.trim());
      const unknown = columns.filter((c) => !known.includes(c));
      if (unknown.length) throw new UsageError(`unknown column(s) ${unknown.join(', ')}; ${p.target.table} has ${known.join(', ')}`);
      const matching = keyValues ? rows.filter((r) => p.key.every((k, i) => String(jsonValueText(r[k])) === keyValues[i])) : rows;
      const shown = (limit === undefined ? matching : matching.slice(0, limit)).map((r) => jsonRow(Object.fromEntries(columns.map((c) => [c, r[c]])), types));
      if (values.json) printJson(shown);
      else {
        process.stdout.write(shown.length ? `${table(shown, columns)}\n` : '(no rows)\n');
        if (shown.length < matching.length) process.stdout.write(`(${shown.length} of ${matching.length} rows; --limit N or --key K for others, --json for all)\n`);
      }
      return EXIT.ok;
    });
  },
};

const jsonValueText = (v: unknown): string => (v instanceof Date ? v.toISOString() : String(v));
