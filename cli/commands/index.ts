import type { Command } from '../common.js';
import { demoCommand } from './demo.js';
import { runCommand } from './run.js';
import { schemaCommand } from './schema.js';
import { sqlCommand } from './sql.js';
import { statusCommand } from './status.js';
import { uiCommand } from './ui.js';

/** Every `tidemark <command>`; one file per command under cli/commands/. */
export const commands: Record<string, Command> = {
  run: runCommand,
  status: statusCommand,
  demo: demoCommand,
  sql: sqlCommand,
  schema: schemaCommand,
  ui: uiCommand,
};
