import { TerminalError } from '../../errors.js';

/**
 * SQL Server / Azure SQL error numbers that heal on retry. Sources: "Troubleshoot transient
 * connection errors" (Azure SQL docs) and the database engine error list.
 */
export const TRANSIENT_SQL_ERRORS: ReadonlyMap<number, string> = new Map([
  [1205, 'deadlock victim'],
  [1222, 'lock request timeout'],
  [4060, 'cannot open database (failover in progress)'],
  [4221, 'login to read-secondary failed during replica change'],
  [10053, 'transport-level error (connection aborted)'],
  [10054, 'transport-level error (connection reset)'],
  [10060, 'network timeout'],
  [10928, 'resource limit reached (workers / sessions)'],
  [10929, 'resource governance: minimum guarantee not met'],
  [40143, 'connection could not be initialized'],
  [40197, 'service error processing the request (reconfiguration)'],
  [40501, 'service is busy'],
  [40613, 'database not currently available'],
  [40540, 'service encountered an error processing the request'],
  [42108, 'cannot connect to the SQL pool'],
  [42109, 'the SQL pool is warming up'],
  [49918, 'not enough resources to process the request'],
  [49919, 'too many create/update operations in progress'],
  [49920, 'too many operations in progress'],
]);

/** Driver (tedious) error codes that are network trouble rather than a wrong request. */
const TRANSIENT_DRIVER_CODES = new Set(['ESOCKET', 'ECONNCLOSED', 'ETIMEOUT', 'ECONNRESET', 'EPIPE']);

export function sqlErrorNumber(err: unknown): number | undefined {
  const e = err as { number?: unknown; originalError?: { number?: unknown; info?: { number?: unknown } } };
  for (const n of [e?.number, e?.originalError?.number, e?.originalError?.info?.number]) if (typeof n === 'number') return n;
  return undefined;
}

/**
 * Sorts a driver error: transient ones are returned as they are (the stage retries them with
 * jittered backoff); anything else is a TerminalError that fails the run with the server's text.
 */
export function classifyMssqlError(err: unknown, what: string): unknown {
  if (err instanceof TerminalError) return err;
  const code = (err as { code?: unknown })?.code;
  const n = sqlErrorNumber(err);
  if (n !== undefined && TRANSIENT_SQL_ERRORS.has(n)) return err;
  if (typeof code === 'string' && TRANSIENT_DRIVER_CODES.has(code)) return err;
  const msg = err instanceof Error ? err.message : String(err);
  if (code === 'ELOGIN') {
    return new TerminalError(`${what}: login failed (${msg}); check the connection string setting and the authentication mode in tidemark.yaml`, { cause: err });
  }
  return new TerminalError(`${what}: SQL Server error${n !== undefined ? ` ${n}` : ''}: ${msg}`, { cause: err });
}
