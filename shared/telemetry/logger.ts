/**
 * Structured log lines. Every line of a run carries its pipeline and run id, so that one run can
 * be followed through the stages in Application Insights (customDimensions) or a terminal.
 */
import { redact, redactValue } from './redact.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface Logger {
  log(level: LogLevel, message: string, props?: Record<string, unknown>): void;
  child(props: Record<string, unknown>): Logger;
}

export type LogSink = (level: LogLevel, message: string, props: Record<string, unknown>) => void;

export function createLogger(sink: LogSink, base: Record<string, unknown> = {}): Logger {
  return {
    log(level, message, props) {
      // Every sink (terminal, Functions context, tests) gets redacted text: secrets never reach a log.
      sink(level, redact(message), redactValue({ ...base, ...props }));
    },
    child(props) {
      return createLogger(sink, { ...base, ...props });
    },
  };
}

export const silentLogger: Logger = createLogger(() => undefined);

/** One JSON object a line on stderr: machine-readable, and quiet on stdout for `--json`. */
export function jsonLineSink(minLevel: LogLevel = 'info'): LogSink {
  const order: LogLevel[] = ['debug', 'info', 'warn', 'error'];
  return (level, message, props) => {
    if (order.indexOf(level) < order.indexOf(minLevel)) return;
    process.stderr.write(`${JSON.stringify({ t: new Date().toISOString(), level, message, ...props })}\n`);
  };
}

export type LogFormat = 'json' | 'text';

const scalar = (v: unknown): string => {
  if (typeof v === 'string') return /[\s"=]/.test(v) ? JSON.stringify(v) : v;
  if (v instanceof Error) return JSON.stringify(v.message);
  return typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v);
};

/** The text form of one log line: `HH:MM:SS level message key=value …` (UTC time). */
export function formatTextLine(at: Date, level: LogLevel, message: string, props: Record<string, unknown>): string {
  const pairs = Object.entries(props)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${scalar(v)}`);
  return `${at.toISOString().slice(11, 19)} ${level.padEnd(5)} ${message}${pairs.length ? `  ${pairs.join(' ')}` : ''}`;
}

/** Readable lines on stderr for a person at a terminal; the same events as `jsonLineSink`. */
export function textLineSink(minLevel: LogLevel = 'info'): LogSink {
  const order: LogLevel[] = ['debug', 'info', 'warn', 'error'];
  return (level, message, props) => {
    if (order.indexOf(level) < order.indexOf(minLevel)) return;
    process.stderr.write(`${formatTextLine(new Date(), level, message, props)}\n`);
  };
}

/** JSON lines when asked for or in CI (CI set and not "false"/"0"), where a collector reads them; text otherwise. */
export function chooseLogFormat(asked: LogFormat | undefined, env: NodeJS.ProcessEnv): LogFormat {
  if (asked) return asked;
  const ci = env.CI !== undefined && env.CI !== '' && env.CI.toLowerCase() !== 'false' && env.CI !== '0';
  return ci ? 'json' : 'text';
}

export function lineSink(format: LogFormat, minLevel: LogLevel): LogSink {
  return format === 'json' ? jsonLineSink(minLevel) : textLineSink(minLevel);
}
