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
