import type { QualifiedName } from '../../config/identifiers.js';
import type { Dialect, DialectCapabilities, ExistingColumn, Statement } from '../dialect.js';
import { logicalFromDuck, type LogicalType, type MergePlan, type PlanColumn } from '../plan.js';
import { duckTypeName } from '../duckdb/dialect.js';
import { renderAsOf, renderAsOfCount, renderKeyHistory, type ReadStyle } from '../read-sql.js';
import { ledgerName, renderLedgerCheck, renderLedgerHead, renderLedgerInsert, renderLedgerUpgrade, renderScdSteps, type SqlStyle } from '../scd-sql.js';
import { assertIdentifierLengths, planTargetChanges, scdColumnDefs, widensBy, type ScdTypes } from '../target.js';

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

const pgRead: ReadStyle = { s: pgStyle, text: pgTypeName({ kind: 'text' }), instant: (p) => `CAST(${p} AS TIMESTAMPTZ) AT TIME ZONE 'UTC'`, limit: 'limit' };

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

/**
 * The logical type of a target column as `format_type()` prints it: the inverse of pgTypeName,
 * so that the checksum and the sample render the canonical text (validate/canonical-sql.ts)
 * from the target's own types. Anything else (arrays, enums) is text: its `::text` output.
 */
export function logicalFromPg(type: string): LogicalType {
  const t = type.toLowerCase().trim();
  // Which lists are lists is logicalFromDuck's rule alone (lists of scalars; others are text).
  if (t.endsWith('[]')) return logicalFromDuck(`${duckTypeName(logicalFromPg(t.slice(0, -2)))}[]`);
  const num = /^numeric(?:\((\d+),(\d+)\))?$/.exec(t);
  // An unconstrained numeric has no precision; the canonical number text does not depend on it.
  if (num) return { kind: 'decimal', precision: Number(num[1] ?? 38), scale: Number(num[2] ?? 0) };
  switch (t) {
    case 'boolean':
      return { kind: 'boolean' };
    case 'smallint':
      return { kind: 'integer', bits: 16 };
    case 'integer':
      return { kind: 'integer', bits: 32 };
    case 'bigint':
      return { kind: 'integer', bits: 64 };
    case 'real':
      return { kind: 'float', bits: 32 };
    case 'double precision':
      return { kind: 'float', bits: 64 };
    case 'date':
      return { kind: 'date' };
    case 'time without time zone':
      return { kind: 'time' };
    case 'timestamp without time zone':
      return { kind: 'timestamp' };
    case 'timestamp with time zone':
      return { kind: 'timestamptz' };
    case 'bytea':
      return { kind: 'binary' };
    case 'uuid':
      return { kind: 'uuid' };
    case 'json':
    case 'jsonb':
      return { kind: 'json' };
    default:
      return { kind: 'text' };
  }
}

/** Widenings `ALTER COLUMN … TYPE` applies without loss ("ALTER TABLE", "Numeric Types"). */
export const pgWidens = widensBy([
  ['smallint', 'integer', 'bigint', 'numeric(38,0)'],
  ['real', 'double precision'],
  ['date', 'timestamp without time zone'],
]);

const SCD_TYPES: ScdTypes = { timestamp: 'timestamp without time zone', boolean: 'boolean', text: 'text', binaryHash: 'bytea' };

export function pgCreateTable(plan: MergePlan): string {
  const cols = [
    ...plan.columns.map((c) => `${quote(c.name)} ${pgTypeName(c.type)}`),
    ...scdColumnDefs(SCD_TYPES, plan).map(([n, t]) => `${quote(n)} ${t}`),
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
      const changes = planTargetChanges(plan, existing, pgTypeName, pgWidens, SCD_TYPES);
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

  asOf: (target, columns, at, o) => renderAsOf(pgRead, target, columns, at, o),
  asOfCount: (target, at) => renderAsOfCount(pgRead, target, at),
  keyHistory: (target, columns, key, at) => renderKeyHistory(pgRead, target, columns, key, at),
};
