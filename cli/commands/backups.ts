import { listBackups } from '../../shared/rollback/backups.js';
import { EXIT, UsageError, parse, printJson, table, withStack, type Command } from '../common.js';

const usage = 'tidemark backups [<pipeline>] [--project DIR] [--json]';

export const backupsCommand: Command = {
  summary: 'list the target copies taken before full refreshes and first loads',
  usage,
  async run(argv) {
    const { values, positionals } = parse(argv, {}, usage);
    if (positionals.length > 1) throw new UsageError(`at most one pipeline\nusage: ${usage}`);
    return withStack(values, async (stack) => {
      const list = await listBackups(stack.ctx, positionals[0]);
      const rows = list.map((b) => ({
        pipeline: b.pipeline,
        backupId: b.backupId,
        reason: b.reason,
        table: b.table,
        rows: b.rows,
        reflectsRun: b.baseRunId,
        createdAt: b.createdAt,
        expiresAt: b.expiresAt,
        restoredAt: b.restoredAt ?? null,
      }));
      if (values.json) printJson(rows);
      else process.stdout.write(rows.length ? `${table(rows, ['pipeline', 'backupId', 'reason', 'table', 'rows', 'expiresAt', 'restoredAt'])}\n` : 'no backups\n');
      return EXIT.ok;
    });
  },
};
