import { createInterface } from 'node:readline/promises';
import { UsageError } from './common.js';

export interface ConfirmOptions {
  yes?: boolean | undefined;
  /** Whether a person can answer (stdin and stdout are terminals); injectable for tests. */
  interactive?: boolean;
  ask?: (question: string) => Promise<string>;
}

async function askOnTerminal(question: string): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  try {
    return await rl.question(question);
  } finally {
    rl.close();
  }
}

/**
 * The gate before a command that changes the warehouse: `--yes` goes ahead, a person at a
 * terminal is asked, and a script without `--yes` is refused (exit 2) rather than left waiting.
 */
export async function confirm(what: string, o: ConfirmOptions): Promise<boolean> {
  if (o.yes) return true;
  const interactive = o.interactive ?? (process.stdin.isTTY === true && process.stdout.isTTY === true);
  if (!interactive) throw new UsageError(`${what} changes the warehouse: pass --yes to go ahead without a prompt, or --dry-run to only see what it would do`);
  const answer = await (o.ask ?? askOnTerminal)(`${what}? [y/N] `);
  return /^y(es)?$/i.test(answer.trim());
}
