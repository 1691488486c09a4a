import { castFromText, type ColumnPlan } from './column-plan.js';

export interface PgColumnPlan extends ColumnPlan {
  /** PostgreSQL expression selecting the column as text; `ref` is the quoted column. */
  select: (ref: string) => string;
}

const ELEMENT: Record<string, string> = {
  smallint: 'SMALLINT',
  integer: 'INTEGER',
  bigint: 'BIGINT',
  real: 'FLOAT',
  'double precision': 'DOUBLE',
  boolean: 'BOOLEAN',
  text: 'VARCHAR',
  uuid: 'UUID',
  date: 'DATE',
  'timestamp with time zone': 'TIMESTAMPTZ',
  'timestamp without time zone': 'TIMESTAMP',
};

function scalar(t: string): { duck: string; fromText?: (c: string) => string } | undefined {
  const num = /^numeric\((\d+),(\d+)\)$/.exec(t);
  if (num) return Number(num[1]) <= 38 ? { duck: `DECIMAL(${num[1]},${num[2]})` } : undefined;
  if (/^(character varying|character|bpchar|varchar)(\(\d+\))?$/.test(t) || t === 'text' || t === 'name' || t === 'citext') return { duck: 'VARCHAR' };
  if (/^timestamp(\(\d\))? with time zone$/.test(t)) return { duck: 'TIMESTAMPTZ' };
  if (/^timestamp(\(\d\))? without time zone$/.test(t)) return { duck: 'TIMESTAMP' };
  if (/^time(\(\d\))? without time zone$/.test(t)) return { duck: 'TIME' };
  if (/^time(\(\d\))? with time zone$/.test(t)) return { duck: 'TIMETZ' };
  switch (t) {
    case 'boolean':
      return { duck: 'BOOLEAN', fromText: (c) => `(${c} = 't')` };
    case 'smallint':
    case 'integer':
    case 'bigint':
    case 'real':
    case 'double precision':
    case 'uuid':
    case 'date':
      return { duck: ELEMENT[t]! };
    case 'json':
    case 'jsonb':
      return { duck: 'JSON' };
    // bytea's text output (bytea_output = hex, the default since 9.0) is \x followed by hex.
    case 'bytea':
      return { duck: 'BLOB', fromText: (c) => `from_hex(substr(${c}, 3))` };
    default:
      return undefined;
  }
}

/**
 * PostgreSQL type (format_type text) → DuckDB/Parquet type. Values travel as PostgreSQL's own
 * text output (the pg driver's parsers are switched off), so nothing passes through a JS number
 * or Date: numeric keeps every digit, timestamptz its microseconds (session TimeZone is UTC).
 * Arrays travel as JSON (array_to_json) and become DuckDB lists. Types without an exact DuckDB
 * counterpart (unconstrained numeric, numeric with precision > 38, interval, inet, enums …)
 * stay text: VARCHAR holding PostgreSQL's canonical output, never a rounded value.
 */
export function pgColumnPlan(name: string, type: string): PgColumnPlan {
  const base = { name, sourceType: type };
  if (type.endsWith('[]')) {
    const el = type.slice(0, -2);
    const s = scalar(el);
    const elDuck = s && !s.fromText && s.duck !== 'JSON' ? s.duck : el === 'boolean' ? 'BOOLEAN' : undefined;
    const select = (r: string) => `array_to_json(${r})::text`;
    if (elDuck) return { ...base, duckType: `${elDuck}[]`, select, fromText: (c) => `CAST(CAST(${c} AS JSON) AS ${elDuck}[])` };
    return { ...base, duckType: 'JSON', select, fromText: castFromText('JSON') };
  }
  const s = scalar(type);
  if (!s) return { ...base, duckType: 'VARCHAR', select: (r) => `${r}::text`, fromText: (c) => c };
  return { ...base, duckType: s.duck, select: (r) => r, fromText: s.fromText ?? castFromText(s.duck) };
}
