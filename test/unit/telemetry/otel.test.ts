import { describe, expect, it } from 'vitest';
import { startAzureMonitor } from '../../../shared/telemetry/otel.js';
import { noopTelemetry } from '../../../shared/telemetry/telemetry.js';
import { webhookPayload, type RunNotice } from '../../../shared/telemetry/webhooks.js';

describe('telemetry switch', () => {
  it('is off (the no-op port, Azure Monitor never loaded) when APPLICATIONINSIGHTS_CONNECTION_STRING is unset or empty', async () => {
    expect(await startAzureMonitor({})).toBe(noopTelemetry);
    expect(await startAzureMonitor({ APPLICATIONINSIGHTS_CONNECTION_STRING: '' })).toBe(noopTelemetry);
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
