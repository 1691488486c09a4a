import { getPipeline } from '../../shared/config/load.js';
import { leaseOwnerText, readLease } from '../../shared/state/leases.js';
import { RUN_STATUSES, listRuns, type RunStatus } from '../../shared/state/runs.js';
import { runSummary, shownCounts } from '../../shared/state/run-view.js';
import { EXIT, UsageError, parse, printJson, table, withStack, type Command } from '../common.js';

const usage = 'tidemark runs <pipeline> [--limit N] [--status S] [--project DIR] [--json]';


export const runsCommand: Command = {
  summary: "a pipeline's runs, newest first (status, stage, counts, error)",
  usage,
  async run(argv) {
    const { values, positionals } = parse(argv, { limit: { type: 'string' }, status: { type: 'string' } }, usage);
    const name = positionals[0];
    if (!name || positionals.length > 1) throw new UsageError(`name one pipeline\nusage: ${usage}`);
    const limit = values.limit === undefined ? 20 : Number(values.limit);
    if (!Number.isInteger(limit) || limit < 1) throw new UsageError(`--limit must be a positive integer, got ${JSON.stringify(values.limit)}\nusage: ${usage}`);
    const status = values.status as RunStatus | undefined;
    if (status !== undefined && !RUN_STATUSES.includes(status)) throw new UsageError(`--status must be one of ${RUN_STATUSES.join(', ')}, got ${JSON.stringify(values.status)}\nusage: ${usage}`);
    return withStack(values, async (stack) => {
      getPipeline(stack.project, name);
      // Filter before the limit, so `--status failed --limit 5` is the last five failures.
      const all = await listRuns(stack.ctx.tables, name, Number.MAX_SAFE_INTEGER);
      const runs = all.filter((r) => !status || r.status === status).slice(0, limit);
      const out = runs.map(runSummary);
      if (values.json) printJson(out);
      else if (out.length === 0) process.stdout.write(`${name}: no runs${status ? ` with status ${status}` : ''}\n`);
      else {
        const rows = out.map((r) => ({
          run: r.runId,
          status: r.status,
          stage: r.stage,
          trigger: r.trigger,
          mode: r.mode,
          ins: shownCounts(r.counts).inserted,
          upd: shownCounts(r.counts).updated,
          del: r.counts.deleted,
          same: r.counts.unchanged,
          error: (r.error ?? '').split('\n')[0],
        }));
        process.stdout.write(`${table(rows, ['run', 'status', 'stage', 'trigger', 'mode', 'ins', 'upd', 'del', 'same', 'error'])}\n`);
        if (all.length > runs.length && !status) process.stdout.write(`(${all.length - runs.length} older run(s); --limit N shows more)\n`);
        // A run that stays "running" is only explained by its lease: who holds it and since when.
        const lease = await readLease(stack.ctx.tables, name);
        if (lease) {
          const now = stack.ctx.now().getTime();
          const minutes = Math.round((now - Date.parse(lease.acquiredAt)) / 60_000);
          const expired = Date.parse(lease.expiresAt) <= now;
          process.stdout.write(
            `in flight: ${lease.runId} · owner ${leaseOwnerText(lease)} · for ${minutes} min · ${expired ? `lease expired at ${lease.expiresAt}: stuck` : `lease until ${lease.expiresAt}`} (tidemark cancel ${name} ends it)\n`,
          );
        }
      }
      return EXIT.ok;
    });
  },
};
