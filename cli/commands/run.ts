import { runOnce, type RunSummary } from '../../shared/local/stack.js';
import { endInFlightRun } from '../../shared/engine/end-run.js';
import { errorMessage } from '../../shared/errors.js';
import { retainDuckFiles } from '../../shared/duckdb/session.js';
import { runDryRun } from './dry-run.js';
import { EXIT, UsageError, parse, printJson, progress, table, withStack, type Command } from '../common.js';

const usage = 'tidemark run <pipeline> [--project DIR] [--full] [--dry-run] [--json]';

const DETAIL_LINES = 5;

export function printSummary(s: RunSummary): void {
  const r = s.resumed;
  if (r && !r.covers) process.stdout.write(`${r.pipeline}  run ${r.runId}  ${r.status}  (resumed at its ${r.stage} stage: its process, ${r.from}, had died)${r.error ? `\n  error: ${r.error}` : ''}\n`);
  // Resumed at its extract, the orphan read the source after this command began: it is this run.
  process.stdout.write(`${s.pipeline}  run ${s.runId}  ${s.status}${r?.covers ? `  (resumed at its ${r.stage} stage: its process, ${r.from}, had died; it read the source now, so it is this run)` : ''}\n`);
  process.stdout.write(`${table([s.counts as unknown as Record<string, unknown>], Object.keys(s.counts))}\n`);
  if (s.validations.length) {
    process.stdout.write(`${table(s.validations.map((v) => ({ ...v, passed: v.passed ? 'yes' : 'NO' })), ['check', 'passed', 'expected', 'actual'])}\n`);
    // The reason a check failed, not only its figures; long details are cut to their first lines.
    for (const v of s.validations) {
      if (v.passed || !v.detail) continue;
      const lines = v.detail.split('\n');
      process.stdout.write(`${v.check}: ${lines.slice(0, DETAIL_LINES).join('\n  ')}${lines.length > DETAIL_LINES ? `\n  … ${lines.length - DETAIL_LINES} more line(s): tidemark runs ${s.pipeline} --json, or the page` : ''}\n`);
    }
  }
  if (s.error) process.stdout.write(`error: ${s.error}\n`);
}

export const runCommand: Command = {
  summary: 'one whole run of a pipeline through the local host',
  usage,
  async run(argv) {
    const { values, positionals } = parse(argv, { full: { type: 'boolean' }, 'dry-run': { type: 'boolean' } }, usage);
    const name = positionals[0];
    if (!name || positionals.length > 1) throw new UsageError(`name one pipeline\nusage: ${usage}`);
    if (values['dry-run']) return runDryRun(values, name, values.full ? 'full' : 'incremental');
    const say = progress(values.json);
    // One command, one run: the DuckDB files stay open across its stages (the ledger read, the
    // merge, the checks) instead of being opened for each; closed on every way out.
    const releaseFiles = retainDuckFiles();
    return withStack(values, async (stack) => {
      say(`running ${name}${values.full ? ' (full)' : ''} …`);
      let stopping = false;
      const running = runOnce(stack, { pipeline: name, mode: values.full ? 'full' : 'incremental' }, undefined, (text) => say(`${text}; driving it to its end first`));
      // Ctrl-C / SIGTERM: let the message in hand finish (a stage is atomic at its boundaries),
      // then end the run this process owns as interrupted (a committed merge is completed
      // instead), stop the Azurite started here, and exit 128 + signal like a shell expects.
      const onSignal = (sig: NodeJS.Signals) => {
        if (stopping) return;
        stopping = true;
        void (async () => {
          stack.host.stop();
          await Promise.race([running.catch(() => undefined), new Promise((r) => setTimeout(r, 30_000).unref())]);
          try {
            const ended = await endInFlightRun(stack.ctx, name, { kind: 'interrupted', reason: `tidemark run stopped by ${sig}`, onlyOwnedBy: process.pid });
            if ('runId' in ended) process.stderr.write(`tidemark run: ${sig}: run ${ended.runId} ${ended.kind === 'completed' ? 'had committed its merge; completed it' : 'marked interrupted, nothing applied'}; the pipeline is free\n`);
          } catch (err) {
            process.stderr.write(`tidemark run: ${sig}: could not end the run (${errorMessage(err)}); the next run takes it over\n`);
          }
          await stack.close().catch(() => undefined);
          releaseFiles();
          process.exit(sig === 'SIGINT' ? 130 : 143);
        })();
      };
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      let s: RunSummary;
      try {
        s = await running;
      } finally {
        if (!stopping) {
          process.off('SIGINT', onSignal);
          process.off('SIGTERM', onSignal);
        }
      }
      // The signal handler owns the exit from here on.
      if (stopping) await new Promise(() => undefined);
      if (values.json) {
        const { timings: _t, error, ...rest } = s;
        printJson({ ...rest, ...(error ? { error } : {}) });
      } else printSummary(s);
      return s.status === 'succeeded' ? EXIT.ok : EXIT.failed;
    }).finally(releaseFiles);
  },
};
