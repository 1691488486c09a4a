import { getPipeline } from '../../shared/config/load.js';
import { queryAsOfWithTypes, queryKeyHistory } from '../../shared/rollback/as-of.js';
import { EXIT, UsageError, parse, printJson, table, withStack, type Command } from '../common.js';
import { jsonRow, jsonValue } from '../json-values.js';

const usage = 'tidemark query <pipeline> --as-of <timestamp> [--key K] [--columns a,b] [--limit N] [--project DIR] [--json]';

/** On a terminal a whole dimension is never what a person wants to scroll through. */
const TERMINAL_LIMIT = 50;

export const queryCommand: Command = {
  summary: "print the dimension as it was at a point in time (UTC); --key one key's whole history, --columns some columns, --limit N rows",
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
      const pick = (known: readonly string[]): string[] => {
        const columns = values.columns === undefined ? [...known] : values.columns.split(',').map((c) => c.trim());
        const unknown = columns.filter((c) => !known.includes(c));
        if (unknown.length) throw new UsageError(`unknown column(s) ${unknown.join(', ')}; ${p.target.table} has ${known.join(', ')}`);
        return columns;
      };
      if (values.key !== undefined) {
        // The key's whole history: every version with its interval, the one valid at --as-of marked.
        const { types, columns: known, versions } = await queryKeyHistory(stack.ctx, { pipeline: name, at, key: values.key });
        const columns = pick(known);
        const out = versions.map((v) => ({
          validFrom: jsonValue(v.validFrom, types._tm_valid_from),
          validTo: jsonValue(v.validTo, types._tm_valid_to),
          deleted: v.deleted,
          runId: v.runId,
          current: v.current,
          values: jsonRow(Object.fromEntries(columns.map((c) => [c, v.values[c]])), types),
        }));
        if (values.json) printJson(out);
        else {
          const rows = out.map((v) => ({ at: v.current ? '*' : '', valid_from: v.validFrom, valid_to: v.validTo ?? '(open)', deleted: v.deleted ? 'yes' : '', run: v.runId, ...v.values }));
          process.stdout.write(`${table(rows, ['at', 'valid_from', 'valid_to', 'deleted', 'run', ...columns])}\n`);
          process.stdout.write(out.some((v) => v.current) ? `(* = the version valid at ${at})\n` : `(no version was valid at ${at}: the key did not exist yet, or was deleted)\n`);
        }
        return EXIT.ok;
      }
      const { types, rows, total } = await queryAsOfWithTypes(stack.ctx, { pipeline: name, at, ...(limit !== undefined ? { limit } : {}) });
      const columns = pick(Object.keys(types).filter((c) => !c.startsWith('_tm_')));
      const shown = rows.map((r) => jsonRow(Object.fromEntries(columns.map((c) => [c, r[c]])), types));
      if (values.json) printJson(shown);
      else {
        process.stdout.write(shown.length ? `${table(shown, columns)}\n` : '(no rows)\n');
        if (shown.length < total) process.stdout.write(`(${shown.length} of ${total} rows; --limit N or --key K for others, --json for all)\n`);
      }
      return EXIT.ok;
    });
  },
};
