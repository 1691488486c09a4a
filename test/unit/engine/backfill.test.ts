import { describe, expect, it } from 'vitest';
import { MAX_BACKFILL_WINDOWS, splitBackfill } from '../../../shared/engine/backfill.js';

describe('splitBackfill', () => {
  it('splits from..to into adjacent windows, the last one shorter', () => {
    expect(splitBackfill('2026-01-01T00:00:00Z', '2026-01-03T12:00:00Z', '1d')).toEqual([
      { from: '2026-01-01T00:00:00.000Z', to: '2026-01-02T00:00:00.000Z' },
      { from: '2026-01-02T00:00:00.000Z', to: '2026-01-03T00:00:00.000Z' },
      { from: '2026-01-03T00:00:00.000Z', to: '2026-01-03T12:00:00.000Z' },
    ]);
  });
  it('refuses an empty range and too many windows, naming the fix', () => {
    expect(() => splitBackfill('2026-01-02T00:00:00Z', '2026-01-01T00:00:00Z', '1d')).toThrow(/must be after/);
    expect(() => splitBackfill('2026-01-01T00:00:00Z', '2027-01-01T00:00:00Z', '1m')).toThrow(
      new RegExp(`at most ${MAX_BACKFILL_WINDOWS}: use a larger windowSize`),
    );
  });
});
