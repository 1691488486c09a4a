import { runOnce, type RunSummary } from '../../shared/local/stack.js';
import { runDryRun } from './dry-run.js';
import { EXIT, UsageError, parse, printJson, progress, table, withStack, type Command } from '../common.js';

const usage = 'tidemark run <pipeline> [--project DIR] [--full] [--dry-run] [--json]';

const DETAIL_LINES = 5;

export function printSummary(s: RunSummary): void {
  process.stdout.write(`${s.pipeline}  run ${s.runId}  ${s.status}\n`);
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
    return withStack(values, async (stack) => {
      say(`running ${name}${values.full ? ' (full)' : ''} …`);
      const s = await runOnce(stack, { pipeline: name, mode: values.full ? 'full' : 'incremental' });
      if (values.json) {
        const { timings: _t, error, ...rest } = s;
        printJson({ ...rest, ...(error ? { error } : {}) });
      } else printSummary(s);
      return s.status === 'succeeded' ? EXIT.ok : EXIT.failed;
    });
  },
};
