import { ConfigError } from '../errors.js';

/**
 * How long one stage invocation may run: the Functions host's `functionTimeout` (host.json,
 * "00:30:00"), or its app-setting override `AzureFunctionsJobHost__functionTimeout`. The stage
 * claim is derived from it, so a claim can never lapse while its invocation is still allowed
 * to work (a 600 s claim against a 30 min timeout let a redelivery run beside a slow merge).
 */
export const FUNCTION_TIMEOUT = '00:30:00';

/** Margin past the timeout: the host needs a moment to stop a timed-out invocation. */
const CLAIM_MARGIN_MS = 60_000;

export function functionTimeoutMs(env: NodeJS.ProcessEnv): number {
  const text = env.AzureFunctionsJobHost__functionTimeout ?? FUNCTION_TIMEOUT;
  const m = /^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})$/.exec(text.trim());
  if (!m) {
    throw new ConfigError('app settings', 'AzureFunctionsJobHost__functionTimeout', `expected a timespan like 00:30:00 (hh:mm:ss), got ${JSON.stringify(text)}`);
  }
  const [, days, h, min, s] = m;
  return (((Number(days ?? 0) * 24 + Number(h)) * 60 + Number(min)) * 60 + Number(s)) * 1000;
}

/** The stage claim: the function timeout plus a margin (docs/design.md §5.2). */
export function stageClaimTtlMs(env: NodeJS.ProcessEnv): number {
  return functionTimeoutMs(env) + CLAIM_MARGIN_MS;
}
