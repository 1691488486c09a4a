import { describe, expect, it } from 'vitest';
import type { LogicalType } from '../../../shared/merge/plan.js';
import { logicalFromPg, pgTypeName } from '../../../shared/merge/postgres/dialect.js';

/** The checksum reads the target's types back through format_type(): the inverse of pgTypeName. */
describe('logicalFromPg', () => {
  const all: LogicalType[] = [
    { kind: 'boolean' },
    { kind: 'integer', bits: 16 },
    { kind: 'integer', bits: 32 },
    { kind: 'integer', bits: 64 },
    { kind: 'decimal', precision: 12, scale: 4 },
    { kind: 'float', bits: 32 },
    { kind: 'float', bits: 64 },
    { kind: 'text' },
    { kind: 'date' },
    { kind: 'time' },
    { kind: 'timestamp' },
    { kind: 'timestamptz' },
    { kind: 'binary' },
    { kind: 'uuid' },
    { kind: 'json' },
  ];
  it('gives back every type pgTypeName prints', () => {
    for (const t of all) expect(logicalFromPg(pgTypeName(t))).toEqual(t);
  });
  it('reads a 128-bit integer target column (numeric(38,0)) as a decimal, whose canonical text is the same digits', () => {
    expect(logicalFromPg(pgTypeName({ kind: 'integer', bits: 128 }))).toEqual({ kind: 'decimal', precision: 38, scale: 0 });
  });
  it('reads jsonb as json, unconstrained numeric as a decimal, arrays as lists, and enums and varchar(n) as text', () => {
    expect(logicalFromPg('jsonb')).toEqual({ kind: 'json' });
    expect(logicalFromPg('numeric').kind).toBe('decimal');
    expect(['text[]', 'mood', 'character varying(20)'].map((t) => logicalFromPg(t).kind)).toEqual(['list', 'text', 'text']);
    expect(logicalFromPg('integer[]')).toEqual({ kind: 'list', element: { kind: 'integer', bits: 32 } });
  });
});
