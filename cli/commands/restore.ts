import { restoreBackup } from '../../shared/rollback/backups.js';
import { EXIT, UsageError, parse, printJson, withStack, type Command } from '../common.js';

const usage = 'tidemark restore <pipeline> --backup <id> [--project DIR] [--json]';

export const restoreCommand: Command = {
  summary: 'replace the target with a backup and rewind the checkpoint to match',
  usage,
  async run(argv) {
    const { values, positionals } = parse(argv, { backup: { type: 'string' } }, usage);
    const name = positionals[0];
    if (!name || positionals.length > 1 || !values.backup) throw new UsageError(`name one pipeline and --backup\nusage: ${usage}`);
    const backupId = values.backup;
    return withStack(values, async (stack) => {
      const r = await restoreBackup(stack.ctx, { pipeline: name, backupId, by: 'cli' });
      if (values.json) printJson(r);
      else {
        process.stdout.write(
          `${name}: restored ${r.rows} row(s) from ${r.table}; checkpoint at ${r.checkpointRunId ?? 'nothing (next run is a first load)'}${r.undone.length ? `; runs undone: ${r.undone.join(', ')}` : ''}\n`,
        );
      }
      return EXIT.ok;
    });
  },
};
