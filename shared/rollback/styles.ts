import { duckStyle } from '../merge/duckdb/dialect.js';
import type { RollbackStyle } from './sql.js';

/**
 * Sources: DuckDB "CREATE TABLE … AS" and "DROP" docs; PostgreSQL 16 "CREATE TABLE AS",
 * "DROP TABLE … IF EXISTS"; Synapse dedicated SQL pool "CREATE TABLE AS SELECT (CTAS)" (needs
 * a WITH (DISTRIBUTION …) clause; a backup is only read back, so ROUND_ROBIN is enough) and
 * "DROP TABLE" (no IF EXISTS in dedicated pools: guarded by OBJECT_ID instead).
 */
export const duckRollbackStyle: RollbackStyle = {
  ...duckStyle,
  timestamp: 'TIMESTAMP',
  copyTable: (from, to) => `CREATE TABLE ${to} AS SELECT * FROM ${from}`,
  dropTableIfExists: (name) => `DROP TABLE IF EXISTS ${name}`,
};

const pgQuote = (n: string) => `"${n.replace(/"/g, '""')}"`;

export const postgresRollbackStyle: RollbackStyle = {
  q: pgQuote,
  qualify: (n) => (n.schema ? `${pgQuote(n.schema)}.${pgQuote(n.name)}` : pgQuote(n.name)),
  param: (i) => `$${i}`,
  true: 'true',
  false: 'false',
  timestamp: 'TIMESTAMP',
  copyTable: (from, to) => `CREATE TABLE ${to} AS SELECT * FROM ${from}`,
  dropTableIfExists: (name) => `DROP TABLE IF EXISTS ${name}`,
};

const tsqlQuote = (n: string) => `[${n.replace(/]/g, ']]')}]`;

export const synapseRollbackStyle: RollbackStyle = {
  q: tsqlQuote,
  qualify: (n) => (n.schema ? `${tsqlQuote(n.schema)}.${tsqlQuote(n.name)}` : tsqlQuote(n.name)),
  param: (i) => `@p${i}`,
  true: '1',
  false: '0',
  timestamp: 'DATETIME2',
  copyTable: (from, to) => `CREATE TABLE ${to} WITH (DISTRIBUTION = ROUND_ROBIN, HEAP) AS SELECT * FROM ${from}`,
  // OBJECT_ID takes the name as text; the quoted form is a valid multipart name for it.
  dropTableIfExists: (name) => `IF OBJECT_ID(N'${name.replace(/'/g, "''")}') IS NOT NULL DROP TABLE ${name}`,
};

/**
 * SQL Server, Azure SQL Database, Managed Instance: no CTAS; "SELECT - INTO Clause" copies a
 * table (columns, types, nullability; no constraints, which a backup does not need).
 */
export const mssqlRollbackStyle: RollbackStyle = {
  ...synapseRollbackStyle,
  copyTable: (from, to) => `SELECT * INTO ${to} FROM ${from}`,
};

export function rollbackStyleFor(dialect: 'duckdb' | 'postgres' | 'synapse' | 'mssql'): RollbackStyle {
  if (dialect === 'mssql') return mssqlRollbackStyle;
  return dialect === 'duckdb' ? duckRollbackStyle : dialect === 'postgres' ? postgresRollbackStyle : synapseRollbackStyle;
}
