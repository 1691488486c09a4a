import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { QualifiedName } from '../../config/identifiers.js';
import { memoryLimitBytes } from '../../config/memory-limit.js';
import { TerminalError, TransientError } from '../../errors.js';
import { checksumSql } from '../../canonical/row-hash.js';
import { DuckSession, duckLiteral, type DuckSettings, type Statement } from '../../duckdb/session.js';
import type { ExistingColumn } from '../dialect.js';
import { logicalFromDuck, type MergePlan, type PlanColumn } from '../plan.js';
import { baseMoved, type LedgerHead, type MergeOutcome, type Warehouse, type WarehouseSql } from '../warehouse.js';
import { duckdbDialect, duckStyle } from './dialect.js';
import { changesRelation } from '../changes-relation.js';

const STAGE: QualifiedName = { name: '_tm_stage' };

/** Thrown inside the transaction to roll it back when the commit check fails. */
class BaseMoved extends Error {}

/**
 * Runs one statement of the merge transaction. A port so that the reliability suite can fail
 * the merge between two statements of the open transaction (a driver-level fault), and so that
 * tracing can wrap statements; the default simply executes.
 */
export type StatementExecutor = (session: DuckSession, statement: Statement) => Promise<void>;

export const executeStatement: StatementExecutor = (session, statement) => session.exec(statement);

/**
 * How the merge closes current versions in a warehouse file of `usedBytes` under DuckDB's
 * `memoryLimitBytes`. An UPDATE of `_tm_valid_to` and `_tm_is_current` touches nearly every
 * vector of a big table (a batch's keys are spread over it) and holds them in the buffer
 * pool to COMMIT; past the memory limit that goes through eviction. Measured on a 2.9 GB file
 * of 50 M versions, 80 k closed: UPDATE + COMMIT 1.5 s with a 4 GB limit, 4.7–7.7 s with
 * 1 GB, while copying the closed versions and deleting the originals took 3.8 s. Below the
 * limit the UPDATE is the cheaper one (10 M versions, 0.7 GB, 1 GB: 0.3 s against 0.9 s; the
 * copy reads every column of the table).
 */
export function closeByCopy(usedBytes: number, memoryLimit: number): boolean {
  return usedBytes > memoryLimit;
}

/**
 * The embedded warehouse: one DuckDB file. DuckDB allows one writing process per file, so a
 * session is opened per operation and the file closed after it (unless a one-shot command
 * retains it, see retainDuckFiles); a lock held by another process is transient (the host
 * retries), not a failure of the run.
 */
export class DuckDbWarehouse implements Warehouse {
  readonly dialect = duckdbDialect;

  constructor(
    private readonly file: string,
    private readonly settings: DuckSettings,
    private readonly execute: StatementExecutor = executeStatement,
    /** `auto` chooses by the file's size against the memory limit (see closeByCopy); tests pin one. */
    private readonly closeBy: 'auto' | 'update' | 'copy' = 'auto',
  ) {}

  private async closesByCopy(s: DuckSession): Promise<boolean> {
    if (this.closeBy !== 'auto') return this.closeBy === 'copy';
    const r = await s.one<{ used: bigint }>('SELECT (used_blocks * block_size)::BIGINT AS used FROM pragma_database_size() WHERE database_name = current_database()');
    return closeByCopy(Number(r?.used ?? 0), memoryLimitBytes(this.settings.memoryLimit));
  }

  private async session<T>(fn: (s: DuckSession) => Promise<T>): Promise<T> {
    mkdirSync(dirname(this.file), { recursive: true });
    let s: DuckSession;
    try {
      s = await DuckSession.open(this.file, this.settings);
    } catch (err) {
      const msg = (err as Error).message;
      if (/lock|Conflicting/i.test(msg)) throw new TransientError(`warehouse file ${this.file} is locked by another process`, { cause: err });
      throw err;
    }
    try {
      await s.run(`SET TimeZone = 'UTC'`);
      return await fn(s);
    } finally {
      await s.close();
    }
  }

  private async describeIn(s: DuckSession, target: QualifiedName): Promise<ExistingColumn[]> {
    const st = this.dialect.describeTarget(target);
    return s.rows<ExistingColumn>(st.sql, st.parameters);
  }

  describe(target: QualifiedName): Promise<ExistingColumn[]> {
    return this.session((s) => this.describeIn(s, target));
  }

  merge(planIn: Omit<MergePlan, 'stage'>, changesFile: string): Promise<MergeOutcome> {
    const plan: MergePlan = { ...planIn, stage: STAGE };
    return this.session(async (s) => {
      const existing = await this.describeIn(s, plan.target);
      for (const st of this.dialect.ensureTarget(plan, existing)) await s.exec(st);
      const check = this.dialect.ledgerCheck(plan);
      if ((await s.rows(check.sql, check.parameters)).length > 0) return 'already-merged';
      // A view, not a copy: DuckDB reads the changes Parquet directly in each step (docs/design.md §9),
      // so a big load is not first materialized into a temp table (the costliest merge step).
      await s.run(`CREATE OR REPLACE TEMP VIEW ${duckStyle.qualify(STAGE)} AS SELECT * FROM ${changesRelation(changesFile, plan.versionKeyFrom)}`);
      try {
        return await s.transaction(async () => {
          // Checked again inside the transaction: a concurrent duplicate delivery that
          // committed first makes this one a no-op instead of a double apply.
          if ((await s.rows(check.sql, check.parameters)).length > 0) return 'already-merged' as const;
          // The commit check: applied only on top of the run it was computed against. A
          // concurrent commit on the same base is stopped by the ledger's unique index.
          const head = this.dialect.ledgerHead(plan.target, plan.pipeline);
          if (baseMoved((await s.rows<LedgerHead>(head.sql, head.parameters))[0], plan)) throw new BaseMoved();
          for (const st of this.dialect.mergeSteps(plan, { closeByCopy: await this.closesByCopy(s) })) await this.execute(s, st);
          return 'merged' as const;
        });
      } catch (err) {
        if (err instanceof BaseMoved) return 'base-moved';
        const msg = (err as Error).message;
        if (/Constraint Error|duplicate key|constraint violation/i.test(msg)) {
          return (await s.rows(check.sql, check.parameters)).length > 0 ? 'already-merged' : 'base-moved';
        }
        if (/Conversion Error|Binder Error|Catalog Error/.test(msg)) {
          throw new TerminalError(`merge into ${duckStyle.qualify(plan.target)} failed: ${msg}`, { cause: err });
        }
        throw err;
      }
    });
  }

  currentRowCount(target: QualifiedName): Promise<number> {
    return this.session(async (s) => {
      const st = this.dialect.currentRowCount(target);
      return Number((await s.one<{ n: bigint }>(st.sql, st.parameters))?.n ?? 0);
    });
  }

  checksum(target: QualifiedName, columns: readonly string[], keys: readonly string[], scope: 'table' | { changesFile: string }): Promise<string> {
    return this.session(async (s) => {
      const existing = await this.describeIn(s, target);
      const typed = columns.map((c) => {
        const e = existing.find((x) => x.name === c);
        if (!e) throw new TerminalError(`checksum column ${c} is not in the target`);
        return { name: c, type: e.type };
      });
      const q = duckStyle.q;
      const current = `(SELECT * FROM ${duckStyle.qualify(target)} WHERE ${q('_tm_is_current')} AND NOT ${q('_tm_is_deleted')})`;
      const rel =
        scope === 'table'
          ? `${current} AS _tm_t`
          : `(SELECT t.* FROM ${current} AS t WHERE EXISTS (SELECT 1 FROM read_parquet(${duckLiteral(scope.changesFile)}) AS c WHERE c._tm_op IN ('insert', 'update', 'type1') AND ${keys
              .map((k) => `c.${q(k)} = t.${q(k)}`)
              .join(' AND ')})) AS _tm_t`;
      const r = await s.one<{ n: bigint; s: bigint }>(checksumSql(typed, rel));
      return `${r?.n ?? 0}:${r?.s ?? 0}`;
    });
  }

  asOf(target: QualifiedName, columns: readonly PlanColumn[], at: string, o?: { keys?: readonly string[]; limit?: number }): Promise<Record<string, unknown>[]> {
    return this.session(async (s) => {
      const st = this.dialect.asOf(target, columns, at, o);
      return s.rows(st.sql, st.parameters);
    });
  }

  readonly sql: WarehouseSql = {
    query: <T>(st: Statement) => this.session((s) => s.rows<T>(st.sql, st.parameters)),
    execute: (statements: readonly Statement[]) =>
      this.session(async (s) => {
        for (const st of statements) await s.exec(st);
      }),
    transaction: (statements: readonly Statement[]) =>
      this.session((s) =>
        s.transaction(async () => {
          for (const st of statements) await s.exec(st);
        }),
      ),
    readOnly: <T>(st: Statement) =>
      this.session(async (s) => {
        await s.run('BEGIN TRANSACTION');
        try {
          return await s.rows<T>(st.sql, st.parameters);
        } finally {
          await s.run('ROLLBACK').catch(() => undefined);
        }
      }),
  };

  async close(): Promise<void> {}
}

export function planColumnsFromDuck(schema: ReadonlyArray<{ name: string; type: string }>): PlanColumn[] {
  return schema.filter((c) => !c.name.startsWith('_tm_')).map((c) => ({ name: c.name, type: logicalFromDuck(c.type) }));
}
