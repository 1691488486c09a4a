import { acknowledge } from '../../shared/validate/hold.js';
import { EXIT, UsageError, parse, printJson, withStack, type Command } from '../common.js';

const usage = 'tidemark ack <pipeline> [--run ID] [--project DIR] [--json]';

export const ackCommand: Command = {
  summary: 'acknowledge failed validations so a held pipeline runs again',
  usage,
  async run(argv) {
    const { values, positionals } = parse(argv, { run: { type: 'string' } }, usage);
    const name = positionals[0];
    if (!name || positionals.length > 1) throw new UsageError(`name one pipeline\nusage: ${usage}`);
    return withStack(values, async (stack) => {
      const acked = await acknowledge(stack.ctx, { pipeline: name, ...(values.run ? { runId: values.run } : {}), by: process.env.USER ?? 'cli' });
      if (values.json) printJson({ pipeline: name, acknowledged: acked });
      else process.stdout.write(acked.length ? `${name}: acknowledged ${acked.join(', ')}\n` : `${name}: no failed validation to acknowledge\n`);
      return EXIT.ok;
    });
  },
};
