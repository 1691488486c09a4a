import { isTerminal } from './errors.js';

export interface RetryPolicy {
  attempts: number;
  backoff: 'exponential' | 'fixed';
  initialDelayMs: number;
}

/** Jittered backoff (full jitter) so that many instances retrying an outage spread out. */
export function backoffDelay(policy: RetryPolicy, attempt: number, random: () => number = Math.random): number {
  const base = policy.backoff === 'exponential' ? policy.initialDelayMs * 2 ** (attempt - 1) : policy.initialDelayMs;
  return Math.round(base / 2 + (random() * base) / 2);
}

/** Retries what may heal; a TerminalError goes straight through. */
export async function withRetry<T>(
  policy: RetryPolicy,
  fn: (attempt: number) => Promise<T>,
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (isTerminal(err) || attempt >= policy.attempts) throw err;
      const delay = backoffDelay(policy, attempt);
      onRetry?.(err, attempt, delay);
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}
