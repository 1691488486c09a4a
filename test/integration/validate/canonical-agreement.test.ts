import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { DuckDbWarehouse } from '../../../shared/merge/duckdb/warehouse.js';
import type { PlanColumn } from '../../../shared/merge/plan.js';
import { PostgresWarehouse } from '../../../shared/merge/postgres/warehouse.js';
import { duckRollbackStyle, postgresRollbackStyle } from '../../../shared/rollback/styles.js';
import { DuckSession } from '../../../shared/duckdb/session.js';
import { rowHashExpr } from '../../../shared/canonical/row-hash.js';
import { canonicalRowSql, canonicalTextSql } from '../../../shared/validate/canonical-sql.js';
import { startPostgres, type PostgresHandle } from '../../support/postgres.js';

/**
 * One canonical text per dialect serves the row hash (canonical/row-hash.ts, computed in DuckDB
 * on the extract), the warehouse checksum and the sample check. For the same rows in a DuckDB
 * and a real PostgreSQL warehouse table, the three must agree: md5 of the checksum's row text
 * is the row hash, the sample's field texts are the pieces of that row text, and each
 * warehouse's own `checksum` (PostgreSQL reading its column types back with format_type) gives
 * the figure DuckDB gives.
 */
const COLUMNS: Array<PlanColumn & { duck: string; pg: string }> = [
  { name: 'id', type: { kind: 'integer', bits: 32 }, duck: 'INTEGER', pg: 'integer' },
  { name: 'amount', type: { kind: 'decimal', precision: 12, scale: 4 }, duck: 'DECIMAL(12,4)', pg: 'numeric(12,4)' },
  { name: 'ratio', type: { kind: 'float', bits: 64 }, duck: 'DOUBLE', pg: 'double precision' },
  { name: 'name', type: { kind: 'text' }, duck: 'VARCHAR', pg: 'text' },
  { name: 'seen', type: { kind: 'timestamp' }, duck: 'TIMESTAMP', pg: 'timestamp without time zone' },
  { name: 'seen_tz', type: { kind: 'timestamptz' }, duck: 'TIMESTAMPTZ', pg: 'timestamp with time zone' },
];
// -0.0 and 0.0 hash alike, 1.5000 is 1.5 (hash rule 2); NULLs are left out of the row text.
const ROWS = [
  `(1, 1.5000, -0.0, 'Zoë ☃ 😀 | a=1:2', TIMESTAMP '2026-01-01 10:00:00.123456', TIMESTAMPTZ '2026-01-01 12:00:00+02')`,
  `(2, -0.0500, 0.0, '', TIMESTAMP '1970-01-01 00:00:00', NULL)`,
  `(3, NULL, NULL, NULL, NULL, NULL)`,
  `(4, 100.0000, 3.0, 'ﬁ naïve', NULL, TIMESTAMPTZ '2026-06-30 23:59:59.999999+00')`,
];
const SCD = `, _tm_is_current BOOLEAN, _tm_is_deleted BOOLEAN`;
const values = ROWS.map((r) => r.replace(/\)$/, ', true, false)')).join(', ');

describe('row hash, checksum text and sample text agree (duckdb, postgres)', () => {
  let pgh: PostgresHandle;
  let client: pg.Client;
  let duck: DuckSession;
  let dir: string;
  const settings = { memoryLimit: '256MB', threads: 1, tempDir: join(tmpdir(), 'tm-canon') };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tm-canon-'));
    pgh = await startPostgres();
    client = new pg.Client({ connectionString: pgh.url });
    await client.connect();
    await client.query(`SET TimeZone = 'UTC'`);
    await client.query('CREATE SCHEMA IF NOT EXISTS dw');
    await client.query('DROP TABLE IF EXISTS dw.canon');
    await client.query(`CREATE TABLE dw.canon (${COLUMNS.map((c) => `"${c.name}" ${c.pg}`).join(', ')}${SCD})`);
    await client.query(`INSERT INTO dw.canon VALUES ${values}`);
    duck = await DuckSession.open(join(dir, 'wh.duckdb'), settings);
    await duck.run(`SET TimeZone = 'UTC'`);
    await duck.run('CREATE SCHEMA dw');
    await duck.run(`CREATE TABLE dw.canon (${COLUMNS.map((c) => `"${c.name}" ${c.duck}`).join(', ')}${SCD})`);
    await duck.run(`INSERT INTO dw.canon VALUES ${values}`);
  });
  afterAll(async () => {
    await duck?.close();
    await client?.end();
    await pgh?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('md5 of each engine’s checksum row text is the transform’s row hash; the sample texts are its pieces', async () => {
    // The stored hash is 16 md5 bytes (hash rule 4); as hex it is md5() of the row text on every engine.
    const hash = `lower(hex(${rowHashExpr(COLUMNS.map((c) => ({ name: c.name, type: c.duck })))}))`;
    const texts = (engine: 'duckdb' | 'postgres', s: typeof duckRollbackStyle) => COLUMNS.map((c, i) => `${canonicalTextSql(engine, s, c)} AS c${i}`).join(', ');
    const reference = await duck.rows<Record<string, unknown>>(`SELECT id, ${hash} AS h, ${canonicalRowSql('duckdb', duckRollbackStyle, COLUMNS)} AS t, ${texts('duckdb', duckRollbackStyle)} FROM dw.canon ORDER BY id`);
    const onPg = (
      await client.query(`SELECT id, md5(${canonicalRowSql('postgres', postgresRollbackStyle, COLUMNS)}) AS h, ${canonicalRowSql('postgres', postgresRollbackStyle, COLUMNS)} AS t, ${texts('postgres', postgresRollbackStyle)} FROM dw.canon ORDER BY id`)
    ).rows as Array<Record<string, unknown>>;
    expect(onPg).toEqual(reference);
    for (const r of reference) {
      expect((await duck.one<{ h: string }>(`SELECT md5('${String(r.t).replace(/'/g, "''")}') AS h`))!.h).toBe(r.h);
      // The row text is name=<length>:<sample text> for every non-NULL field, in order.
      const pieces = COLUMNS.flatMap((c, i) => (r[`c${i}`] === null ? [] : [`${c.name}=${[...String(r[`c${i}`])].length}:${String(r[`c${i}`])}`]));
      expect(r.t).toBe(pieces.join('|'));
    }
    expect(reference[0]).toMatchObject({ c1: '1.5', c2: '0.0', c5: '2026-01-01T10:00:00.000000Z' });
    expect(reference[1]).toMatchObject({ c1: '-0.05', c2: '0.0', c3: '', c5: null });
    expect(reference[2]!.t).toBe('id=1:3');
    expect(reference[3]).toMatchObject({ c1: '100', c2: '3.0' });
  });

  it('each warehouse’s own checksum gives the same figure (PostgreSQL through its format_type names)', async () => {
    const cols = COLUMNS.map((c) => c.name);
    const dk = new DuckDbWarehouse(join(dir, 'wh.duckdb'), settings);
    const pw = new PostgresWarehouse(pgh.url, settings, 2);
    try {
      await duck.close();
      const want = await dk.checksum({ schema: 'dw', name: 'canon' }, cols, ['id'], 'table');
      expect(want).toMatch(/^4:\d+$/);
      expect(await pw.checksum({ schema: 'dw', name: 'canon' }, cols, ['id'], 'table')).toBe(want);
      await client.query(`UPDATE dw.canon SET ratio = 0.0 WHERE id = 1`);
      expect(await pw.checksum({ schema: 'dw', name: 'canon' }, cols, ['id'], 'table')).toBe(want);
      await client.query(`UPDATE dw.canon SET name = 'Zoe' WHERE id = 1`);
      expect(await pw.checksum({ schema: 'dw', name: 'canon' }, cols, ['id'], 'table')).not.toBe(want);
    } finally {
      await dk.close();
      await pw.close();
      duck = await DuckSession.open(':memory:', settings);
    }
  });
});
