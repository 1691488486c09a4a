import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createLogger, jsonLineSink, type LogLevel } from '../../shared/telemetry/logger.js';
import { SalesforceDouble } from '../../shared/local/salesforce-double.js';
import { openLocalStack } from '../../shared/local/stack.js';
import { projectPath } from '../../shared/engine/context.js';
import { DEFAULT_DEMO_SIZE, generateDemoSource, simulateDay, type DemoSize } from '../../shared/local/demo-source.js';
import { runOnce, type LocalStack, type RunSummary } from '../../shared/local/stack.js';
import { CONTAINERS, TABLES } from '../../shared/storage/layout.js';
import { EXIT, UsageError, parse, printJson, projectDir, table, withStack, type Command } from '../common.js';

const usage = 'tidemark demo [--project DIR] [--scale N] [--source duckdb|salesforce] [--json]';

/** Forgets everything the demo pipelines left in storage, so the demo starts from a first load. */
async function resetPipelineState(stack: LocalStack, names: readonly string[]): Promise<void> {
  const { blobs, tables } = stack.ctx;
  for (const name of names) {
    for (const c of Object.values(CONTAINERS)) await blobs.deletePrefix(c, `${name}/`);
    for (const t of [TABLES.checkpoints, TABLES.runs, TABLES.validations, TABLES.leases]) {
      for (const e of await tables.list(t, name)) await tables.delete(t, e.partitionKey, e.rowKey);
    }
  }
}

export const demoCommand: Command = {
  summary: 'generate a CRM source, load it, simulate a day of changes, load again, and show what happened',
  usage,
  async run(argv) {
    const { values } = parse(argv, { scale: { type: 'string' }, source: { type: 'string' } }, usage);
    if (values.source !== undefined && values.source !== 'duckdb' && values.source !== 'salesforce') throw new UsageError(`--source must be duckdb or salesforce\nusage: ${usage}`);
    if (values.source === 'salesforce') return salesforceDemo(values);
    const scale = values.scale === undefined ? 1 : Number(values.scale);
    if (!(scale > 0 && scale <= 100)) throw new UsageError(`--scale must be a number in (0, 100]\nusage: ${usage}`);
    const size: DemoSize = {
      accounts: Math.round(DEFAULT_DEMO_SIZE.accounts * scale),
      contacts: Math.round(DEFAULT_DEMO_SIZE.contacts * scale),
      opportunities: Math.round(DEFAULT_DEMO_SIZE.opportunities * scale),
    };
    // The demo is the main job: it always talks, unless asked for JSON.
    const say = values.json ? () => undefined : (line: string) => process.stderr.write(`${line}\n`);
    const started = Date.now();
    const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1)} s`;
    return withStack(values, async (stack) => {
      const names = ['crm_accounts', 'crm_contacts', 'crm_opportunities'].filter((n) => stack.project.pipelines.has(n));
      if (names.length === 0) throw new UsageError('this project has no crm_* pipelines; run the demo from the tidemark repository');
      const conn = stack.project.config.connections.DEMO;
      const wh = stack.project.config.warehouses.LOCAL;
      if (conn?.kind !== 'duckdb' || wh?.kind !== 'duckdb') throw new UsageError('the demo needs the DEMO (duckdb) connection and LOCAL (duckdb) warehouse of tidemark.yaml');
      const sourceFile = projectPath(stack.ctx, conn.path);
      const warehouseFile = projectPath(stack.ctx, wh.path);

      say(`[${elapsed()}] resetting demo state (source, warehouse, checkpoints, runs)`);
      await resetPipelineState(stack, names);
      rmSync(warehouseFile, { force: true });
      rmSync(`${warehouseFile}.wal`, { force: true });

      const day0 = new Date(Date.now() - 86_400_000).toISOString();
      say(`[${elapsed()}] generating the CRM source: ${size.accounts} accounts, ${size.contacts} contacts, ${size.opportunities} opportunities`);
      await generateDemoSource(sourceFile, size, stack.ctx.duck, day0);

      const results: Array<{ phase: string; summary: RunSummary }> = [];
      for (const name of names) {
        say(`[${elapsed()}] initial load: ${name} …`);
        const s = await runOnce(stack, { pipeline: name });
        say(`[${elapsed()}]   ${name}: ${s.status}, ${s.counts.inserted} inserted`);
        results.push({ phase: 'initial load', summary: s });
      }

      say(`[${elapsed()}] simulating a day of changes in the source`);
      const day = await simulateDay(sourceFile, size, stack.ctx.duck, new Date().toISOString());

      for (const name of names) {
        say(`[${elapsed()}] incremental run: ${name} …`);
        const s = await runOnce(stack, { pipeline: name });
        say(`[${elapsed()}]   ${name}: ${s.status}, ${s.counts.inserted} inserted, ${s.counts.updated} updated, ${s.counts.deleted} deleted, ${s.counts.unchanged} unchanged`);
        results.push({ phase: 'after a day', summary: s });
      }

      const ok = results.every((r) => r.summary.status === 'succeeded');
      if (values.json) {
        printJson({ ok, simulated: day, runs: results.map((r) => ({ phase: r.phase, ...r.summary })) });
        return ok ? EXIT.ok : EXIT.failed;
      }
      const rows = results.map((r) => ({
        pipeline: r.summary.pipeline,
        phase: r.phase,
        status: r.summary.status,
        extracted: r.summary.counts.extracted,
        inserted: r.summary.counts.inserted,
        updated: r.summary.counts.updated,
        deleted: r.summary.counts.deleted,
        unchanged: r.summary.counts.unchanged,
        quarantined: r.summary.counts.quarantined,
        validation: r.summary.validations.map((v) => `${v.check}:${v.passed ? 'ok' : 'FAILED'}`).join(' ') || '-',
      }));
      const out = process.stdout;
      out.write(`\ntidemark demo — finished in ${elapsed()}\n\n`);
      out.write(`${table(rows, ['pipeline', 'phase', 'status', 'extracted', 'inserted', 'updated', 'deleted', 'unchanged', 'quarantined', 'validation'])}\n\n`);
      out.write('What the simulated day did in the source, and why the table\'s figures differ:\n');
      const after = (name: string) => results.find((r) => r.phase === 'after a day' && r.summary.pipeline === name)?.summary.counts;
      const explain = (label: string, pipeline: string, d: { updated: number; alreadyNew: number; touched: number }, what: string) => {
        const seen = after(pipeline);
        out.write(`  ${label} ${d.updated} updated, ${d.touched} touched (ModifiedAt bumped, data the same)\n`);
        if (!seen) return;
        const real = d.updated - d.alreadyNew;
        out.write(
          `    ${seen.updated} updated in the table: ${d.updated} updated${d.alreadyNew ? ` − ${d.alreadyNew} that already had ${what} (an UPDATE to the same value is no change)` : ''}` +
            `${real === seen.updated ? '' : ` (expected ${real})`}; the ${d.touched} touched${d.alreadyNew ? ` and those ${d.alreadyNew}` : ''} are unchanged, with no new version\n`,
        );
      };
      explain('accounts:     ', 'crm_accounts', day.accounts, "City = 'Bergen', Country = 'NO'");
      out.write(`                 ${day.accounts.deleted} deleted, ${day.accounts.inserted} inserted\n`);
      explain('contacts:     ', 'crm_contacts', day.contacts, "Phone = '+47 99999999'");
      out.write(`                 ${day.contacts.inserted} inserted (timestamp mode: deletes are not seen)\n`);
      explain('opportunities:', 'crm_opportunities', day.opportunities, "Stage = 'Won', Probability = 1.0");
      out.write(`                 ${day.opportunities.deleted} deleted (kept, flagged), ${day.opportunities.inserted} inserted\n`);
      out.write("  'extracted' is what the source returned (the whole table where deletes are detected by comparison, rows since the watermark otherwise);\n");
      out.write("  'unchanged' is what the row hash found identical to the current version.\n\n");
      out.write(`The warehouse is ${warehouseFile}. Look at the history:\n`);
      out.write(`  node dist/cli/main.js sql "select AccountId, City, _tm_valid_from, _tm_valid_to, _tm_is_current from dw.dim_account where AccountId = 1 order by _tm_valid_from"\n`);
      out.write(`  node dist/cli/main.js sql "select _tm_is_current, _tm_is_deleted, count(*) from dw.fact_opportunity_history group by all order by all"\n`);
      out.write(`  node dist/cli/main.js status\n`);
      out.write(`Run again with no source change (reports 0 inserted, updated and deleted):\n`);
      out.write(`  node dist/cli/main.js run crm_accounts\n`);
      return ok ? EXIT.ok : EXIT.failed;
    });
  },
};

/* salesforce demo (issue 18) */
const SF_TIDEMARK = `storage: AzureWebJobsStorage
connections:
  CRM: { kind: salesforce, instanceUrlSetting: DEMO_SF_URL, auth: clientCredentials, clientIdSetting: DEMO_SF_CLIENT_ID, secretSetting: DEMO_SF_SECRET }
warehouses:
  LOCAL: { kind: duckdb, path: warehouse.duckdb }
`;
const SF_PIPELINE = `name: sf_accounts
description: Salesforce Account through Bulk API 2.0 (first load) and queryAll (increments, deletes)
source:
  connection: CRM
  object: Account
  fields: all
  changeDetection: { mode: timestamp }
key: [Id]
target: { warehouse: LOCAL, table: dw.sf_account }
retry: { attempts: 4, backoff: exponential, initialDelay: 200ms }
`;

/**
 * The demo on the local Salesforce test double (shared/local/salesforce-double.ts): a generated
 * Account object, a first load through Bulk API 2.0, a day of updates and deletes, an
 * increment through queryAll. Its project lives under .tidemark/demo-salesforce/.
 */
async function salesforceDemo(values: { project?: string | undefined; json?: boolean | undefined; scale?: string | undefined }): Promise<number> {
  const rows = Math.round(50_000 * (values.scale === undefined ? 1 : Number(values.scale)));
  const say = values.json ? () => undefined : (line: string) => process.stderr.write(`${line}\n`);
  const dir = join(projectDir(values), '.tidemark', 'demo-salesforce');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, 'pipelines'), { recursive: true });
  writeFileSync(join(dir, 'tidemark.yaml'), SF_TIDEMARK);
  writeFileSync(join(dir, 'pipelines', 'sf_accounts.yaml'), SF_PIPELINE);
  const sf = await SalesforceDouble.start(rows, { clientId: 'demo-client', secret: 'demo-secret' }, Date.now() - 86_400_000 * 3);
  say(`Salesforce test double (local, not Salesforce) on ${sf.url} serving ${rows} Accounts`);
  const level = (process.env.TIDEMARK_LOG_LEVEL as LogLevel | undefined) ?? (values.json ? 'error' : 'warn');
  const stack = await openLocalStack({
    projectDir: dir,
    log: createLogger(jsonLineSink(level)),
    env: { ...process.env, DEMO_SF_URL: sf.url, DEMO_SF_CLIENT_ID: 'demo-client', DEMO_SF_SECRET: 'demo-secret' },
  });
  try {
    await resetPipelineState(stack, ['sf_accounts']);
    const results: Array<{ phase: string; summary: RunSummary }> = [];
    say('initial load through Bulk API 2.0 …');
    results.push({ phase: 'initial load', summary: await runOnce(stack, { pipeline: 'sf_accounts' }) });
    const now = Date.now();
    const updated = Array.from({ length: Math.max(1, Math.round(rows / 100)) }, (_, i) => i * 97 % rows);
    const deleted = Array.from({ length: Math.max(1, Math.round(rows / 1000)) }, (_, i) => (i * 89 + 13) % rows).filter((i) => !updated.includes(i));
    sf.update(updated, now - 60_000, { Name: 'Renamed in the demo' });
    sf.remove(deleted, now - 30_000);
    sf.failNext('limit', /GET .*\/queryAll$/);
    say(`a day in the CRM: ${updated.length} accounts updated, ${deleted.length} deleted; the next call answers REQUEST_LIMIT_EXCEEDED once`);
    results.push({ phase: 'after a day', summary: await runOnce(stack, { pipeline: 'sf_accounts' }) });
    const ok = results.every((r) => r.summary.status === 'succeeded');
    if (values.json) {
      printJson({ ok, runs: results.map((r) => ({ phase: r.phase, ...r.summary })) });
      return ok ? EXIT.ok : EXIT.failed;
    }
    const table_ = results.map((r) => ({ phase: r.phase, status: r.summary.status, ...r.summary.counts }));
    process.stdout.write(`\n${table(table_, ['phase', 'status', 'extracted', 'inserted', 'updated', 'deleted', 'unchanged'])}\n\n`);
    process.stdout.write(`Warehouse: ${join(dir, 'warehouse.duckdb')} (table dw.sf_account)\n`);
    return ok ? EXIT.ok : EXIT.failed;
  } finally {
    await stack.close();
    await sf.stop();
  }
}
/* end salesforce demo */
