import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import type { Statement } from '../../../shared/merge/dialect.js';
import type { MergePlan } from '../../../shared/merge/plan.js';
import { renderLedgerInsert, renderScdSteps } from '../../../shared/merge/scd-sql.js';
import { renderBackup, renderRestore, renderUndoRun, type RollbackStyle } from '../../../shared/rollback/sql.js';
import { duckRollbackStyle, postgresRollbackStyle } from '../../../shared/rollback/styles.js';
import { DuckSession } from '../../../shared/duckdb/session.js';
import { startPostgres, type PostgresHandle } from '../../support/postgres.js';
import { renderRule, renderSampleQuery } from '../../../shared/validate/warehouse-checks.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * The rollback SQL on two real engines: the same merge plans (scd-sql.ts) and the same undo
 * statements run on DuckDB and on PostgreSQL, and both must end in the same tables. The
 * PostgreSQL warehouse driver is built elsewhere; here statements go straight through `pg`.
 */
interface Engine {
  style: RollbackStyle;
  exec(st: Statement): Promise<void>;
  rows(sql: string): Promise<Record<string, unknown>[]>;
  rowsP(sql: string, params: readonly (string | number | null | bigint | boolean)[]): Promise<Record<string, unknown>[]>;
  tx(sts: Statement[]): Promise<void>;
}

const T = { schema: 'dw', name: 'dim' };
const STAGE = { schema: 'dw', name: 'stage' };
const DDL = [
  'CREATE SCHEMA dw',
  `CREATE TABLE dw.dim (id INTEGER, name VARCHAR, city VARCHAR, _tm_valid_from TIMESTAMP, _tm_valid_to TIMESTAMP, _tm_is_current BOOLEAN, _tm_is_deleted BOOLEAN, _tm_row_hash VARCHAR, _tm_run_id VARCHAR, _tm_version_key VARCHAR)`,
  `CREATE TABLE dw._tm_ledger (pipeline VARCHAR NOT NULL, run_id VARCHAR NOT NULL, target_table VARCHAR NOT NULL, boundary TIMESTAMP NOT NULL, inserted BIGINT, updated BIGINT, deleted BIGINT, run_seq BIGINT, base_run_id VARCHAR, read_to VARCHAR, snapshot VARCHAR, committed_at TIMESTAMP, PRIMARY KEY (pipeline, run_id))`,
  `CREATE TABLE dw.stage (id INTEGER, name VARCHAR, city VARCHAR, _tm_op VARCHAR, _tm_valid_from TIMESTAMP, _tm_row_hash VARCHAR, _tm_version_key VARCHAR)`,
];

type StageRow = [number, string | null, string | null, string, string];
const RUNS: Array<{ runId: string; boundary: string; rows: StageRow[] }> = [
  { runId: '20260101T000000Z-0001', boundary: '2026-01-01T00:00:00Z', rows: [[1, 'Ann', 'Oslo', 'insert', 'h1'], [2, 'Bob', 'Rome', 'insert', 'h2'], [3, 'Cy', 'Lima', 'insert', 'h3']] },
  { runId: '20260101T010000Z-0002', boundary: '2026-01-01T01:00:00Z', rows: [[1, 'Ann', 'Bergen', 'update', 'h1b'], [3, null, null, 'delete', ''], [4, 'Dee', 'Kyiv', 'insert', 'h4']] },
  { runId: '20260101T020000Z-0003', boundary: '2026-01-01T02:00:00Z', rows: [[1, 'Ann', 'Oslo', 'update', 'h1'], [3, 'Cy', 'Lima', 'insert', 'h3'], [2, null, null, 'delete', '']] },
];

function plan(i: number, deletes: 'retire' | 'mark'): MergePlan {
  const r = RUNS[i]!;
  const n = (op: string) => r.rows.filter((x) => x[3] === op).length;
  return {
    pipeline: 'p',
    runId: r.runId,
    boundary: r.boundary,
    target: T,
    stage: STAGE,
    keys: ['id'],
    columns: [
      { name: 'id', type: { kind: 'integer', bits: 32 } },
      { name: 'name', type: { kind: 'text' } },
      { name: 'city', type: { kind: 'text' } },
    ],
    type1Columns: [],
    deletes,
    scd: 2,
    counts: { inserted: n('insert'), updated: n('update'), deleted: n('delete'), type1: 0 },
    commit: { baseRunId: RUNS[i - 1]?.runId ?? null, runSeq: i + 1, readTo: null, snapshot: `state/p/${r.runId}.json` },
  };
}

async function apply(e: Engine, i: number, deletes: 'retire' | 'mark'): Promise<void> {
  const r = RUNS[i]!;
  const vf = r.boundary.replace('T', ' ').replace('Z', '');
  await e.exec({ sql: 'DELETE FROM dw.stage', parameters: [] });
  for (const [id, name, city, op, hash] of r.rows) {
    await e.exec({
      sql: `INSERT INTO dw.stage VALUES ($1, $2, $3, $4, CAST($5 AS TIMESTAMP), $6, $7)`,
      parameters: [id, name, city, op, vf, hash, `${id}@${vf}`],
    });
  }
  const p = plan(i, deletes);
  await e.tx([...renderScdSteps(e.style, p), renderLedgerInsert(e.style, p)]);
}

async function undo(e: Engine, i: number): Promise<void> {
  const r = RUNS[i]!;
  await e.tx(renderUndoRun(e.style, { target: T, keys: ['id'], pipeline: 'p', runId: r.runId, boundary: r.boundary.replace('T', ' ').replace('Z', '') }));
}

const snapshot = (e: Engine) =>
  e.rows(
    `SELECT id, name, city, CAST(_tm_valid_from AS VARCHAR) AS vf, CAST(_tm_valid_to AS VARCHAR) AS vt, _tm_is_current AS cur, _tm_is_deleted AS del, _tm_run_id AS run FROM dw.dim ORDER BY id, _tm_valid_from, _tm_is_deleted`,
  );
const ledger = async (e: Engine) => (await e.rows('SELECT run_id FROM dw._tm_ledger ORDER BY run_id')).map((r) => r.run_id);

async function duckEngine(): Promise<Engine & { close(): void }> {
  const s = await DuckSession.open(':memory:', { memoryLimit: '256MB', threads: 1, tempDir: join(tmpdir(), 'tm-undo-sql') });
  return {
    style: duckRollbackStyle,
    exec: (st) => s.exec(st),
    rows: (sql) => s.rows(sql),
    rowsP: (sql, params) => s.rows(sql, params),
    tx: (sts) => s.transaction(async () => {
      for (const st of sts) await s.exec(st);
    }),
    close: () => s.close(),
  };
}

async function pgEngine(url: string, schemaDrop: boolean): Promise<Engine & { close(): Promise<void> }> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  if (schemaDrop) await c.query('DROP SCHEMA IF EXISTS dw CASCADE');
  return {
    style: postgresRollbackStyle,
    exec: async (st) => {
      await c.query(st.sql, st.parameters as unknown[]);
    },
    rows: async (sql) => (await c.query(sql)).rows as Record<string, unknown>[],
    rowsP: async (sql, params) => (await c.query(sql, params as unknown[])).rows as Record<string, unknown>[],
    tx: async (sts) => {
      await c.query('BEGIN');
      try {
        for (const st of sts) await c.query(st.sql, st.parameters as unknown[]);
        await c.query('COMMIT');
      } catch (err) {
        await c.query('ROLLBACK');
        throw err;
      }
    },
    close: () => c.end(),
  };
}

describe.each(['retire', 'mark'] as const)('undo SQL on duckdb and postgres agree (deletes: %s)', (deletes) => {
  let pgh: PostgresHandle;
  beforeAll(async () => {
    pgh = await startPostgres();
  });
  afterAll(async () => {
    await pgh?.stop();
  });

  it('undo of the newest runs restores the earlier tables; re-applying gives the same tables; both engines equal', async () => {
    const duck = await duckEngine();
    const pgE = await pgEngine(pgh.url, true);
    try {
      const results: Record<string, unknown>[][][] = [];
      for (const e of [duck, pgE]) {
        for (const sql of DDL) await e.exec({ sql, parameters: [] });
        const states: Record<string, unknown>[][] = [];
        await apply(e, 0, deletes);
        states.push(await snapshot(e));
        await apply(e, 1, deletes);
        states.push(await snapshot(e));
        await apply(e, 2, deletes);
        states.push(await snapshot(e));
        await undo(e, 2);
        expect(await snapshot(e)).toEqual(states[1]);
        await undo(e, 1);
        expect(await snapshot(e)).toEqual(states[0]);
        expect(await ledger(e)).toEqual([RUNS[0]!.runId]);
        await apply(e, 1, deletes);
        await apply(e, 2, deletes);
        expect(await snapshot(e)).toEqual(states[2]);
        // Backup and restore on the same engine: a copy taken now, more changes undone by it.
        for (const st of renderBackup(e.style, T, { schema: 'dw', name: 'dim_bk' })) await e.exec(st);
        await undo(e, 2);
        await e.tx(renderRestore(e.style, { target: T, backup: { schema: 'dw', name: 'dim_bk' }, columns: ['id', 'name', 'city', '_tm_valid_from', '_tm_valid_to', '_tm_is_current', '_tm_is_deleted', '_tm_row_hash', '_tm_run_id', '_tm_version_key'], pipeline: 'p', dropRunIds: [] }));
        expect(await snapshot(e)).toEqual(states[2]);
        // Validation rules and the sample query run on the same tables.
        const rule = renderRule(e.style, T, 'SELECT count(*) AS n FROM {{current}} WHERE _tm_run_id = {{run_id}}');
        const ruleRows = await e.rows(rule.sql.replace(e.style.param(1), `'${RUNS[2]!.runId}'`));
        const cols = plan(0, deletes).columns;
        const sample = renderSampleQuery(e.style === duckRollbackStyle ? 'duckdb' : 'postgres', e.style, ['id'], cols, T, ['id=1:1', 'id=1:3', 'id=1:9']);
        const sampleRows = await e.rowsP(sample.sql, sample.parameters);
        states.push([{ rule: Number(ruleRows[0]!.n) }], sampleRows.sort((a, b) => String(a._k).localeCompare(String(b._k))));
        results.push(states);
      }
      // Timestamps print alike (`2026-01-01 01:00:00`) in both engines' VARCHAR casts.
      expect(results[1]).toEqual(results[0]);
      expect(results[0]![1]!.length).toBeGreaterThan(results[0]![0]!.length);
      expect(results[0]![3]).toEqual([{ rule: 2 }]);
      expect(results[0]![4]).toEqual([
        { _k: 'id=1:1', c0: '1', c1: 'Ann', c2: 'Oslo' },
        { _k: 'id=1:3', c0: '3', c1: 'Cy', c2: 'Lima' },
      ]);
    } finally {
      await duck.close();
      await pgE.close();
    }
  });
});
