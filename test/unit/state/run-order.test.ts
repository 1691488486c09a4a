import { describe, expect, it } from 'vitest';
import { compareRunStart, runIdSecond } from '../../../shared/state/runs.js';

describe('compareRunStart', () => {
  it('orders two runs started within one second by sequence number, not by the id suffix', () => {
    const first = { runId: '20261202T003440Z-ffff', seq: 7 };
    const second = { runId: '20261202T003440Z-0001', seq: 8 };
    expect([second, first].sort(compareRunStart)).toEqual([first, second]);
    expect([first, second].sort((a, b) => compareRunStart(b, a))).toEqual([second, first]);
  });

  it('falls back to the start second, then the id, for runs without a sequence number', () => {
    const old = { runId: '20261202T003439Z-ffff' };
    const legacy = { runId: '20261202T003440Z-0001' };
    const sequenced = { runId: '20261202T003440Z-0002', seq: 1 };
    expect([sequenced, legacy, old].sort(compareRunStart)).toEqual([old, legacy, sequenced]);
  });

  it('reads the start second of an id', () => {
    expect(runIdSecond('20261202T003440Z-491a')).toBe('20261202T003440Z');
    expect(runIdSecond('odd')).toBe('odd');
  });
});
