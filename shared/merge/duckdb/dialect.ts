import type { QualifiedName } from '../../config/identifiers.js';
import type { Dialect, DialectCapabilities, ExistingColumn, Statement } from '../dialect.js';
import type { LogicalType, MergePlan, PlanColumn } from '../plan.js';
import { renderAsOf, renderAsOfCount, renderKeyHistory, type ReadStyle } from '../read-sql.js';
import { ledgerName, renderLedgerCheck, renderLedgerHead, renderLedgerInsert, renderLedgerUpgrade, renderScdSteps, type SqlStyle } from '../scd-sql.js';
import { assertIdentifierLengths, scdColumnDefs, planTargetChanges, widensBy, type ScdTypes } from '../target.js';

/**
 * Sources: DuckDB documentation, "Transaction Management" (DDL is transactional),
 * "MERGE INTO" (since 1.4), "Keywords and Identifiers" (no practical identifier length limit;
 * we keep 128 so names port to Synapse), "Prepared Statements" ($n parameters).
 */
export const duckdbCapabilities: DialectCapabilities = {
  transactionalDdl: true,
  merge: true,
  maxIdentifierLength: 128,
  maxParameters: 65_535,
};

/** Widenings DuckDB's ALTER COLUMN … TYPE applies without loss ("ALTER TABLE" page). */
export const duckWidens = widensBy([
  ['SMALLINT', 'INTEGER', 'BIGINT', 'HUGEINT'],
  ['FLOAT', 'DOUBLE'],
  ['DATE', 'TIMESTAMP'],
]);

const quote = (name: string) => `"${name.replace(/"/g, '""')}"`;

export const duckStyle: SqlStyle = {
  q: quote,
  qualify: (n) => (n.schema ? `${quote(n.schema)}.${quote(n.name)}` : quote(n.name)),
  param: (i) => `$${i}`,
  true: 'true',
  false: 'false',
};

const duckRead: ReadStyle = { s: duckStyle, text: duckTypeName({ kind: 'text' }), instant: (p) => `CAST(${p} AS TIMESTAMP)`, limit: 'limit' };

export function duckTypeName(t: LogicalType): string {
  switch (t.kind) {
    case 'boolean':
      return 'BOOLEAN';
    case 'integer':
      return t.bits === 128 ? 'HUGEINT' : t.bits === 64 ? 'BIGINT' : t.bits === 32 ? 'INTEGER' : 'SMALLINT';
    case 'decimal':
      return `DECIMAL(${t.precision},${t.scale})`;
    case 'float':
      return t.bits === 32 ? 'FLOAT' : 'DOUBLE';
    case 'text':
      return 'VARCHAR';
    case 'date':
      return 'DATE';
    case 'time':
      return 'TIME';
    case 'timestamp':
      return 'TIMESTAMP';
    case 'timestamptz':
      return 'TIMESTAMP WITH TIME ZONE';
    case 'binary':
      return 'BLOB';
    case 'uuid':
      return 'UUID';
    case 'json':
      return 'JSON';
    case 'list':
      return `${duckTypeName(t.element)}[]`;
  }
}

const DUCK_SCD_TYPES: ScdTypes = { timestamp: 'TIMESTAMP', boolean: 'BOOLEAN', text: 'VARCHAR', binaryHash: 'BLOB' };

/**
 * How a new target stores its 16-byte hash columns (`_tm_row_hash`, `_tm_version_key`):
 * uncompressed. They hold md5 bytes, which no lightweight codec shrinks, yet left to choose
 * DuckDB analyses every segment of them for FSST and dictionary at each checkpoint and stores
 * about a third as FSST, which every later scan decodes. `USING COMPRESSION` is a column option
 * of DuckDB's CREATE TABLE (the grammar's ColumnDef), kept in the catalog across reopening,
 * ADD COLUMN and ALTER COLUMN TYPE (checked with pragma_storage_info on DuckDB 1.5). Measured
 * on the bench's 50 M-version dimension: the merge's close-by-copy INSERT 2.44 s against
 * 2.77 s (six alternated runs each), the 50 M-row initial INSERT 45.4 s against 49.1 s, the
 * file 4 % bigger. Hex-text hashes (hash rules 1–3) keep DuckDB's choice: FSST halves hex.
 * A target created before keeps its storage; it works the same, only slower to scan.
 */
export const DUCK_BINARY_HASH_STORAGE = 'USING COMPRESSION uncompressed';

export const duckdbDialect: Dialect = {
  name: 'duckdb',
  capabilities: duckdbCapabilities,
  quoteIdent: quote,
  qualify: duckStyle.qualify,
  param: duckStyle.param,
  typeName: duckTypeName,

  ensureTarget(plan: MergePlan, existing: readonly ExistingColumn[] | undefined): Statement[] {
    assertIdentifierLengths(plan, 'duckdb', duckdbCapabilities.maxIdentifierLength);
    const out: Statement[] = [];
    if (plan.target.schema) out.push({ sql: `CREATE SCHEMA IF NOT EXISTS ${quote(plan.target.schema)}`, parameters: [] });
    const T = duckStyle.qualify(plan.target);
    if (!existing || existing.length === 0) {
      const cols = [
        ...plan.columns.map((c) => `${quote(c.name)} ${duckTypeName(c.type)}`),
        ...scdColumnDefs(DUCK_SCD_TYPES, plan).map(([n, t]) => `${quote(n)} ${t}${t === DUCK_SCD_TYPES.binaryHash ? ` ${DUCK_BINARY_HASH_STORAGE}` : ''}`),
      ];
      out.push({ sql: `CREATE TABLE IF NOT EXISTS ${T} (${cols.join(', ')})`, parameters: [] });
    } else {
      const changes = planTargetChanges(plan, existing, duckTypeName, duckWidens, DUCK_SCD_TYPES);
      for (const c of changes.added) {
        out.push({ sql: `ALTER TABLE ${T} ADD COLUMN ${quote(c.name)} ${duckTypeName(c.type)}`, parameters: [] });
      }
      for (const c of changes.widened) {
        out.push({ sql: `ALTER TABLE ${T} ALTER COLUMN ${quote(c.name)} TYPE ${duckTypeName(c.type)}`, parameters: [] });
      }
    }
    out.push({
      sql: `CREATE TABLE IF NOT EXISTS ${duckStyle.qualify(ledgerName(plan))} (${quote('pipeline')} VARCHAR NOT NULL, ${quote('run_id')} VARCHAR NOT NULL, ${quote('target_table')} VARCHAR NOT NULL, ${quote('boundary')} TIMESTAMP NOT NULL, ${quote('inserted')} BIGINT, ${quote('updated')} BIGINT, ${quote('deleted')} BIGINT, ${quote('committed_at')} TIMESTAMP, PRIMARY KEY (${quote('pipeline')}, ${quote('run_id')}))`,
      parameters: [],
    });
    out.push(...renderLedgerUpgrade(duckStyle, plan, (t) => (t === 'bigint' ? 'BIGINT' : 'VARCHAR')));
    return out;
  },

  ledgerCheck: (plan) => renderLedgerCheck(duckStyle, plan),

  ledgerHead: (target, pipeline) => renderLedgerHead(duckStyle, target, pipeline, { top: '', tail: ' LIMIT 1' }),

  mergeSteps: (plan, o) => [...renderScdSteps(duckStyle, plan, o), renderLedgerInsert(duckStyle, plan)],

  describeTarget(target: QualifiedName): Statement {
    return {
      sql: `SELECT column_name AS name, data_type AS type FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position`,
      parameters: [target.schema ?? 'main', target.name],
    };
  },

  currentRowCount(target: QualifiedName): Statement {
    return {
      sql: `SELECT count(*)::BIGINT AS n FROM ${duckStyle.qualify(target)} WHERE ${quote('_tm_is_current')} AND NOT ${quote('_tm_is_deleted')}`,
      parameters: [],
    };
  },

  asOf: (target, columns, at, o) => renderAsOf(duckRead, target, columns, at, o),
  asOfCount: (target, at) => renderAsOfCount(duckRead, target, at),
  keyHistory: (target, columns, key, at) => renderKeyHistory(duckRead, target, columns, key, at),
};

