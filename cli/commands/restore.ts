import { previewRestore, restoreBackup, type RestoreResult } from '../../shared/rollback/backups.js';
import { EXIT, UsageError, parse, printJson, withStack, type Command } from '../common.js';
import { confirm } from '../confirm.js';

const usage = 'tidemark restore <pipeline> --backup <id> [--dry-run] [--yes] [--project DIR] [--json]';

function describePlan(p: RestoreResult): string {
  return (
    `${p.pipeline}: restoring backup ${p.backupId} replaces every row of the target with the ${p.rows} row(s) of ${p.table};\n` +
    `  runs whose effect goes (marked rolled_back): ${p.undone.length ? p.undone.join(', ') : 'none'}\n` +
    `  the checkpoint goes back to ${p.checkpointRunId ?? 'nothing (the next run is a first load)'}\n`
  );
}

export const restoreCommand: Command = {
  summary: 'replace the target with a backup and rewind the checkpoint to match; shows what it will do and asks first',
  usage,
  async run(argv) {
    const { values, positionals } = parse(argv, { backup: { type: 'string' }, 'dry-run': { type: 'boolean' }, yes: { type: 'boolean', short: 'y' } }, usage);
    const name = positionals[0];
    if (!name || positionals.length > 1 || !values.backup) throw new UsageError(`name one pipeline and --backup\nusage: ${usage}`);
    const backupId = values.backup;
    return withStack(values, async (stack) => {
      const plan = await previewRestore(stack.ctx, { pipeline: name, backupId });
      if (values['dry-run']) {
        if (values.json) printJson({ ...plan, dryRun: true });
        else process.stdout.write(`${describePlan(plan)}(dry run: nothing was changed)\n`);
        return EXIT.ok;
      }
      if (!values.json && !values.yes) process.stdout.write(describePlan(plan));
      if (!(await confirm(`restore ${name} from ${backupId}`, { yes: values.yes }))) {
        process.stdout.write('not restored\n');
        return EXIT.failed;
      }
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
