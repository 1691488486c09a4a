import type { Logger } from './logger.js';

/**
 * The validation → telemetry seam. Validation calls `emitValidationFailed`; the telemetry
 * module (App Insights events, alerts) registers its sink with `setValidationTelemetry` and
 * owns everything past this interface.
 */
export interface ValidationFailedEvent {
  pipeline: string;
  runId: string;
  failedChecks: Array<{ check: string; expected: unknown; actual: unknown; detail?: string }>;
  /** True when the pipeline's next run is held until `tidemark ack`. */
  held: boolean;
}

export type ValidationTelemetry = (event: ValidationFailedEvent) => void;

let sink: ValidationTelemetry | undefined;

export function setValidationTelemetry(fn: ValidationTelemetry | undefined): void {
  sink = fn;
}

/** Always logs an error line named `ValidationFailed`; forwards to the registered sink if any. */
export function emitValidationFailed(log: Logger, event: ValidationFailedEvent): void {
  log.log('error', 'ValidationFailed', { event: 'ValidationFailed', ...event });
  try {
    sink?.(event);
  } catch (err) {
    // Telemetry must never change a run's outcome.
    log.log('warn', `validation telemetry sink failed: ${(err as Error).message}`, { pipeline: event.pipeline, runId: event.runId });
  }
}
