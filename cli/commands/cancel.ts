import { endInFlightRun } from '../../shared/engine/end-run.js';
import { EXIT, UsageError, parse, printJson, withStack, type Command } from '../common.js';

const usage = 'tidemark cancel <pipeline> [--project DIR] [--json]';

export const cancelCommand: Command = {
  summary: "end a pipeline's in-flight run: a committed merge is completed, anything else applies nothing",
  usage,
  async run(argv) {
    const { values, positionals } = parse(argv, {}, usage);
    const name = positionals[0];
    if (!name || positionals.length > 1) throw new UsageError(`name one pipeline\nusage: ${usage}`);
    return withStack(values, async (stack) => {
      const ended = await endInFlightRun(stack.ctx, name, { kind: 'cancelled', reason: `cancelled by ${process.env.USER ?? 'tidemark cancel'}` });
      if (values.json) printJson({ pipeline: name, ...ended });
      else {
        const say = {
          none: `${name}: no run in flight`,
          operation: `${name}: held by ${'holder' in ended ? ended.holder : ''}, a rollback or restore, not a run; it cannot be cancelled (it ends or its lease expires)`,
          'not-ours': '',
          completed: `${name}: run ${'runId' in ended ? ended.runId : ''} ${'committedDuringCancel' in ended && ended.committedDuringCancel ? 'committed its merge while being cancelled' : 'had already committed its merge'}; completed it instead of cancelling`,
          cancelled:
            'mergeStillRunning' in ended && ended.mergeStillRunning
              ? `${name}: run ${ended.runId} cancelled, but a merge of it is still running after 60 s: if it commits, the next run completes the run instead`
              : `${name}: run ${'runId' in ended ? ended.runId : ''} cancelled; nothing was applied and the pipeline is free`,
          interrupted: '',
        }[ended.kind];
        process.stdout.write(`${say}\n`);
      }
      return ended.kind === 'operation' ? EXIT.failed : EXIT.ok;
    });
  },
};
