import { describe, expect, it } from 'vitest';
import { jsonValue } from '../../../cli/json-values.js';

describe('the one JSON rule for --json values', () => {
  it('decimals are strings with their digits, from DuckDB text or a number at the declared scale', () => {
    expect(jsonValue('615762.65', 'DECIMAL(18,2)')).toBe('615762.65');
    expect(jsonValue(615762.65, 'DECIMAL(18,2)')).toBe('615762.65');
    expect(jsonValue(1.5, 'DECIMAL(10,3)')).toBe('1.500');
    expect(jsonValue('1.25', 'NUMERIC(9,2)')).toBe('1.25');
  });

  it('integers are numbers while exact in a double, strings beyond', () => {
    expect(jsonValue(1n, 'BIGINT')).toBe(1);
    expect(jsonValue('42', 'BIGINT')).toBe(42);
    expect(jsonValue(9007199254740991n, 'BIGINT')).toBe(9007199254740991);
    expect(jsonValue(9007199254740993n, 'HUGEINT')).toBe('9007199254740993');
    expect(jsonValue('-9007199254740993', 'BIGINT')).toBe('-9007199254740993');
  });

  it('timestamps are ISO-8601 UTC with Z, microseconds kept; dates are YYYY-MM-DD; text and doubles stay', () => {
    expect(jsonValue('2026-01-01 01:02:03.123456', 'TIMESTAMP')).toBe('2026-01-01T01:02:03.123456Z');
    expect(jsonValue('2026-01-01 01:02:03+00', 'TIMESTAMP WITH TIME ZONE')).toBe('2026-01-01T01:02:03Z');
    expect(jsonValue('2026-01-01 03:02:03.5+02', 'TIMESTAMP WITH TIME ZONE')).toBe('2026-01-01T01:02:03.5Z');
    expect(jsonValue(new Date('2026-01-01T01:02:03.123Z'), 'TIMESTAMP')).toBe('2026-01-01T01:02:03.123Z');
    expect(jsonValue(new Date('2026-01-02T00:00:00Z'), 'DATE')).toBe('2026-01-02');
    expect(jsonValue('1', 'VARCHAR')).toBe('1');
    expect(jsonValue(1.5, 'DOUBLE')).toBe(1.5);
    expect(jsonValue(null, 'BIGINT')).toBeNull();
  });
});
