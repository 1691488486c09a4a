import { readCheckpoint } from '../../shared/state/checkpoints.js';
import { listRuns } from '../../shared/state/runs.js';
import { EXIT, parse, printJson, table, withStack, type Command } from '../common.js';

const usage = 'tidemark status [--project DIR] [--json]';

export const statusCommand: Command = {
  summary: "each pipeline's checkpoint and last runs",
  usage,
  async run(argv) {
    const { values } = parse(argv, { last: { type: 'string' } }, usage);
    const last = Number(values.last ?? 3);
    return withStack(values, async (stack) => {
      const out = [];
      for (const name of stack.project.pipelines.keys()) {
        const { checkpoint } = await readCheckpoint(stack.ctx.tables, name);
        const runs = await listRuns(stack.ctx.tables, name, last);
        out.push({
          pipeline: name,
          checkpoint: { watermark: checkpoint.watermark, lastRunId: checkpoint.lastRunId, committedAt: checkpoint.committedAt || null },
          runs: runs.map((r) => ({ runId: r.runId, status: r.status, stage: r.stage, trigger: r.trigger, counts: r.counts, error: r.error ?? null })),
        });
      }
      const broken = [...(stack.project.broken ?? [])].map(([pipeline, e]) => ({ pipeline, error: e.message }));
      if (values.json) printJson(broken.length ? [...out, ...broken.map((b) => ({ ...b, broken: true }))] : out);
      else {
        for (const p of out) {
          process.stdout.write(`\n${p.pipeline}  watermark=${p.checkpoint.watermark ?? '-'}  last committed run=${p.checkpoint.lastRunId ?? '-'}\n`);
          if (p.runs.length === 0) process.stdout.write('  no runs yet\n');
          else {
            process.stdout.write(
              `${table(
                p.runs.map((r) => ({ run: r.runId, status: r.status, stage: r.stage, ins: r.counts.inserted, upd: r.counts.updated, del: r.counts.deleted, same: r.counts.unchanged, error: r.error ?? '' })),
                ['run', 'status', 'stage', 'ins', 'upd', 'del', 'same', 'error'],
              )}\n`,
            );
          }
        }
        for (const b of broken) process.stdout.write(`\n${b.pipeline}  does not load: ${b.error}\n`);
      }
      return EXIT.ok;
    });
  },
};
