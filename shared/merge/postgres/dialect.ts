import type { QualifiedName } from '../../config/identifiers.js';
import type { Dialect, DialectCapabilities, ExistingColumn, Statement } from '../dialect.js';
import type { LogicalType, MergePlan, PlanColumn } from '../plan.js';
import { ledgerName, renderLedgerCheck, renderLedgerHead, renderLedgerInsert, renderLedgerUpgrade, renderScdSteps, type SqlStyle } from '../scd-sql.js';
import { canonicalNumberText } from '../../transform/row-hash.js';
import { assertIdentifierLengths, planTargetChanges, scdColumnDefs, widensBy } from '../target.js';

/**
 * Sources: PostgreSQL documentation, "Transactions" / "CREATE TABLE" (DDL is transactional),
 * "MERGE" (since 15; not used: the UPDATE … FROM plan runs on every supported version),
 * "Lexical Structure – Identifiers" (NAMEDATALEN-1 = 63 bytes; longer names are truncated, so
 * we refuse them instead), "Frontend/Backend Protocol – Bind" (parameter count is an Int16:
 * at most 65 535 per statement).
 */
export const postgresCapabilities: DialectCapabilities = {
  transactionalDdl: true,
  merge: true,
  maxIdentifierLength: 63,
  maxParameters: 65_535,
};

const quote = (name: string) => `"${name.replace(/"/g, '""')}"`;

export const pgStyle: SqlStyle = {
  q: quote,
  qualify: (n) => (n.schema ? `${quote(n.schema)}.${quote(n.name)}` : quote(n.name)),
  param: (i) => `$${i}`,
  true: 'true',
  false: 'false',
};

/** Type names exactly as `format_type()` prints them, so that describe and render compare equal. */
export function pgTypeName(t: LogicalType): string {
  switch (t.kind) {
    case 'boolean':
      return 'boolean';
    case 'integer':
      return t.bits === 128 ? 'numeric(38,0)' : t.bits === 64 ? 'bigint' : t.bits === 32 ? 'integer' : 'smallint';
    case 'decimal':
      return `numeric(${t.precision},${t.scale})`;
    case 'float':
      return t.bits === 32 ? 'real' : 'double precision';
    case 'text':
      return 'text';
    case 'date':
      return 'date';
    case 'time':
      return 'time without time zone';
    case 'timestamp':
      return 'timestamp without time zone';
    case 'timestamptz':
      return 'timestamp with time zone';
    case 'binary':
      return 'bytea';
    case 'uuid':
      return 'uuid';
    case 'json':
      // json, not jsonb: jsonb rewrites the text, and the canonical text must stay the source's.
      return 'json';
    case 'list':
      return `${pgTypeName(t.element)}[]`;
  }
}

/** Widenings `ALTER COLUMN … TYPE` applies without loss ("ALTER TABLE", "Numeric Types"). */
export const pgWidens = widensBy([
  ['smallint', 'integer', 'bigint', 'numeric(38,0)'],
  ['real', 'double precision'],
  ['date', 'timestamp without time zone'],
]);

const SCD_TYPES = { timestamp: 'timestamp without time zone', boolean: 'boolean', hash: 'text' };

export function pgCreateTable(plan: MergePlan): string {
  const cols = [
    ...plan.columns.map((c) => `${quote(c.name)} ${pgTypeName(c.type)}`),
    ...scdColumnDefs(SCD_TYPES).map(([n, t]) => `${quote(n)} ${t}`),
  ];
  return `CREATE TABLE IF NOT EXISTS ${pgStyle.qualify(plan.target)} (${cols.join(', ')}, PRIMARY KEY (${quote('_tm_version_key')}))`;
}

export const postgresDialect: Dialect = {
  name: 'postgres',
  capabilities: postgresCapabilities,
  quoteIdent: quote,
  qualify: pgStyle.qualify,
  param: pgStyle.param,
  typeName: pgTypeName,

  ensureTarget(plan: MergePlan, existing: readonly ExistingColumn[] | undefined): Statement[] {
    assertIdentifierLengths(plan, 'postgres', postgresCapabilities.maxIdentifierLength);
    const out: Statement[] = [];
    if (plan.target.schema) out.push({ sql: `CREATE SCHEMA IF NOT EXISTS ${quote(plan.target.schema)}`, parameters: [] });
    const T = pgStyle.qualify(plan.target);
    if (!existing || existing.length === 0) {
      out.push({ sql: pgCreateTable(plan), parameters: [] });
      // Current-version lookups by key are what every merge step joins on.
      out.push({
        sql: `CREATE INDEX IF NOT EXISTS ${quote(`${plan.target.name}_tm_current`.slice(0, 63))} ON ${T} (${plan.keys.map(quote).join(', ')}) WHERE ${quote('_tm_is_current')}`,
        parameters: [],
      });
    } else {
      const changes = planTargetChanges(plan, existing, pgTypeName, pgWidens);
      for (const c of changes.added) out.push({ sql: `ALTER TABLE ${T} ADD COLUMN ${quote(c.name)} ${pgTypeName(c.type)}`, parameters: [] });
      for (const c of changes.widened) {
        out.push({ sql: `ALTER TABLE ${T} ALTER COLUMN ${quote(c.name)} TYPE ${pgTypeName(c.type)}`, parameters: [] });
      }
    }
    out.push({
      sql: `CREATE TABLE IF NOT EXISTS ${pgStyle.qualify(ledgerName(plan))} (${quote('pipeline')} text NOT NULL, ${quote('run_id')} text NOT NULL, ${quote('target_table')} text NOT NULL, ${quote('boundary')} timestamp without time zone NOT NULL, ${quote('inserted')} bigint, ${quote('updated')} bigint, ${quote('deleted')} bigint, ${quote('committed_at')} timestamp without time zone, PRIMARY KEY (${quote('pipeline')}, ${quote('run_id')}))`,
      parameters: [],
    });
    out.push(...renderLedgerUpgrade(pgStyle, plan, (t) => t));
    return out;
  },

  ledgerCheck: (plan) => renderLedgerCheck(pgStyle, plan),

  ledgerHead: (target, pipeline) => renderLedgerHead(pgStyle, target, pipeline, { top: '', tail: ' LIMIT 1' }),

  mergeSteps: (plan) => [...renderScdSteps(pgStyle, plan), renderLedgerInsert(pgStyle, plan)],

  describeTarget(target: QualifiedName): Statement {
    return {
      sql: `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
      parameters: [target.schema ?? 'public', target.name],
    };
  },

  currentRowCount(target: QualifiedName): Statement {
    return {
      sql: `SELECT count(*) AS n FROM ${pgStyle.qualify(target)} WHERE ${quote('_tm_is_current')} AND NOT ${quote('_tm_is_deleted')}`,
      parameters: [],
    };
  },

  asOf(target: QualifiedName, columns: readonly PlanColumn[], at: string): Statement {
    return {
      sql: `SELECT ${columns.map((c) => quote(c.name)).join(', ')} FROM ${pgStyle.qualify(target)} WHERE ${quote('_tm_valid_from')} <= CAST($1 AS TIMESTAMPTZ) AT TIME ZONE 'UTC' AND (${quote('_tm_valid_to')} IS NULL OR ${quote('_tm_valid_to')} > CAST($1 AS TIMESTAMPTZ) AT TIME ZONE 'UTC') AND NOT ${quote('_tm_is_deleted')}`,
      parameters: [at],
    };
  },
};

/**
 * Canonical text of one value in PostgreSQL, the same text DuckDB gives in
 * transform/row-hash.ts `canonicalText` for the same value (proven on a real PostgreSQL in
 * test/integration/merge/postgres-warehouse.test.ts). `type` is a `format_type()` name.
 */
export function pgCanonicalText(name: string, type: string): string {
  const c = quote(name);
  const t = type.toLowerCase();
  const TS = `'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'`;
  if (t === 'boolean') return `CASE WHEN ${c} THEN 'true' ELSE 'false' END`;
  if (t === 'date') return `to_char(${c}, 'YYYY-MM-DD')`;
  if (t === 'timestamp with time zone') return `to_char(${c} AT TIME ZONE 'UTC', ${TS})`;
  if (t.startsWith('timestamp')) return `to_char(${c}, ${TS})`;
  if (t === 'bytea') return `encode(${c}, 'hex')`;
  if (t === 'uuid') return `lower(${c}::text)`;
  // Hash rule 2: the number without its declared scale, as DuckDB's canonicalText gives it.
  if (t.startsWith('numeric')) return canonicalNumberText(`(${c})::text`);
  if (t === 'double precision' || t === 'real') {
    // DuckDB prints integral floats below 1e16 in full with '.0' (FLOAT too), PostgreSQL
    // switches to exponent form earlier (1e15 is '1000000000000000.0' in DuckDB, '1e+15' here;
    // 1e7::real is '10000000.0' there, '1e+07' here). Above 1e16 both print '1e+16'.
    const raw = `(${c})::text`;
    return `CASE WHEN ${c} IN ('Infinity', '-Infinity', 'NaN') THEN lower(replace(${raw}, 'Infinity', 'inf')) WHEN abs(${c}) < 1e16 AND ${c} = trunc(${c}) THEN trunc(${c}::double precision)::numeric::text || '.0' ELSE ${raw} END`;
  }
  return `(${c})::text`;
}

/** The `count:sum` checksum of transform/classify.ts `checksumSql`, in PostgreSQL. */
export function pgChecksumSql(columns: ReadonlyArray<{ name: string; type: string }>, relation: string): string {
  const parts = columns.map((col) => {
    const text = pgCanonicalText(col.name, col.type);
    const tag = col.name.replace(/'/g, "''");
    return `CASE WHEN ${quote(col.name)} IS NULL THEN NULL ELSE '${tag}=' || length(${text})::text || ':' || ${text} END`;
  });
  const row = parts.length ? `concat_ws('|', ${parts.join(', ')})` : `''`;
  return `SELECT count(*) AS n, coalesce(sum(('x' || lpad(substr(md5(${row}), 1, 15), 16, '0'))::bit(64)::bigint), 0)::text AS s FROM ${relation}`;
}
