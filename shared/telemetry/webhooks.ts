import type { PipelineConfig } from '../config/schema.js';
import { errorMessage } from '../errors.js';
import type { RunRecord } from '../state/runs.js';
import type { ValidationResult } from '../state/validations.js';
import type { Logger } from './logger.js';
import type { Telemetry } from './telemetry.js';
import { registerSecret } from './redact.js';

export type WebhookFormat = 'slack' | 'teams';

export interface RunNotice {
  pipeline: string;
  runId: string;
  status: RunRecord['status'];
  mode: RunRecord['mode'];
  trigger: RunRecord['trigger'];
  counts: RunRecord['counts'];
  error?: string;
  failedChecks: string[];
  finishedAt?: string;
}

export function noticeOf(run: RunRecord, validations: readonly ValidationResult[]): RunNotice {
  return {
    pipeline: run.pipeline,
    runId: run.runId,
    status: run.status,
    mode: run.mode,
    trigger: run.trigger,
    counts: run.counts,
    ...(run.error ? { error: run.error } : {}),
    failedChecks: validations.filter((v) => !v.passed).map((v) => v.check),
    ...(run.finishedAt ? { finishedAt: run.finishedAt } : {}),
  };
}

export function noticeText(n: RunNotice): string {
  const ok = n.status === 'succeeded';
  const c = n.counts;
  const lines = [
    `${ok ? '✅' : '❌'} tidemark: ${n.pipeline} run ${n.runId} ${n.status.replace('_', ' ')}`,
    `${n.mode} run (${n.trigger}): extracted ${c.extracted}, inserted ${c.inserted}, updated ${c.updated}, deleted ${c.deleted}, unchanged ${c.unchanged}`,
  ];
  if (n.failedChecks.length) lines.push(`failed checks: ${n.failedChecks.join(', ')}`);
  if (n.error) lines.push(`error: ${n.error}`);
  return lines.join('\n');
}

/**
 * The JSON body per format. Slack incoming webhooks take `{ text }`. Teams takes a message with
 * an Adaptive Card attachment (the shape Teams Workflows "post to a channel when a webhook
 * request is received" expects); `text` is kept as well so older Office 365 connectors show it.
 */
export function webhookPayload(format: WebhookFormat, n: RunNotice): unknown {
  const text = noticeText(n);
  if (format === 'slack') return { text };
  const facts = [
    { title: 'Pipeline', value: n.pipeline },
    { title: 'Run', value: n.runId },
    { title: 'Status', value: n.status },
    { title: 'Rows', value: `+${n.counts.inserted} ~${n.counts.updated} -${n.counts.deleted} =${n.counts.unchanged}` },
    ...(n.failedChecks.length ? [{ title: 'Failed checks', value: n.failedChecks.join(', ') }] : []),
    ...(n.error ? [{ title: 'Error', value: n.error }] : []),
  ];
  return {
    type: 'message',
    text,
    attachments: [
      {
        contentType: 'application/vnd.microsoft.card.adaptive',
        content: {
          $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
          type: 'AdaptiveCard',
          version: '1.4',
          body: [
            { type: 'TextBlock', size: 'Medium', weight: 'Bolder', text: text.split('\n')[0], wrap: true },
            { type: 'FactSet', facts },
          ],
        },
      },
    ],
  };
}

export interface WebhookOptions {
  attempts: number;
  /** First retry delay; doubles per attempt. */
  baseDelayMs: number;
  timeoutMs: number;
  fetch: typeof fetch;
}

export function webhookOptions(env: NodeJS.ProcessEnv): WebhookOptions {
  const n = Number(env.TIDEMARK_WEBHOOK_RETRY_DELAY_MS ?? 2000);
  return { attempts: 4, baseDelayMs: Number.isFinite(n) && n >= 0 ? n : 2000, timeoutMs: 10_000, fetch: globalThis.fetch };
}

/** 429 and 5xx may heal; other 4xx mean the URL or payload is wrong and retrying cannot help. */
function retryable(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/** POSTs with retries; resolves to what happened, never throws (a notification must not fail a run). */
export async function postWebhook(url: string, body: unknown, o: WebhookOptions): Promise<{ ok: boolean; attempts: number; detail: string }> {
  let detail = '';
  for (let attempt = 1; attempt <= o.attempts; attempt++) {
    try {
      const res = await o.fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(o.timeoutMs),
      });
      if (res.ok) return { ok: true, attempts: attempt, detail: `HTTP ${res.status}` };
      detail = `HTTP ${res.status}`;
      if (!retryable(res.status)) return { ok: false, attempts: attempt, detail };
    } catch (err) {
      detail = errorMessage(err);
    }
    if (attempt < o.attempts) await new Promise((r) => setTimeout(r, o.baseDelayMs * 2 ** (attempt - 1)));
  }
  return { ok: false, attempts: o.attempts, detail };
}

/**
 * Sends the pipeline's webhooks that subscribe to this outcome. The URL is read from the app
 * setting the config names and never logged (a Slack/Teams webhook URL is a credential).
 */
export async function notifyRunEnded(
  p: PipelineConfig,
  n: RunNotice,
  deps: { env: NodeJS.ProcessEnv; log: Logger; telemetry: Telemetry; options?: WebhookOptions },
): Promise<void> {
  const outcome = n.status === 'succeeded' ? 'success' : 'failure';
  const hooks = p.notifications.webhooks.filter((w) => w.on.includes(outcome));
  const o = deps.options ?? webhookOptions(deps.env);
  for (const w of hooks) {
    const dims = { pipeline: n.pipeline, runId: n.runId, setting: w.setting };
    const url = deps.env[w.setting];
    registerSecret(url);
    if (!url) {
      deps.log.log('error', `webhook not sent: app setting ${w.setting} is not set (pipelines/${p.name}.yaml notifications.webhooks)`, dims);
      deps.telemetry.event('WebhookFailed', { ...dims, reason: 'setting not set' });
      continue;
    }
    const r = await postWebhook(url, webhookPayload(w.format, n), o);
    if (r.ok) deps.log.log('info', `webhook ${w.setting} sent (${r.detail})`, dims);
    else {
      deps.log.log('error', `webhook ${w.setting} failed after ${r.attempts} attempt(s): ${r.detail}`, dims);
      deps.telemetry.event('WebhookFailed', { ...dims, reason: r.detail }, { attempts: r.attempts });
    }
  }
}
