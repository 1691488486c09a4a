import type { Command } from '../common.js';
import { demoCommand } from './demo.js';
import { devCommand } from './dev.js';
import { doctorCommand } from './doctor.js';
import { runCommand } from './run.js';
import { runsCommand } from './runs.js';
import { schemaCommand } from './schema.js';
import { sqlCommand } from './sql.js';
import { statusCommand } from './status.js';
import { ackCommand } from './ack.js';
import { cancelCommand } from './cancel.js';
import { backupsCommand } from './backups.js';
import { quarantineCommand } from './quarantine.js';
import { queryCommand } from './query.js';
import { restoreCommand } from './restore.js';
import { rollbackCommand } from './rollback.js';
import { reconcileCommand } from './reconcile.js';
import { uiCommand } from './ui.js';
import { initCommand } from './init.js';
import { planCommand } from './plan.js';

/** Every `tidemark <command>`; one file per command under cli/commands/. */
export const commands: Record<string, Command> = {
  run: runCommand,
  runs: runsCommand,
  status: statusCommand,
  demo: demoCommand,
  sql: sqlCommand,
  rollback: rollbackCommand,
  reconcile: reconcileCommand,
  backups: backupsCommand,
  restore: restoreCommand,
  ack: ackCommand,
  cancel: cancelCommand,
  quarantine: quarantineCommand,
  query: queryCommand,
  doctor: doctorCommand,
  dev: devCommand,
  schema: schemaCommand,
  ui: uiCommand,
  init: initCommand,
  plan: planCommand,
};
