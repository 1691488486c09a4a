import { DuckDBInstance } from '@duckdb/node-api';
import { loadProject } from '../../shared/config/load.js';
import { projectPath } from '../../shared/engine/context.js';
import { EXIT, UsageError, parse, printJson, projectDir, table, type Command } from '../common.js';
import { jsonRow } from '../json-values.js';

const usage = 'tidemark sql "<select …>" [--warehouse NAME] [--project DIR] [--json]';

/** Read-only SQL against an embedded (duckdb) warehouse, for looking at the history. */
export const sqlCommand: Command = {
  summary: 'run a read-only query against a local DuckDB warehouse',
  usage,
  async run(argv) {
    const { values, positionals } = parse(argv, { warehouse: { type: 'string' } }, usage);
    const sql = positionals.join(' ').trim();
    if (!sql) throw new UsageError(`give a query\nusage: ${usage}`);
    // sql reads the warehouse only: a broken pipeline file must not stop it.
    const project = loadProject(projectDir(values), { broken: 'collect' });
    const entries = Object.entries(project.config.warehouses).filter(([, w]) => w.kind === 'duckdb');
    const chosen = values.warehouse ? entries.find(([n]) => n === values.warehouse) : entries[0];
    if (!chosen || chosen[1].kind !== 'duckdb') throw new UsageError(`no local duckdb warehouse ${values.warehouse ?? ''} in tidemark.yaml`);
    const inst = await DuckDBInstance.create(projectPath({ project }, chosen[1].path), { access_mode: 'READ_ONLY' });
    const conn = await inst.connect();
    try {
      await conn.run(`SET TimeZone = 'UTC'`);
      const result = await conn.runAndReadAll(sql);
      const types = Object.fromEntries(result.columnNames().map((n, i) => [n, String(result.columnTypes()[i])]));
      // DuckDB's JSON form keeps decimals' and big integers' digits; jsonRow applies the one rule.
      const rows = (result.getRowObjectsJson() as Record<string, unknown>[]).map((r) => jsonRow(r, types));
      if (values.json) printJson(rows);
      else process.stdout.write(`${rows.length ? table(rows, Object.keys(rows[0]!)) : '(no rows)'}\n`);
      return EXIT.ok;
    } finally {
      conn.closeSync();
      inst.closeSync();
    }
  },
};
