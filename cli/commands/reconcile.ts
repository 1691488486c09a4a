import { previewReconcile, reconcileReportOf, type ReconcilePreview } from '../../shared/engine/reconcile.js';
import { runOnce } from '../../shared/local/stack.js';
import type { ReconcileReport } from '../../shared/storage/manifest.js';
import { EXIT, UsageError, parse, printJson, progress, table, withStack, type Command } from '../common.js';
import { confirm } from '../confirm.js';
import { printSummary } from './run.js';

const usage = 'tidemark reconcile <pipeline> [--deletes] [--allow-empty] [--dry-run] [--yes] [--project DIR] [--json]';

const keyText = (k: Record<string, string | null>) => Object.values(k).map((v) => v ?? 'NULL').join(', ');

function describeReport(pipeline: string, r: ReconcileReport): string {
  const s = r.snapshot;
  const differ = s.onlyInSnapshot + s.onlyInWarehouse + s.hashDiffers;
  let out =
    `${pipeline}: the committed snapshot holds ${s.snapshotCurrent} current key(s), the warehouse ${s.warehouseCurrent}; ` +
    (differ === 0
      ? 'they agree.\n'
      : `${differ} key(s) differ: ${s.onlyInSnapshot} only in the snapshot, ${s.onlyInWarehouse} only in the warehouse, ${s.hashDiffers} with another row hash.\n` +
        `${table(s.sample.map((x) => ({ difference: x.difference, key: keyText(x.key) })), ['difference', 'key'])}\n`);
  if (r.deletes) {
    const d = r.deletes;
    out +=
      `The source has ${d.sourceKeys} key(s)${d.nullKeys ? ` (and ${d.nullKeys} row(s) with a NULL key, left out)` : ''}; ` +
      `${d.absent} key(s) current in the warehouse are not among them${d.absent ? `: ${d.sample.map(keyText).map((k) => `(${k})`).join(' ')}${d.absent > d.sample.length ? ' …' : ''}` : ''}.\n`;
  }
  return out;
}

function whatItDoes(p: ReconcilePreview): string {
  const d = p.report.deletes?.absent ?? 0;
  return `A reconcile run on top of ${p.baseRunId} rebuilds the snapshot from the warehouse${d ? ` and deletes those ${d} key(s)` : ''}; tidemark rollback ${p.pipeline} --to-run ${p.baseRunId} undoes it.\n`;
}

export const reconcileCommand: Command = {
  summary: 'rebuild the committed snapshot from the warehouse; with --deletes, delete the keys the source no longer has (a run of its own, undone by rollback)',
  usage,
  async run(argv) {
    const { values, positionals } = parse(
      argv,
      { deletes: { type: 'boolean' }, 'allow-empty': { type: 'boolean' }, 'dry-run': { type: 'boolean' }, yes: { type: 'boolean', short: 'y' } },
      usage,
    );
    const name = positionals[0];
    if (!name || positionals.length > 1) throw new UsageError(`name one pipeline\nusage: ${usage}`);
    if (values['allow-empty'] && !values.deletes) throw new UsageError(`--allow-empty goes with --deletes\nusage: ${usage}`);
    const opts = { deletes: values.deletes === true, allowEmpty: values['allow-empty'] === true };
    const say = progress(values.json);
    return withStack(values, async (stack) => {
      say(`comparing ${name}'s snapshot with the warehouse${opts.deletes ? ' and the source keys' : ''} …`);
      const plan = await previewReconcile(stack.ctx, { pipeline: name, ...opts });
      if (values['dry-run'] || !plan.changes || plan.refused) {
        if (values.json) printJson({ ...plan, ...(values['dry-run'] ? { dryRun: true } : {}) });
        else {
          process.stdout.write(describeReport(name, plan.report));
          if (plan.refused) process.stdout.write(`refused: ${plan.refused}\n`);
          else if (!plan.changes) process.stdout.write('nothing to reconcile\n');
          else process.stdout.write(`${whatItDoes(plan)}(dry run: nothing was changed)\n`);
        }
        return plan.refused ? EXIT.failed : EXIT.ok;
      }
      if (!values.json && !values.yes) process.stdout.write(describeReport(name, plan.report) + whatItDoes(plan));
      if (!(await confirm(`reconcile ${name}`, { yes: values.yes }))) {
        process.stdout.write('not reconciled\n');
        return EXIT.failed;
      }
      const s = await runOnce(stack, { pipeline: name, mode: 'reconcile', reconcile: opts });
      const report = await reconcileReportOf(stack.ctx, name, s.runId);
      if (values.json) {
        const { timings: _t, error, ...rest } = s;
        printJson({ ...rest, ...(error ? { error } : {}), ...(report ? { reconcile: report } : {}) });
      } else {
        printSummary(s);
        if (report) process.stdout.write(describeReport(name, report));
      }
      return s.status === 'succeeded' ? EXIT.ok : EXIT.failed;
    });
  },
};
