import type * as Pg from 'pg';
import { lazyModule } from '../../lazy-module.js';
import type { QualifiedName } from '../../config/identifiers.js';
import { TerminalError, TransientError } from '../../errors.js';
import { DuckSession, quoteDuck, type DuckSettings, type SqlValue } from '../../duckdb/session.js';
import type { ExistingColumn, Statement } from '../dialect.js';
import { listElementType } from '../../canonical/row-hash.js';
import { logicalFromDuck, type LogicalType, type MergePlan, type PlanColumn } from '../plan.js';
import { duckTypeName } from '../duckdb/dialect.js';
import { baseMoved, type LedgerHead, type MergeOutcome, type Warehouse, type WarehouseSql } from '../warehouse.js';
import { checksumStatement, formatChecksum } from '../../validate/canonical-sql.js';
import { renderLedgerInsert } from '../scd-sql.js';
import { changesRelation } from '../changes-relation.js';
import { logicalFromPg, pgStyle, pgTypeName, postgresDialect } from './dialect.js';

const pgLib = lazyModule<typeof Pg>('pg');

const STAGE: QualifiedName = { name: '_tm_stage' };
const KEYS_STAGE: QualifiedName = { name: '_tm_checksum_keys' };

/** Rows per INSERT when staging: bounded so a batch never nears the parameter limit or memory. */
const MAX_BATCH_ROWS = 1000;

/** Rows per staging INSERT: at most `cap`, and never more bound parameters than the engine takes. */
export function stagingBatchRows(columnCount: number, maxParameters: number, cap = MAX_BATCH_ROWS): number {
  return Math.max(1, Math.min(cap, Math.floor(maxParameters / Math.max(1, columnCount))));
}

/**
 * DuckDB expression giving the text PostgreSQL's input function reads back as the same value.
 * Every value travels as text so that no JS number, Date or Buffer conversion can alter it.
 */
function pgInputText(name: string, duckType: string): string {
  return pgInputValue(quoteDuck(name), duckType);
}

function pgInputValue(c: string, duckType: string): string {
  const t = duckType.toUpperCase();
  const element = listElementType(t);
  if (element !== undefined) {
    // An array literal ("Arrays – Array Value Input"): every element double-quoted with \ and "
    // escaped, so commas, braces, quotes and the text 'NULL' stay data; a NULL element is NULL.
    const text = `replace(replace(${pgInputValue('_tm_e', element)}, '\\', '\\\\'), '"', '\\"')`;
    return `'{' || array_to_string(list_transform(${c}, _tm_e -> CASE WHEN _tm_e IS NULL THEN 'NULL' ELSE '"' || ${text} || '"' END), ',') || '}'`;
  }
  if (t === 'TIMESTAMP WITH TIME ZONE' || t === 'TIMESTAMPTZ') return `strftime(timezone('UTC', ${c}), '%Y-%m-%d %H:%M:%S.%f') || '+00'`;
  if (t.startsWith('TIMESTAMP')) return `strftime(CAST(${c} AS TIMESTAMP), '%Y-%m-%d %H:%M:%S.%f')`;
  if (t === 'BLOB') return `'\\x' || lower(hex(${c}))`;
  return `CAST(${c} AS VARCHAR)`;
}


/** A plan that only inserts: nothing to close, overwrite or mark. */
function insertsOnly(plan: MergePlan): boolean {
  return plan.counts.updated === 0 && plan.counts.deleted === 0 && plan.counts.type1 === 0;
}

/** PostgreSQL error classes that no retry can fix (SQLSTATE classes 22, 23 minus 23505, 42). */
function isTerminalPgError(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && (/^(22|42)/.test(code) || (code.startsWith('23') && code !== '23505'));
}

/**
 * A PostgreSQL warehouse through `pg`. The changes Parquet is read by DuckDB and streamed into
 * a session temp table in bounded batches of bound parameters, then the rendered plan runs in
 * one transaction with the ledger check and insert.
 */
export class PostgresWarehouse implements Warehouse {
  readonly dialect = postgresDialect;
  /**
   * What the last load of a changes file did (rows, INSERT statements), for logs and tests;
   * `into: 'target'` when a first load went straight into the target, with no stage table.
   */
  lastStage: { rows: number; batches: number; into?: 'target' } | undefined;

  constructor(
    private readonly connectionString: string,
    private readonly duck: DuckSettings,
    private readonly batchRows = MAX_BATCH_ROWS,
  ) {}

  private async session<T>(fn: (c: Pg.Client) => Promise<T>): Promise<T> {
    const client = new (pgLib().Client)({ connectionString: this.connectionString });
    try {
      await client.connect();
    } catch (err) {
      throw new TransientError(`cannot connect to the PostgreSQL warehouse: ${(err as Error).message}`, { cause: err });
    }
    try {
      await client.query(`SET TIME ZONE 'UTC'`);
      return await fn(client);
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  private static async exec(c: Pg.Client, st: Statement): Promise<Pg.QueryResult> {
    return c.query(st.sql, st.parameters as SqlValue[] as unknown[]);
  }

  private async describeIn(c: Pg.Client, target: QualifiedName): Promise<ExistingColumn[]> {
    return (await PostgresWarehouse.exec(c, this.dialect.describeTarget(target))).rows as ExistingColumn[];
  }

  describe(target: QualifiedName): Promise<ExistingColumn[]> {
    return this.session((c) => this.describeIn(c, target));
  }

  /**
   * Loads `select` (a DuckDB query over the Parquet file) into the temp table `into`; returns
   * the rows loaded. Rows travel in batches; never the whole file in JS memory.
   */
  private async stageFrom(
    c: Pg.Client,
    /** The DuckDB relation of the changes file (changes-relation.ts). */
    src: string,
    into: QualifiedName,
    filter: string | undefined,
    only?: readonly string[],
    /** Rows go into the existing table `into` as new current versions of this run (a first load). */
    versionsOf?: { runId: string },
  ): Promise<number> {
    const duck = await DuckSession.open(':memory:', this.duck);
    try {
      await duck.run(`SET TimeZone = 'UTC'`);
      let schema = (await duck.rows<{ column_name: string; column_type: string }>(`DESCRIBE SELECT * FROM ${src}`)).map((r) => ({
        name: r.column_name,
        type: r.column_type,
      }));
      if (only) schema = only.map((n) => schema.find((s) => s.name === n) ?? { name: n, type: 'VARCHAR' });
      const q = pgStyle.q;
      // A first load's versions: the SCD2 columns the changes file does not carry are the same
      // on every row (open, current, not deleted, this run), bound once per INSERT as $1.
      const constant = versionsOf ? { columns: ['_tm_valid_to', '_tm_is_current', '_tm_is_deleted', '_tm_run_id'], sql: `NULL, ${pgStyle.true}, ${pgStyle.false}, $1` } : undefined;
      const relation = versionsOf ? pgStyle.qualify(into) : q(into.name);
      if (!versionsOf) {
        await c.query(`DROP TABLE IF EXISTS pg_temp.${q(into.name)}`);
        await c.query(`CREATE TEMP TABLE ${q(into.name)} (${schema.map((s) => `${q(s.name)} ${pgTypeName(logicalFromDuck(s.type))}`).join(', ')})`);
      }
      const perBatch = stagingBatchRows(schema.length + (constant ? 1 : 0), this.dialect.capabilities.maxParameters, this.batchRows);
      const result = await duck.conn.stream(
        `SELECT ${schema.map((s) => pgInputText(s.name, s.type)).join(', ')} FROM ${src}${filter ? ` WHERE ${filter}` : ''}`,
      );
      const head = `INSERT INTO ${relation} (${[...schema.map((s) => q(s.name)), ...(constant?.columns.map(q) ?? [])].join(', ')}) VALUES `;
      let pending: unknown[][] = [];
      let loaded = 0;
      let batches = 0;
      const flush = async () => {
        if (pending.length === 0) return;
        batches += 1;
        const values: unknown[] = versionsOf ? [versionsOf.runId] : [];
        const tuples = pending.map((row) => `(${[...row.map((v) => (values.push(v), `$${values.length}`)), ...(constant ? [constant.sql] : [])].join(', ')})`);
        await c.query(head + tuples.join(', '), values);
        loaded += pending.length;
        pending = [];
      };
      for await (const rows of result.yieldRowsJs()) {
        for (const row of rows) {
          pending.push(row as unknown[]);
          if (pending.length >= perBatch) await flush();
        }
      }
      await flush();
      if (!versionsOf) await c.query(`ANALYZE ${q(into.name)}`);
      this.lastStage = { rows: loaded, batches, ...(versionsOf ? { into: 'target' as const } : {}) };
      return loaded;
    } finally {
      await duck.close();
    }
  }

  merge(planIn: Omit<MergePlan, 'stage'>, changesFile: string): Promise<MergeOutcome> {
    const plan: MergePlan = { ...planIn, stage: STAGE };
    const where = pgStyle.qualify(plan.target);
    return this.session(async (c) => {
      try {
        const existing = await this.describeIn(c, plan.target);
        for (const st of this.dialect.ensureTarget(plan, existing)) await PostgresWarehouse.exec(c, st);
        const check = this.dialect.ledgerCheck(plan);
        if ((await PostgresWarehouse.exec(c, check)).rows.length > 0) return 'already-merged';
        // A first load (only inserts, into an empty target) has no version to close: its rows
        // go from the changes file straight into the target inside the transaction, instead of
        // into a stage table first and then copied (one write of the dimension, not two).
        const isEmpty = async () => (await c.query(`SELECT 1 FROM ${where} LIMIT 1`)).rows.length === 0;
        const direct = insertsOnly(plan) && (await isEmpty());
        if (!direct) await this.stageFrom(c, changesRelation(changesFile, plan.versionKeyFrom), STAGE, undefined);
        await c.query('BEGIN');
        try {
          // Checked again inside the transaction; a concurrent duplicate that committed first
          // makes the ledger insert fail on its primary key, which is reported as a no-op.
          if ((await PostgresWarehouse.exec(c, check)).rows.length > 0) {
            await c.query('ROLLBACK');
            return 'already-merged';
          }
          // The commit check: applied only on top of the run it was computed against. A
          // concurrent commit on the same base waits on the ledger's unique index and then fails.
          if (baseMoved((await PostgresWarehouse.exec(c, this.dialect.ledgerHead(plan.target, plan.pipeline))).rows[0] as LedgerHead | undefined, plan)) {
            await c.query('ROLLBACK');
            return 'base-moved';
          }
          if (direct) {
            // Rows that landed since the check above would need closing: the retry stages.
            if (!(await isEmpty())) throw new TransientError(`${where} received rows while a first load of ${plan.pipeline} got ready; retrying with a stage table`);
            const only = [...plan.columns.map((col) => col.name), '_tm_valid_from', '_tm_row_hash', '_tm_version_key'];
            await this.stageFrom(c, changesRelation(changesFile, plan.versionKeyFrom), plan.target, `_tm_op = 'insert'`, only, { runId: plan.runId });
            await PostgresWarehouse.exec(c, renderLedgerInsert(pgStyle, plan));
          } else {
            for (const st of this.dialect.mergeSteps(plan)) await PostgresWarehouse.exec(c, st);
          }
          await c.query('COMMIT');
          return 'merged';
        } catch (err) {
          await c.query('ROLLBACK').catch(() => undefined);
          throw err;
        }
      } catch (err) {
        if ((err as { code?: unknown }).code === '23505' && /_tm_ledger/.test(String((err as { table?: unknown }).table ?? (err as Error).message))) {
          return (await PostgresWarehouse.exec(c, this.dialect.ledgerCheck(plan))).rows.length > 0 ? 'already-merged' : 'base-moved';
        }
        if (err instanceof TerminalError) throw err;
        if (isTerminalPgError(err)) throw new TerminalError(`merge into ${where} failed: ${(err as Error).message}`, { cause: err });
        throw err;
      }
    });
  }

  currentRowCount(target: QualifiedName): Promise<number> {
    return this.session(async (c) => Number((await PostgresWarehouse.exec(c, this.dialect.currentRowCount(target))).rows[0]?.n ?? 0));
  }

  checksum(target: QualifiedName, columns: readonly string[], keys: readonly string[], scope: 'table' | { changesFile: string }): Promise<string> {
    return this.session(async (c) => {
      const existing = await this.describeIn(c, target);
      const typed = columns.map((name) => {
        const e = existing.find((x) => x.name === name);
        if (!e) throw new TerminalError(`checksum column ${name} is not in the target ${pgStyle.qualify(target)}`);
        return { name, type: logicalFromPg(e.type) };
      });
      const q = pgStyle.q;
      const current = `(SELECT * FROM ${pgStyle.qualify(target)} WHERE ${q('_tm_is_current')} AND NOT ${q('_tm_is_deleted')})`;
      let rel = `${current} AS _tm_t`;
      if (scope !== 'table') {
        await this.stageFrom(c, changesRelation(scope.changesFile, undefined), KEYS_STAGE, `_tm_op IN ('insert', 'update', 'type1')`, keys);
        rel = `(SELECT t.* FROM ${current} AS t WHERE EXISTS (SELECT 1 FROM ${q(KEYS_STAGE.name)} AS k WHERE ${keys
          .map((k) => `k.${q(k)} = t.${q(k)}`)
          .join(' AND ')})) AS _tm_t`;
      }
      // The one PostgreSQL rendering of the canonical text, shared with the sample check.
      return formatChecksum((await c.query(checksumStatement('postgres', pgStyle, typed, rel).sql)).rows[0] as { n: unknown; s: unknown } | undefined);
    });
  }

  asOf(target: QualifiedName, columns: readonly PlanColumn[], at: string, o?: { keys?: readonly string[]; limit?: number }): Promise<Record<string, unknown>[]> {
    return this.session(async (c) => (await PostgresWarehouse.exec(c, this.dialect.asOf(target, columns, at, o))).rows as Record<string, unknown>[]);
  }

  /** Generic SQL for validation rules, rollback and backups (shared/validate, shared/rollback). */
  readonly sql: WarehouseSql = {
    query: <T>(st: Statement) => this.session(async (c) => (await PostgresWarehouse.exec(c, st)).rows as T[]),
    execute: (statements: readonly Statement[]) =>
      this.session(async (c) => {
        for (const st of statements) await PostgresWarehouse.exec(c, st);
      }),
    transaction: (statements: readonly Statement[]) =>
      this.session(async (c) => {
        await c.query('BEGIN');
        try {
          for (const st of statements) await PostgresWarehouse.exec(c, st);
          await c.query('COMMIT');
        } catch (err) {
          await c.query('ROLLBACK').catch(() => undefined);
          throw err;
        }
      }),
    readOnly: <T>(st: Statement) =>
      this.session(async (c) => {
        await c.query('BEGIN READ ONLY');
        try {
          return (await PostgresWarehouse.exec(c, st)).rows as T[];
        } finally {
          await c.query('ROLLBACK').catch(() => undefined);
        }
      }),
  };

  async close(): Promise<void> {}
}
