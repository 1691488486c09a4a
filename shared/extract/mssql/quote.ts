import { splitQualified } from '../../config/identifiers.js';

/** T-SQL identifier quoting: `[...]` with `]` doubled (identifiers are also pattern-checked in config). */
export function quoteMssql(identifier: string): string {
  return `[${identifier.replace(/]/g, ']]')}]`;
}

export function quoteMssqlQualified(qualified: string): string {
  const q = splitQualified(qualified);
  return q.schema ? `${quoteMssql(q.schema)}.${quoteMssql(q.name)}` : quoteMssql(q.name);
}
