import { describe, expect, it } from 'vitest';
import { partitionCount, splitKeyRange } from '../../../shared/extract/partitions.js';

describe('key-range partitions', () => {
  it('covers [min, max] exactly once with contiguous ranges', () => {
    const r = splitKeyRange('id', '1', '20000', 4);
    expect(r.map((x) => [x.lo, x.hi, x.last])).toEqual([
      ['1', '5001', false],
      ['5001', '10001', false],
      ['10001', '15001', false],
      ['15001', '20000', true],
    ]);
  });

  it('splits BIGINT keys beyond 2^53 exactly and never makes more ranges than keys', () => {
    const r = splitKeyRange('id', '9223372036854775000', '9223372036854775807', 3);
    expect(r[0]!.lo).toBe('9223372036854775000');
    expect(r.at(-1)!.hi).toBe('9223372036854775807');
    for (let i = 1; i < r.length; i++) expect(r[i]!.lo).toBe(r[i - 1]!.hi);
    expect(splitKeyRange('id', '5', '6', 10)).toHaveLength(2);
    expect(splitKeyRange('id', '-10', '-10', 4)).toEqual([{ column: 'id', lo: '-10', hi: '-10', last: true }]);
  });

  it('derives the count from rowsPerPartition', () => {
    expect(partitionCount({ rowsPerPartition: 5_000_000 }, 50_000_001)).toBe(11);
    expect(partitionCount({ count: 8 }, 10)).toBe(8);
    expect(partitionCount({ rowsPerPartition: 1000 }, 0)).toBe(1);
  });
});
