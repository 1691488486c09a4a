import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { FUNCTION_TIMEOUT, functionTimeoutMs, stageClaimTtlMs } from '../../../shared/engine/stage-timeout.js';

describe('stage claim derived from functionTimeout', () => {
  it('the default is the functionTimeout host.json ships, so the two cannot drift', () => {
    const host = JSON.parse(readFileSync(new URL('../../../host.json', import.meta.url), 'utf8')) as { functionTimeout: string };
    expect(host.functionTimeout).toBe(FUNCTION_TIMEOUT);
    expect(functionTimeoutMs({})).toBe(30 * 60_000);
  });

  it('outlasts the timeout, also when the app setting overrides it', () => {
    expect(stageClaimTtlMs({})).toBe(31 * 60_000);
    expect(stageClaimTtlMs({ AzureFunctionsJobHost__functionTimeout: '01:00:00' })).toBe(61 * 60_000);
    expect(functionTimeoutMs({ AzureFunctionsJobHost__functionTimeout: '1.02:00:00' })).toBe(26 * 3_600_000);
  });

  it('names the setting and the expected form when it cannot be read', () => {
    expect(() => functionTimeoutMs({ AzureFunctionsJobHost__functionTimeout: '30m' })).toThrow(/AzureFunctionsJobHost__functionTimeout.*hh:mm:ss/);
  });
});
