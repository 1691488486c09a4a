import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import type { PlanColumn } from '../../../shared/merge/plan.js';
import { duckRollbackStyle, postgresRollbackStyle, synapseRollbackStyle } from '../../../shared/rollback/styles.js';
import { checksumSql } from '../../../shared/canonical/row-hash.js';
import { DuckSession } from '../../../shared/duckdb/session.js';
import { canonicalRowSql, checksumStatement, formatChecksum } from '../../../shared/validate/canonical-sql.js';
import { startPostgres, type PostgresHandle } from '../../support/postgres.js';
import { freshTsqlDatabase, tsqlEngine } from '../../support/tsql-engine.js';
import { tsqlQuery } from '../../support/tsql-sql.js';

const engine = await tsqlEngine();

/** The same rows in DuckDB (the transform's engine) and in a real PostgreSQL: equal checksums. */
const COLUMNS: Array<PlanColumn & { duck: string; pg: string }> = [
  { name: 'id', type: { kind: 'integer', bits: 32 }, duck: 'INTEGER', pg: 'INTEGER' },
  { name: 'big', type: { kind: 'integer', bits: 64 }, duck: 'BIGINT', pg: 'BIGINT' },
  { name: 'amount', type: { kind: 'decimal', precision: 12, scale: 2 }, duck: 'DECIMAL(12,2)', pg: 'NUMERIC(12,2)' },
  { name: 'name', type: { kind: 'text' }, duck: 'VARCHAR', pg: 'VARCHAR' },
  { name: 'ratio', type: { kind: 'float', bits: 64 }, duck: 'DOUBLE', pg: 'DOUBLE PRECISION' },
  { name: 'active', type: { kind: 'boolean' }, duck: 'BOOLEAN', pg: 'BOOLEAN' },
  { name: 'born', type: { kind: 'date' }, duck: 'DATE', pg: 'DATE' },
  { name: 'seen', type: { kind: 'timestamp' }, duck: 'TIMESTAMP', pg: 'TIMESTAMP' },
  { name: 'seen_tz', type: { kind: 'timestamptz' }, duck: 'TIMESTAMPTZ', pg: 'TIMESTAMPTZ' },
  { name: 'blob', type: { kind: 'binary' }, duck: 'BLOB', pg: 'BYTEA' },
  { name: 'uid', type: { kind: 'uuid' }, duck: 'UUID', pg: 'UUID' },
];

const ROWS = [
  `(1, 9007199254740993, 1.50, 'Ann', 0.1, true, DATE '2020-02-29', TIMESTAMP '2026-01-01 10:00:00', TIMESTAMPTZ '2026-01-01 12:00:00+02', BLOB, '6F1C2B1E-0000-4000-8000-00000000000A')`,
  `(2, -5, -0.05, '', 3.0, false, DATE '1999-12-31', TIMESTAMP '2026-01-01 10:00:00.123456', TIMESTAMPTZ '2026-06-01 00:00:00.5+00', NULL, NULL)`,
  `(3, 0, 100.00, 'Zoë ☃ ''quoted'' | a=1:2', 1e20, NULL, NULL, NULL, NULL, NULL, NULL)`,
  `(4, NULL, NULL, 'NULL', 123456789012345.0, true, DATE '2026-11-24', TIMESTAMP '1970-01-01 00:00:00', NULL, NULL, NULL)`,
  `(5, 1, 0.00, '  spaced  ', -2.5, false, NULL, NULL, NULL, NULL, NULL)`,
  `(6, 2, 7.10, 'tiny', 1e-07, false, NULL, NULL, NULL, NULL, NULL)`,
];

/** The rows in DuckDB, the transform's engine and the reference. */
async function duckTable(): Promise<DuckSession> {
  const duck = await DuckSession.open(':memory:', { memoryLimit: '256MB', threads: 1, tempDir: join(tmpdir(), 'tm-cs') });
  await duck.run(`SET TimeZone = 'UTC'`);
  await duck.run(`CREATE TABLE cs_t (${COLUMNS.map((c) => `"${c.name}" ${c.duck}`).join(', ')})`);
  await duck.run(`INSERT INTO cs_t VALUES ${ROWS.map((r) => r.replace('BLOB', "'\\xDE\\xAD\\xBE\\xEF'::BLOB")).join(', ')}`);
  return duck;
}

describe('checksums agree across engines', () => {
  let pgh: PostgresHandle;
  let duck: DuckSession;
  let client: pg.Client;
  beforeAll(async () => {
    pgh = await startPostgres();
    client = new pg.Client({ connectionString: pgh.url });
    await client.connect();
    await client.query('DROP TABLE IF EXISTS cs_t');
    await client.query(`SET TimeZone = 'UTC'`);
    await client.query(`CREATE TABLE cs_t (${COLUMNS.map((c) => `"${c.name}" ${c.pg}`).join(', ')})`);
    await client.query(`INSERT INTO cs_t VALUES ${ROWS.map((r) => r.replace("BLOB", "'\\xdeadBEEF'::bytea")).join(', ')}`);
    duck = await duckTable();
  });
  afterAll(async () => {
    await duck?.close();
    await client?.end();
    await pgh?.stop();
  });

  it('row by row, the canonical texts are identical', async () => {
    const duckRows = await duck.rows<{ id: number; t: string }>(`SELECT id, ${canonicalRowSql('duckdb', duckRollbackStyle, COLUMNS)} AS t FROM cs_t ORDER BY id`);
    const pgRows = (await client.query(`SELECT id, ${canonicalRowSql('postgres', postgresRollbackStyle, COLUMNS)} AS t FROM cs_t ORDER BY id`)).rows;
    expect(pgRows).toEqual(duckRows);
    expect(duckRows[0]!.t).toContain('seen_tz=27:2026-01-01T10:00:00.000000Z');
    expect(duckRows[1]!.t).toContain('name=0:|');
  });

  it('the warehouse checksum on postgres equals the one the transform computes in DuckDB', async () => {
    const typed = COLUMNS.map((c) => ({ name: c.name, type: c.duck }));
    const reference = formatChecksum(await duck.one<{ n: bigint; s: bigint }>(checksumSql(typed, 'cs_t')));
    const viaPlanner = formatChecksum(await duck.one(checksumStatement('duckdb', duckRollbackStyle, COLUMNS, 'cs_t').sql));
    const st = checksumStatement('postgres', postgresRollbackStyle, COLUMNS, 'cs_t');
    const onPg = formatChecksum((await client.query(st.sql)).rows[0]);
    expect(reference).toMatch(/^6:\d+$/);
    expect(viaPlanner).toBe(reference);
    expect(onPg).toBe(reference);
  });

  it('a one-character change anywhere changes the checksum', async () => {
    await client.query(`UPDATE cs_t SET name = 'Anne' WHERE id = 1`);
    const typed = COLUMNS.map((c) => ({ name: c.name, type: c.duck }));
    const reference = formatChecksum(await duck.one<{ n: bigint; s: bigint }>(checksumSql(typed, 'cs_t')));
    const onPg = formatChecksum((await client.query(checksumStatement('postgres', postgresRollbackStyle, COLUMNS, 'cs_t').sql)).rows[0]);
    expect(onPg).not.toBe(reference);
  });
});

/**
 * The same rows on the T-SQL engine (test/support/tsql-engine.ts): row texts and checksums equal
 * DuckDB's, for every type T-SQL canonicalizes. Left out, and why: `ratio` (float: refused on
 * T-SQL, no shortest round-trip text) and `blob` (its hex text needs CONVERT style 2, which the
 * engine ignores; that SQL Server form is golden-tested in test/unit/validate).
 */
describe.skipIf(!('url' in engine))('checksums agree between DuckDB and the T-SQL engine', () => {
  const TSQL_TYPES: Record<string, string> = {
    id: 'int', big: 'bigint', amount: 'decimal(12,2)', name: 'nvarchar(max)', active: 'bit', born: 'date', seen: 'datetime2(6)', seen_tz: 'datetimeoffset(6)', uid: 'uniqueidentifier',
  };
  const cols = COLUMNS.filter((c) => c.name in TSQL_TYPES);
  const TSQL_ROWS = [
    `(1, 9007199254740993, 1.50, N'Ann', 1, '2020-02-29', '2026-01-01 10:00:00', '2026-01-01 12:00:00 +02:00', '6F1C2B1E-0000-4000-8000-00000000000A')`,
    `(2, -5, -0.05, N'', 0, '1999-12-31', '2026-01-01 10:00:00.123456', '2026-06-01 00:00:00.5 +00:00', NULL)`,
    `(3, 0, 100.00, N'Zoë ☃ ''quoted'' | a=1:2', NULL, NULL, NULL, NULL, NULL)`,
    `(4, NULL, NULL, N'NULL', 1, '2026-11-24', '1970-01-01 00:00:00', NULL, NULL)`,
    `(5, 1, 0.00, N'  spaced  ', 0, NULL, NULL, NULL, NULL)`,
    `(6, 2, 7.10, N'tiny', 0, NULL, NULL, NULL, NULL)`,
  ];
  let db: { url: string; drop(): Promise<void> };
  let duck: DuckSession;
  beforeAll(async () => {
    db = await freshTsqlDatabase((engine as { url: string }).url, 'tm_cs');
    await tsqlQuery(db.url, `CREATE TABLE cs_t (${cols.map((c) => `[${c.name}] ${TSQL_TYPES[c.name]}`).join(', ')})`);
    await tsqlQuery(db.url, `INSERT INTO cs_t VALUES ${TSQL_ROWS.join(', ')}`);
    duck = await duckTable();
  });
  afterAll(async () => {
    await duck?.close();
    await db?.drop();
  });

  it('row by row, the canonical texts are identical (non-ASCII, quotes, separators, empty and spaced text, 2^53 + 1, offsets)', async () => {
    const duckRows = await duck.rows<{ id: number; t: string }>(`SELECT id, ${canonicalRowSql('duckdb', duckRollbackStyle, cols)} AS t FROM cs_t ORDER BY id`);
    const tsqlRows = await tsqlQuery(db.url, `SELECT id, ${canonicalRowSql('mssql', synapseRollbackStyle, cols)} AS t FROM cs_t ORDER BY id`);
    // An engine quirk, not a T-SQL rule: Babelfish returns this concatenation of varchar and
    // nvarchar parts through a Latin-1 code page, so ☃ (outside it) comes back as '?' (SQL
    // Server returns nvarchar by type precedence). The hashed text is cast under the UTF-8
    // collation and is right, as the checksum test below shows with the same row.
    const quirk = (t: string) => t.replace('☃', '?');
    expect(tsqlRows).toEqual(duckRows.map((r) => ({ ...r, t: quirk(r.t) })));
    expect(duckRows[2]!.t).toContain('☃');
  });

  it('the T-SQL checksum (synapse and mssql render the same) equals the one the transform computes in DuckDB, its sum as text', async () => {
    const reference = formatChecksum(await duck.one(checksumStatement('duckdb', duckRollbackStyle, cols, 'cs_t').sql));
    const st = checksumStatement('mssql', synapseRollbackStyle, cols, 'cs_t');
    expect(checksumStatement('synapse', synapseRollbackStyle, cols, 'cs_t').sql).toBe(st.sql);
    const row = (await tsqlQuery(db.url, st.sql))[0]!;
    expect(typeof row.s).toBe('string');
    expect(formatChecksum(row as { n: unknown; s: unknown })).toBe(reference);
    expect(reference.split(':')[1]!.length).toBeGreaterThan(16);
  });
});
