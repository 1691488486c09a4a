const UNITS: Record<string, number> = { kb: 1e3, mb: 1e6, gb: 1e9, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3 };

/** `duckdb.memoryLimit`: a number and a unit, as DuckDB's `memory_limit` takes it. */
export const MEMORY_LIMIT_PATTERN = /^\d+(\.\d+)?\s*(KB|MB|GB|KiB|MiB|GiB)$/i;

/** Bytes of a `duckdb.memoryLimit`; DuckDB reads KB as 1000 bytes and KiB as 1024. */
export function memoryLimitBytes(limit: string): number {
  const m = MEMORY_LIMIT_PATTERN.exec(limit.trim());
  if (!m) throw new Error(`duckdb.memoryLimit ${JSON.stringify(limit)} is not a size like 1GB`);
  return parseFloat(limit) * UNITS[m[2]!.toLowerCase()]!;
}
