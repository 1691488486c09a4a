import { parseArgs, type ParseArgsConfig } from 'node:util';
import { resolve } from 'node:path';
import { ConfigError, errorMessage, InvalidInputError, NotFoundError, NotSupportedError } from '../shared/errors.js';
import { openLocalStack, type LocalStack } from '../shared/local/stack.js';
import { chooseLogFormat, createLogger, lineSink, type LogFormat, type Logger, type LogLevel } from '../shared/telemetry/logger.js';

export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

export class UsageError extends Error {}

export interface Command {
  summary: string;
  usage: string;
  run(argv: string[]): Promise<number>;
}

export function parse<T extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: T, usage: string) {
  try {
    return parseArgs({ args: argv, options: { ...options, project: { type: 'string' }, json: { type: 'boolean' }, 'log-format': { type: 'string' } }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(`${errorMessage(err)}\nusage: ${usage}`);
  }
}

/** Progress goes to stderr on a terminal only: quiet under --json, in CI and in pipes. */
export function progress(json: boolean | undefined): (line: string) => void {
  const on = !json && process.stderr.isTTY === true && !process.env.CI;
  return on ? (line) => process.stderr.write(`${line}\n`) : () => undefined;
}

export function projectDir(values: { project?: string | undefined }): string {
  return resolve(values.project ?? process.env.TIDEMARK_PROJECT_DIR ?? '.');
}

interface CommonValues {
  project?: string | undefined;
  json?: boolean | undefined;
  'log-format'?: string | undefined;
}

/**
 * The CLI's logger on stderr: readable lines, or JSON lines with --log-format json or in CI.
 * TIDEMARK_LOG_LEVEL sets the level; the default keeps warnings and errors only.
 */
export function cliLogger(values: CommonValues, defaultLevel: LogLevel = values.json ? 'error' : 'warn'): Logger {
  const asked = values['log-format'];
  if (asked !== undefined && asked !== 'json' && asked !== 'text') throw new UsageError(`--log-format must be json or text, got ${JSON.stringify(asked)}`);
  const level = (process.env.TIDEMARK_LOG_LEVEL as LogLevel | undefined) ?? defaultLevel;
  return createLogger(lineSink(chooseLogFormat(asked as LogFormat | undefined, process.env), level));
}

export async function withStack<T>(values: CommonValues, fn: (s: LocalStack) => Promise<T>): Promise<T> {
  const stack = await openLocalStack({ projectDir: projectDir(values), log: cliLogger(values) });
  try {
    return await fn(stack);
  } finally {
    await stack.close();
  }
}

/** Config, usage and not-found problems exit 2 with the message; anything else exits 1. */
export function exitCodeFor(err: unknown): number {
  if (err instanceof UsageError || err instanceof InvalidInputError || err instanceof ConfigError || err instanceof NotFoundError || err instanceof NotSupportedError) return EXIT.usage;
  return EXIT.failed;
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function table(rows: ReadonlyArray<Record<string, unknown>>, columns: readonly string[]): string {
  const cells = rows.map((r) => columns.map((c) => (r[c] === undefined || r[c] === null ? '' : String(r[c]))));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i]!.length)));
  const line = (vals: readonly string[]) => vals.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(columns), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n');
}

/**
 * `tidemark status | head` closes the pipe early: that is the reader's choice, not an error, so
 * the process exits quietly (0) instead of printing an EPIPE stack trace.
 */
export function exitQuietlyOnClosedPipe(stream: Pick<NodeJS.WriteStream, 'on'>, exit: (code: number) => void = (c) => process.exit(c)): void {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') exit(EXIT.ok);
    else throw err;
  });
}
