import { ManagedIdentityCredential } from '@azure/identity';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../shared/errors.js';
import { azureMonitorExporterOptions, startAzureMonitor } from '../../../shared/telemetry/otel.js';
import { noopTelemetry } from '../../../shared/telemetry/telemetry.js';
import { webhookPayload, type RunNotice } from '../../../shared/telemetry/webhooks.js';

describe('telemetry switch', () => {
  it('is off (the no-op port, Azure Monitor never loaded) when APPLICATIONINSIGHTS_CONNECTION_STRING is unset or empty', async () => {
    expect(await startAzureMonitor({})).toBe(noopTelemetry);
    expect(await startAzureMonitor({ APPLICATIONINSIGHTS_CONNECTION_STRING: '' })).toBe(noopTelemetry);
  });

  it('signs ingestion with the managed identity when APPLICATIONINSIGHTS_AUTHENTICATION_STRING says Authorization=AAD (what infra/main.bicep sets)', () => {
    const cs = 'InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=https://westeurope-5.in.applicationinsights.azure.com/';
    expect(azureMonitorExporterOptions({ APPLICATIONINSIGHTS_CONNECTION_STRING: cs })).toEqual({ connectionString: cs });
    const system = azureMonitorExporterOptions({ APPLICATIONINSIGHTS_CONNECTION_STRING: cs, APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=AAD' })!;
    expect(system.connectionString).toBe(cs);
    expect(system.credential).toBeInstanceOf(ManagedIdentityCredential);
    expect((system.credential as unknown as { clientId?: string }).clientId).toBeUndefined();
    const user = azureMonitorExporterOptions({ APPLICATIONINSIGHTS_CONNECTION_STRING: cs, APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=AAD;ClientId=11111111-2222-3333-4444-555555555555' })!;
    expect((user.credential as unknown as { clientId?: string }).clientId).toBe('11111111-2222-3333-4444-555555555555');
    expect(() => azureMonitorExporterOptions({ APPLICATIONINSIGHTS_CONNECTION_STRING: cs, APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=Key' })).toThrow(ConfigError);
    expect(() => azureMonitorExporterOptions({ APPLICATIONINSIGHTS_CONNECTION_STRING: cs, APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=Key' })).toThrow(/APPLICATIONINSIGHTS_AUTHENTICATION_STRING must be Authorization=AAD/);
  });
});

describe('webhook payloads', () => {
  const n: RunNotice = {
    pipeline: 'crm_accounts',
    runId: '20261124T021500Z-7f3a',
    status: 'failed',
    mode: 'incremental',
    trigger: 'schedule',
    counts: { extracted: 5, inserted: 1, updated: 2, deleted: 0, unchanged: 2, stale: 0, quarantined: 0, type1: 0 },
    error: 'extract: connection refused',
    failedChecks: [],
  };
  it('Slack gets { text } only', () => {
    expect(webhookPayload('slack', n)).toEqual({
      text: '❌ tidemark: crm_accounts run 20261124T021500Z-7f3a failed\nincremental run (schedule): extracted 5, inserted 1, updated 2, deleted 0, unchanged 2\nerror: extract: connection refused',
    });
  });
  it('Teams gets a message with an Adaptive Card and the same text', () => {
    const p = webhookPayload('teams', n) as any;
    expect(p.type).toBe('message');
    expect(p.text).toBe((webhookPayload('slack', n) as any).text);
    expect(p.attachments[0].content.type).toBe('AdaptiveCard');
    expect(p.attachments[0].content.body[1].facts).toContainEqual({ title: 'Error', value: 'extract: connection refused' });
  });
});
