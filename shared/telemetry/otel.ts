import { ManagedIdentityCredential, type TokenCredential } from '@azure/identity';
import { metrics, type Histogram, type Meter } from '@opentelemetry/api';
import { logs, SeverityNumber, type Logger as OtelLogger } from '@opentelemetry/api-logs';
import { ConfigError } from '../errors.js';
import type { LogLevel, LogSink } from './logger.js';
import { redact, redactValue } from './redact.js';
import { CONNECTION_STRING_SETTING, noopTelemetry, type Dimensions, type Telemetry, type TelemetryMetricName } from './telemetry.js';

/**
 * The attribute @azure/monitor-opentelemetry-exporter turns into an Application Insights
 * customEvents row (exporter 1.0.0-beta.39, utils/constants/applicationinsights.js); numbers in
 * `body.measurements` become the event's customMeasurements.
 */
export const CUSTOM_EVENT_ATTRIBUTE = 'microsoft.custom_event.name';

export const INSTRUMENTATION_NAME = 'tidemark';

/** Telemetry on an OpenTelemetry logger (events) and meter (metrics). */
export function otelTelemetry(logger: OtelLogger, meter: Meter): Telemetry {
  const histograms = new Map<TelemetryMetricName, Histogram>();
  const units: Record<TelemetryMetricName, string> = {
    'tidemark.rows': '{row}',
    'tidemark.stage.duration': 'ms',
    'tidemark.freshness.lag': 's',
  };
  const histogram = (name: TelemetryMetricName): Histogram => {
    let h = histograms.get(name);
    if (!h) {
      h = meter.createHistogram(name, { unit: units[name] });
      histograms.set(name, h);
    }
    return h;
  };
  return {
    event(name, dims, measurements = {}) {
      logger.emit({
        severityNumber: SeverityNumber.INFO,
        body: { measurements },
        attributes: { [CUSTOM_EVENT_ATTRIBUTE]: name, ...redactValue(dims) },
      });
    },
    metric(name, value, dims) {
      histogram(name).record(value, redactValue(dims));
    },
  };
}

/** Log lines as OpenTelemetry log records (App Insights traces), with their props as attributes. */
export function otelLogSink(logger: OtelLogger): LogSink {
  const severity: Record<LogLevel, SeverityNumber> = {
    debug: SeverityNumber.DEBUG,
    info: SeverityNumber.INFO,
    warn: SeverityNumber.WARN,
    error: SeverityNumber.ERROR,
  };
  return (level, message, props) => {
    logger.emit({ severityNumber: severity[level], severityText: level.toUpperCase(), body: redact(message), attributes: flatten(redactValue(props)) });
  };
}

function flatten(props: Record<string, unknown>): Dimensions {
  const out: Dimensions = {};
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined) continue;
    out[k] = typeof v === 'string' ? v : JSON.stringify(v);
  }
  return out;
}

/** `Authorization=AAD` (infra/main.bicep sets it), optionally `;ClientId=<user-assigned identity>`: the Functions convention. */
export const AUTHENTICATION_STRING_SETTING = 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING';

/**
 * The exporter's options. With Entra ID authentication the app's managed identity signs the
 * ingestion (the Monitoring Metrics Publisher role of infra/main.bicep), as the Functions host
 * does with the same setting; the connection string then only says where to send.
 */
export function azureMonitorExporterOptions(env: NodeJS.ProcessEnv): { connectionString: string; credential?: TokenCredential } | undefined {
  const connectionString = env[CONNECTION_STRING_SETTING];
  if (!connectionString) return undefined;
  const auth = env[AUTHENTICATION_STRING_SETTING];
  if (!auth) return { connectionString };
  const parts = new Map(auth.split(';').filter((p) => p.trim()).map((p) => [p.split('=')[0]!.trim().toLowerCase(), p.slice(p.indexOf('=') + 1).trim()] as const));
  if (parts.get('authorization')?.toUpperCase() !== 'AAD') {
    throw new ConfigError('settings', AUTHENTICATION_STRING_SETTING, `${AUTHENTICATION_STRING_SETTING} must be Authorization=AAD (optionally ;ClientId=<user-assigned identity>), got ${JSON.stringify(auth)}`);
  }
  const clientId = parts.get('clientid');
  return { connectionString, credential: clientId ? new ManagedIdentityCredential({ clientId }) : new ManagedIdentityCredential() };
}

let started: Telemetry | undefined;

/**
 * Starts Azure Monitor once per process when APPLICATIONINSIGHTS_CONNECTION_STRING is set;
 * without it, telemetry is off (the no-op port) and nothing is loaded. The exporter is loaded
 * lazily so the CLI and tests never pay for it.
 */
export async function startAzureMonitor(env: NodeJS.ProcessEnv = process.env): Promise<Telemetry> {
  const options = azureMonitorExporterOptions(env);
  if (!options) return noopTelemetry;
  if (started) return started;
  const { useAzureMonitor } = await import('@azure/monitor-opentelemetry');
  useAzureMonitor({ azureMonitorExporterOptions: options });
  started = otelTelemetry(logs.getLogger(INSTRUMENTATION_NAME), metrics.getMeter(INSTRUMENTATION_NAME));
  return started;
}
