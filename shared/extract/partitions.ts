import type { KeyRange } from './source.js';

/**
 * Splits [min, max] of an integer key into at most `count` ranges of equal width (BigInt, so
 * BIGINT keys split exactly). Equal width rather than equal rows: it needs only min and max,
 * and identity keys of a CRM table are dense enough; skew shows as uneven parts, not as error.
 */
export function splitKeyRange(column: string, min: string, max: string, count: number): KeyRange[] {
  const lo = BigInt(min);
  const hi = BigInt(max);
  if (hi < lo) throw new Error(`key range of ${column} is empty (min ${min} > max ${max})`);
  const span = hi - lo + 1n;
  const n = BigInt(Math.max(1, count)) > span ? span : BigInt(Math.max(1, count));
  const ranges: KeyRange[] = [];
  for (let i = 0n; i < n; i++) {
    const a = lo + (span * i) / n;
    const b = i === n - 1n ? hi : lo + (span * (i + 1n)) / n;
    ranges.push({ column, lo: a.toString(), hi: b.toString(), last: i === n - 1n });
  }
  return ranges;
}

export function partitionCount(cfg: { count?: number; rowsPerPartition?: number }, rows: number): number {
  if (cfg.count !== undefined) return cfg.count;
  return Math.max(1, Math.ceil(rows / cfg.rowsPerPartition!));
}
