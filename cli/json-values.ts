/**
 * The one rule for values in every `--json` output (docs/design.md §14):
 * - integers are JSON numbers while they are exact in a double (|n| ≤ 2^53 − 1), else strings;
 * - DECIMAL / NUMERIC values are strings with their digits as stored ("615762.65"), never floats;
 * - DOUBLE / REAL are numbers;
 * - timestamps are ISO-8601 in UTC with a Z ("2026-11-24T08:00:00.123456Z"), dates "2026-11-24";
 * - text stays text (a key stored as VARCHAR prints "1").
 */
export function jsonValue(v: unknown, type?: string): unknown {
  if (v === null || v === undefined) return null;
  const t = (type ?? '').toUpperCase();
  if (/^(DECIMAL|NUMERIC)/.test(t)) {
    const scale = Number(/,\s*(\d+)\)/.exec(t)?.[1] ?? NaN);
    if (typeof v === 'number' && Number.isInteger(scale)) return v.toFixed(scale);
    return String(v);
  }
  if (typeof v === 'bigint') return v >= -BigInt(Number.MAX_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
  if (v instanceof Date) return t === 'DATE' ? v.toISOString().slice(0, 10) : v.toISOString();
  if (typeof v === 'string' && /^(BIGINT|HUGEINT|UBIGINT|UHUGEINT|INTEGER|UINTEGER|SMALLINT|TINYINT)$/.test(t) && /^-?\d+$/.test(v)) {
    const n = BigInt(v);
    return n >= -BigInt(Number.MAX_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : v;
  }
  if (typeof v === 'string' && /^TIMESTAMP/.test(t)) return isoUtc(v);
  return v;
}

/** DuckDB's text of a TIMESTAMP ('2026-01-01 01:02:03.123456') or TIMESTAMPTZ ('…+00') as ISO UTC, digits kept. */
function isoUtc(text: string): string {
  const m = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}(?::?\d{2})?)?$/.exec(text);
  if (!m) return text;
  const [, d, hms, frac = '', zone] = m;
  if (!zone || zone === 'Z' || /^[+-]00(:?00)?$/.test(zone)) return `${d}T${hms}${frac}Z`;
  const ms = Date.parse(`${d}T${hms}${frac.slice(0, 4)}${zone.length === 3 ? `${zone}:00` : zone}`);
  return Number.isNaN(ms) ? text : `${new Date(ms).toISOString().slice(0, 19)}${frac}Z`;
}

export function jsonRow(row: Record<string, unknown>, types: Readonly<Record<string, string>> = {}): Record<string, unknown> {
  return Object.fromEntries(Object.entries(row).map(([k, v]) => [k, jsonValue(v, types[k])]));
}
