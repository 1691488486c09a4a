import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { defaultIntrospector } from '../../shared/plan/introspect/factory.js';
import { initProject, parseFrom } from '../../shared/plan/init.js';
import type { WarehouseKind } from '../../shared/plan/propose.js';
import { EXIT, UsageError, parse, printJson, table, type Command } from '../common.js';
import { renderSchemas } from './schema.js';

const usage = 'tidemark init [DIR] [--from <kind>:<location> | salesforce:<PREFIX>] [--tables a,b] [--warehouse duckdb|postgres|mssql|synapse] [--force] [--json]';
const WAREHOUSES = ['duckdb', 'postgres', 'mssql', 'synapse'] as const;

export const initCommand: Command = {
  summary: 'write a project from a source database (or a runnable sample): tidemark.yaml and one pipeline per table',
  usage,
  async run(argv) {
    const { values, positionals } = parse(
      argv,
      { from: { type: 'string' }, tables: { type: 'string' }, warehouse: { type: 'string' }, force: { type: 'boolean' } },
      usage,
    );
    if (positionals.length > 1) throw new UsageError(`give at most one folder\nusage: ${usage}`);
    const warehouse = (values.warehouse ?? 'duckdb') as WarehouseKind;
    if (!WAREHOUSES.includes(warehouse)) throw new UsageError(`--warehouse must be one of ${WAREHOUSES.join(', ')}\nusage: ${usage}`);
    const tables = values.tables?.split(',').map((t) => t.trim()).filter(Boolean);
    const dir = resolve(positionals[0] ?? values.project ?? '.');
    const duck = { memoryLimit: '512MB', threads: 2, tempDir: join(tmpdir(), 'tidemark-init-spill') };
    const r = await initProject({
      dir,
      ...(values.from ? { from: parseFrom(values.from) } : {}),
      ...(tables?.length ? { tables } : {}),
      warehouse,
      force: values.force === true,
      env: process.env,
      duck,
      introspectorFor: (from, resolved) => defaultIntrospector(from, resolved, duck, process.env),
      schemas: renderSchemas(),
      now: () => new Date(),
    });
    const needKey = r.pipelines.filter((p) => p.needsKey);
    if (values.json) {
      printJson({
        dir: r.dir,
        written: r.written,
        pipelines: r.pipelines.map((p) => ({ name: p.name, table: `${p.table.schema ? `${p.table.schema}.` : ''}${p.table.name}`, file: `pipelines/${p.file}`, mode: p.proposal.mode, column: p.proposal.column ?? null, needsKey: p.needsKey, warnings: p.proposal.warnings })),
        skipped: r.skipped,
        notes: r.notes,
      });
      return EXIT.ok;
    }
    const out = process.stdout;
    out.write(`wrote ${r.written.length} files to ${r.dir}\n\n`);
    out.write(
      `${table(
        r.pipelines.map((p) => ({
          pipeline: p.name,
          table: `${p.table.schema ? `${p.table.schema}.` : ''}${p.table.name}`,
          rows: p.table.rowCount ?? '?',
          key: p.table.primaryKey.join(',') || 'NONE',
          detection: `${p.proposal.mode}${p.proposal.column ? ` (${p.proposal.column})` : ''}`,
        })),
        ['pipeline', 'table', 'rows', 'key', 'detection'],
      )}\n`,
    );
    for (const p of r.pipelines) for (const w of p.proposal.warnings) out.write(`\n${p.name}: ${w}`);
    for (const p of needKey) {
      out.write(`\n${p.name}: no primary key — wrote pipelines/${p.file}; fill in key: and rename it to ${p.name}.yaml (tidemark never guesses a key)`);
    }
    for (const s of r.skipped) out.write(`\nskipped ${s.table}: ${s.reason}`);
    for (const n of r.notes) out.write(`\nnote: ${n}`);
    const rel = relative(process.cwd(), r.dir) || '.';
    const first = r.pipelines.find((p) => !p.needsKey);
    out.write(`\n\nNext:\n  tidemark plan --project ${rel}\n${first ? `  tidemark run ${first.name} --project ${rel} --dry-run\n  tidemark run ${first.name} --project ${rel}\n` : ''}`);
    return EXIT.ok;
  },
};
