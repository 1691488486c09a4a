#!/usr/bin/env node
import { errorMessage } from '../shared/errors.js';
import { EXIT, exitCodeFor, exitQuietlyOnClosedPipe, table } from './common.js';
import { commands } from './commands/index.js';

function help(): string {
  const rows = Object.entries(commands).map(([name, c]) => ({ command: name, what: c.summary }));
  return `tidemark — serverless ELT with SCD Type 2 history\n\nusage: tidemark <command> [options]\n\n${table(rows, ['command', 'what'])}\n\nExit codes: 0 success, 1 the run failed, 2 usage or configuration error.\n`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(help());
    return name ? EXIT.ok : EXIT.usage;
  }
  const cmd = commands[name];
  if (!cmd) {
    process.stderr.write(`unknown command ${JSON.stringify(name)}\n\n${help()}`);
    return EXIT.usage;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`usage: ${cmd.usage}\n${cmd.summary}\n`);
    return EXIT.ok;
  }
  try {
    return await cmd.run(rest);
  } catch (err) {
    process.stderr.write(`tidemark ${name}: ${errorMessage(err)}\n`);
    return exitCodeFor(err);
  }
}

exitQuietlyOnClosedPipe(process.stdout);
exitQuietlyOnClosedPipe(process.stderr);

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`tidemark: ${errorMessage(err)}\n`);
    process.exit(EXIT.failed);
  },
);
