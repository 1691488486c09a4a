import { connectMssql } from '../../extract/mssql/driver.js';
import type { DuckSettings } from '../../duckdb/session.js';
import { DuckDbIntrospector } from './duckdb.js';
import { MssqlIntrospector } from './mssql.js';
import { PostgresIntrospector } from './postgres.js';
import type { Introspector } from './port.js';
import type { SourceKind } from '../profile.js';

/** The real introspector per source kind; `location` is the file (duckdb) or the setting name. */
export function defaultIntrospector(
  from: { kind: SourceKind; location: string },
  resolved: { file?: string; connectionString?: string },
  duck: DuckSettings,
  env: NodeJS.ProcessEnv,
): Introspector {
  switch (from.kind) {
    case 'duckdb':
      return new DuckDbIntrospector(resolved.file ?? from.location, duck);
    case 'postgres':
      return new PostgresIntrospector(resolved.connectionString!, from.location);
    case 'mssql':
      return new MssqlIntrospector(
        () => connectMssql({ kind: 'mssql', setting: from.location, authentication: 'sql', requestTimeout: '2m', pool: { max: 1 } }, resolved.connectionString!, env),
        from.location,
      );
  }
}
