/**
 * Error taxonomy shared by every stage. The functions/ layer maps these to the host's
 * behaviour: a TerminalError fails the run and is swallowed (no retry, the input will not get
 * better by itself); anything else is rethrown so the host retries and, after maxDequeueCount,
 * moves the message to the poison queue.
 */
import { redact } from './telemetry/redact.js';

export class TidemarkError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The input or state is wrong; retrying cannot help. */
export class TerminalError extends TidemarkError {}

/** A configuration file is invalid. `file` and `path` point at the offending field. */
export class ConfigError extends TerminalError {
  constructor(
    readonly file: string,
    readonly path: string,
    readonly problem: string,
    options?: { cause?: unknown },
  ) {
    super(`${file}${path ? ` at ${path}` : ''}: ${problem}`, options);
  }
}

/** A field the schema accepts but this release does not implement yet. */
export class NotSupportedError extends TerminalError {
  constructor(readonly field: string, detail?: string) {
    super(`not supported yet: ${field}${detail ? ` (${detail})` : ''}`);
  }
}

/** Another run of the pipeline holds the lease. */
export class ConflictError extends TidemarkError {}

/** A named thing does not exist (pipeline, run, backup). */
export class NotFoundError extends TerminalError {}

/** A value given by the caller (CLI option, HTTP field) is malformed; the message says the form expected. */
export class InvalidInputError extends TerminalError {}

/** Failure of something outside us that may heal (network, throttling, a locked file). */
export class TransientError extends TidemarkError {}

/**
 * Another delivery of the same unit of work holds its stage claim. Retrying it on the queue's
 * short schedule would only burn the message's dequeue count while a healthy holder works (and
 * poison a run that is fine), so the trigger defers a fresh copy until the claim would expire:
 * by then the holder finished (the copy finds the stage done) or died (the copy takes over).
 */
export class StageBusyError extends TransientError {
  constructor(
    message: string,
    /** How long until the holder's claim expires. */
    readonly retryAfterMs: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function isTerminal(err: unknown): boolean {
  return err instanceof TerminalError;
}

/** An error as text for logs, run records and answers: always redacted (a driver may echo its connection string). */
export function errorMessage(err: unknown): string {
  return redact(err instanceof Error ? err.message : String(err));
}
