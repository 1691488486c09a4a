import { describe, expect, it } from 'vitest';
import { completeWindow, lowerBound, planWindow, type WindowInput } from '../../../shared/extract/window.js';

const base: WindowInput = { mode: 'timestamp', column: 'ModifiedAt', lagMs: 0, saved: null, runMode: 'incremental' };

describe('extract windows', () => {
  it('moves the saved watermark back by the lag', () => {
    expect(lowerBound('2026-01-01T00:10:00.000Z', 5 * 60_000)).toBe('2026-01-01T00:05:00.000Z');
    expect(lowerBound('2026-01-01T00:10:00.123456Z', 0)).toBe('2026-01-01T00:10:00.123456Z');
    expect(lowerBound(null, 60_000)).toBeNull();
    expect(() => lowerBound('yesterday', 1)).toThrow(/not a timestamp/);
  });

  it('reads everything on a full mode or a full run', () => {
    expect(planWindow({ ...base, mode: 'full' })).toEqual({ from: null, fullRead: true });
    expect(planWindow({ ...base, saved: '2026-01-01T00:00:00.000Z', runMode: 'full' })).toEqual({ from: null, fullRead: true });
  });

  it('commits the captured upper bound, or keeps the watermark when nothing is new', () => {
    const saved = '2026-01-01T00:00:00.000Z';
    const w = completeWindow({ ...base, saved, lagMs: 60_000 }, '2026-01-01T01:00:00.000000Z');
    expect(w).toEqual({ mode: 'timestamp', column: 'ModifiedAt', from: '2025-12-31T23:59:00.000Z', to: '2026-01-01T01:00:00.000000Z', next: '2026-01-01T01:00:00.000000Z' });
    expect(completeWindow({ ...base, saved }, null)).toMatchObject({ to: null, next: saved });
  });

  it('never moves the watermark backwards (source clock behind the saved one)', () => {
    const saved = '2026-01-01T02:00:00.000Z';
    expect(completeWindow({ ...base, saved }, '2026-01-01T01:00:00.000Z').next).toBe(saved);
  });

  it('bounds a backfill by its own range and leaves the watermark alone', () => {
    const saved = '2026-03-01T00:00:00.000Z';
    const w = completeWindow(
      { ...base, saved, runMode: 'backfill', backfill: { from: '2026-01-01T00:00:00Z', to: '2026-02-01T00:00:00Z' } },
      '2026-03-01T00:00:00.000000Z',
    );
    expect(w).toMatchObject({ from: '2026-01-01T00:00:00Z', to: '2026-02-01T00:00:00Z', next: saved });
  });

  it('full mode has no watermark at all', () => {
    expect(completeWindow({ ...base, mode: 'full' }, '2026-01-01T00:00:00Z')).toEqual({ mode: 'full', column: 'ModifiedAt', from: null, to: null, next: null });
  });
});
