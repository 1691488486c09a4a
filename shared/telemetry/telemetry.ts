/**
 * The telemetry port: custom events and metrics with the pipeline and run id as dimensions.
 * The engine only talks to this interface; shared/telemetry/otel.ts implements it on
 * OpenTelemetry (exported to Application Insights by @azure/monitor-opentelemetry), and the
 * no-op default keeps telemetry off when no connection string is set.
 */

/**
 * Turns Azure Monitor on (shared/telemetry/otel.ts). Here, not there, so code that only reads
 * the setting (doctor) does not load the OpenTelemetry API at every CLI start.
 */
export const CONNECTION_STRING_SETTING = 'APPLICATIONINSIGHTS_CONNECTION_STRING';

export type TelemetryEventName =
  | 'RunStarted'
  | 'RunSucceeded'
  | 'RunFailed'
  | 'ValidationFailed'
  | 'SnapshotGap'
  | 'NullChangeColumn'
  | 'CaptureInstance'
  | 'CaptureDrift'
  | 'MessagePoisoned'
  | 'WebhookFailed';

export type TelemetryMetricName =
  /** Rows per operation (dimension `operation`: extracted, inserted, updated, deleted, unchanged, stale, quarantined). */
  | 'tidemark.rows'
  /** Milliseconds per stage (dimension `stage`). */
  | 'tidemark.stage.duration'
  /** Seconds between the end of a successful run and the newest source change it loaded. */
  | 'tidemark.freshness.lag';

export type Dimensions = Record<string, string>;

export interface Telemetry {
  event(name: TelemetryEventName, dims: Dimensions, measurements?: Record<string, number>): void;
  metric(name: TelemetryMetricName, value: number, dims: Dimensions): void;
}

export const noopTelemetry: Telemetry = {
  event: () => undefined,
  metric: () => undefined,
};

/** Telemetry of a context that may predate the port (older call sites build contexts without it). */
export function telemetryOf(ctx: { telemetry?: Telemetry }): Telemetry {
  return ctx.telemetry ?? noopTelemetry;
}

/** Records every call; for tests of code that emits telemetry without an OpenTelemetry pipeline. */
export function recordingTelemetry(): Telemetry & {
  events: Array<{ name: TelemetryEventName; dims: Dimensions; measurements: Record<string, number> }>;
  metrics: Array<{ name: TelemetryMetricName; value: number; dims: Dimensions }>;
} {
  const events: Array<{ name: TelemetryEventName; dims: Dimensions; measurements: Record<string, number> }> = [];
  const metrics: Array<{ name: TelemetryMetricName; value: number; dims: Dimensions }> = [];
  return {
    events,
    metrics,
    event: (name, dims, measurements = {}) => void events.push({ name, dims, measurements }),
    metric: (name, value, dims) => void metrics.push({ name, value, dims }),
  };
}
