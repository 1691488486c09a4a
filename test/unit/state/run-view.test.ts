import { describe, expect, it } from 'vitest';
import { runSummary, shownCounts, validationView } from '../../../shared/state/run-view.js';
import { RUN_STATUSES, newRunRecord } from '../../../shared/state/runs.js';

describe('run view: the one mapping of run records for the CLI, the API and the page', () => {
  const r = newRunRecord({ pipeline: 'acc', runId: '20260101T000000Z-abcd', trigger: 'cli', mode: 'full', now: new Date('2026-01-01T00:00:00Z') });

  it('shows what Table Storage dropped as null, and nothing of the storage fields', () => {
    const s = runSummary({ ...r, counts: { ...r.counts, inserted: 3 } });
    expect(s).toEqual({ runId: r.runId, trigger: 'cli', mode: 'full', status: 'queued', stage: r.stage, createdAt: r.createdAt, finishedAt: null, counts: { ...r.counts, inserted: 3 }, error: null });
    expect(Object.keys(s)).not.toContain('partitionKey');
    expect(runSummary({ ...r, error: 'boom', finishedAt: '2026-01-01T00:01:00Z' })).toMatchObject({ error: 'boom', finishedAt: '2026-01-01T00:01:00Z' });
  });

  it('counts type 1 overwrites as updates, since both change the current row', () => {
    expect(shownCounts({ ...r.counts, updated: 2, type1: 5 }).updated).toBe(7);
    expect(shownCounts({ ...r.counts, updated: 2, type1: undefined as unknown as number }).updated).toBe(2);
  });

  it('keeps a validation detail only when there is one', () => {
    expect(validationView({ check: 'rowCount', passed: true, expected: 3, actual: 3, detail: '' })).toEqual({ check: 'rowCount', passed: true, expected: 3, actual: 3 });
    expect(validationView({ check: 'sample', passed: false, expected: 20, actual: 1, detail: 'id=4 differs' }).detail).toBe('id=4 differs');
  });

  it('lists every status, cancelled included (runs --status takes each)', () => {
    expect(RUN_STATUSES).toEqual(['queued', 'running', 'succeeded', 'failed', 'validation_failed', 'rolled_back', 'cancelled']);
  });
});
