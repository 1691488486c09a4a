import { describe, expect, it } from 'vitest';
import { dependencyWindowStart } from '../../../shared/engine/dependencies.js';

describe('dependencyWindowStart', () => {
  const at = (s: string) => new Date(s);
  it('is the latest tick of the schedule at or before the run start (UTC), so a late timer keeps its tick', () => {
    expect(dependencyWindowStart('0 */15 * * * *', at('2026-01-01T10:17:03Z'), null).toISOString()).toBe('2026-01-01T10:15:00.000Z');
    expect(dependencyWindowStart('0 */15 * * * *', at('2026-01-01T10:15:00Z'), null).toISOString()).toBe('2026-01-01T10:15:00.000Z');
    expect(dependencyWindowStart('0 0 2 * * *', at('2026-01-01T01:59:59Z'), null).toISOString()).toBe('2025-12-31T02:00:00.000Z');
  });
  it('without a schedule it is the end of the last successful run, or the epoch when never loaded', () => {
    expect(dependencyWindowStart(undefined, at('2026-01-01T10:00:00Z'), '2026-01-01T08:00:00.000Z').toISOString()).toBe('2026-01-01T08:00:00.000Z');
    expect(dependencyWindowStart(undefined, at('2026-01-01T10:00:00Z'), null).getTime()).toBe(0);
  });
});
