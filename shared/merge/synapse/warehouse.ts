import type * as Mssql from 'mssql';
import { lazyModule } from '../../lazy-module.js';

const mssqlLib = lazyModule<typeof Mssql>('mssql');
import type { QualifiedName } from '../../config/identifiers.js';
import { parseDuration } from '../../config/duration.js';
import { readSetting } from '../../config/load.js';
import type { PipelineConfig, WarehouseConfig } from '../../config/schema.js';
import { ConfigError, TerminalError } from '../../errors.js';
import { DuckSession, duckLiteral, type DuckSettings, type SqlValue } from '../../duckdb/session.js';
import { canonicalText } from '../../canonical/row-hash.js';
import { duckTypeName } from '../duckdb/dialect.js';
import type { ExistingColumn, Statement } from '../dialect.js';
import { logicalFromDuck, type MergePlan, type PlanColumn } from '../plan.js';
import { baseMoved, type BlobRef, type LedgerHead, type MergeOutcome, type Warehouse, type WarehouseSql } from '../warehouse.js';
import { checksumStatement, formatChecksum } from '../../validate/canonical-sql.js';
import {
  logicalFromTsql,
  oversizeChecks,
  oversizeError,
  quoteBracket,
  rowsPerInsert,
  synapseCopyInto,
  synapseCommitGuard,
  tsqlColumnTypes,
  tsqlDialect,
  tsqlInsertRows,
  tsqlStageStatements,
  tsqlTempTable,
  type CopySource,
  type Distribution,
  type OversizeCheck,
  type TsqlProduct,
} from './dialect.js';

/**
 * What a T-SQL warehouse needs from a connection. The real one is `MssqlDriver`; unit tests
 * pass a recording fake (no Synapse can run on a laptop), integration tests the real driver
 * against a real T-SQL engine (test/support/tsql-engine.ts).
 */
export interface TsqlDriver {
  query(st: Statement): Promise<Record<string, unknown>[]>;
  begin(): Promise<void>;
  commit(): Promise<void>;
  rollback(): Promise<void>;
  close(): Promise<void>;
}

/**
 * `mssql` with requestTimeout raised: its default is 15 s ("mssql" README, configuration),
 * far below a COPY INTO or an UPDATE over a large dimension. One connection, so that the
 * transaction and the statements in it share a session.
 */
export class MssqlDriver implements TsqlDriver {
  private pool: Mssql.ConnectionPool | undefined;
  private tx: Mssql.Transaction | undefined;

  constructor(
    private readonly connectionString: string,
    readonly requestTimeoutMs: number,
  ) {}

  /** The pool config: the connection string's settings with our timeout and a single connection. */
  config(): Mssql.config {
    const parsed = mssqlLib().ConnectionPool.parseConnectionString(this.connectionString);
    return { ...parsed, requestTimeout: this.requestTimeoutMs, pool: { max: 1, min: 0 } };
  }

  private async connect(): Promise<Mssql.ConnectionPool> {
    if (!this.pool) this.pool = await new (mssqlLib().ConnectionPool)(this.config()).connect();
    return this.pool;
  }

  async query(st: Statement): Promise<Record<string, unknown>[]> {
    const req = this.tx ? new (mssqlLib().Request)(this.tx) : (await this.connect()).request();
    st.parameters.forEach((v, i) => req.input(`p${i + 1}`, v));
    const r = await req.query(st.sql);
    return (r.recordset ?? []) as Record<string, unknown>[];
  }

  async begin(): Promise<void> {
    this.tx = new (mssqlLib().Transaction)(await this.connect());
    await this.tx.begin();
  }

  async commit(): Promise<void> {
    await this.tx?.commit();
    this.tx = undefined;
  }

  async rollback(): Promise<void> {
    await this.tx?.rollback().catch(() => undefined);
    this.tx = undefined;
  }

  async close(): Promise<void> {
    await this.pool?.close();
    this.pool = undefined;
  }
}

export interface SynapseOptions {
  /** Account endpoint COPY INTO reads from, e.g. https://acct.dfs.core.windows.net */
  stagingUrl: string;
  credential: CopySource['credential'];
  distribution: Distribution;
  duck: DuckSettings;
}

/**
 * DuckDB SQL over the changes file: for each bounded column, its longest value over the limit
 * (check index, length, the row's key as text), the first check's first. Text is measured in
 * UTF-16 code units, what nvarchar(n) counts: characters beyond U+FFFF count twice. The UTF-8
 * byte length is never below that, so it filters cheaply first.
 */
export function oversizeQuery(checks: readonly OversizeCheck[], keys: readonly string[], file: string): string {
  const dq = (n: string) => `"${n.replace(/"/g, '""')}"`;
  const key = `concat_ws(', ', ${keys.map((k) => `CAST(${dq(k)} AS VARCHAR)`).join(', ')})`;
  const parts = checks.map((c, i) => {
    // A list is measured as the JSON text the stage receives (insertStage), not DuckDB's list text.
    const v = c.unit === 'binary' ? dq(c.column) : c.listType ? canonicalText({ name: c.column, type: c.listType }, undefined, 3) : `CAST(${dq(c.column)} AS VARCHAR)`;
    const len = c.unit === 'binary' ? `octet_length(${v})` : `length(${v}) + length(regexp_replace(${v}, '[^\\x{10000}-\\x{10FFFF}]', '', 'g'))`;
    const bytes = c.unit === 'binary' ? `octet_length(${v})` : `strlen(${v})`;
    return `(SELECT ${i} AS i, len, k FROM (SELECT ${len} AS len, ${key} AS k FROM read_parquet(${duckLiteral(file)}) WHERE ${bytes} > ${c.limit}) WHERE len > ${c.limit} ORDER BY len DESC LIMIT 1)`;
  });
  return `SELECT * FROM (${parts.join(' UNION ALL ')}) ORDER BY i LIMIT 1`;
}

/** How the stage is loaded: COPY INTO from storage (Synapse) or bound inserts from the local file. */
type Staging = { kind: 'copyInto'; stagingUrl: string; credential: CopySource['credential'] } | { kind: 'insert' };

/** The URL COPY INTO reads; checks the endpoint the credential needs ("Securely load data using Synapse SQL"). */
export function copySourceUrl(stagingUrl: string, credential: CopySource['credential'], blob: BlobRef): string {
  let u: URL;
  try {
    u = new URL(stagingUrl);
  } catch (cause) {
    throw new TerminalError(`the staging URL setting is not a URL (${stagingUrl}); set it to https://<account>.dfs.core.windows.net`, { cause });
  }
  if (u.protocol !== 'https:') throw new TerminalError(`the staging URL must be https, got ${stagingUrl}`);
  let host = u.host;
  if (credential.kind === 'managedIdentity') {
    if (!/\.dfs\.core\.windows\.net$/.test(host)) {
      throw new TerminalError(
        `COPY INTO with a managed identity reads ADLS Gen2 through the .dfs endpoint; the staging URL ${stagingUrl} is not https://<account>.dfs.core.windows.net`,
      );
    }
  } else {
    // SAS on Parquet needs the .blob endpoint: accept either and use .blob.
    host = host.replace(/\.dfs\.core\.windows\.net$/, '.blob.core.windows.net');
  }
  const path = [blob.container, ...blob.name.split('/')].map(encodeURIComponent).join('/');
  return `https://${host}/${path}`;
}

/**
 * A T-SQL warehouse: Synapse dedicated SQL pool (`SynapseWarehouse`) or SQL Server / Azure SQL
 * (`MssqlWarehouse`), one class, the product's differences being the dialect's features. DDL
 * (schema, target, ledger, stage) runs outside any transaction, as the pool requires; the
 * stage is loaded (COPY INTO from the changes Parquet in storage on Synapse, bound multi-row
 * inserts from the local changes file on SQL Server); then one transaction runs the ledger
 * check, the SCD steps and the ledger insert. The stage table is dropped afterwards, outside it.
 */
export class TsqlWarehouse implements Warehouse {
  readonly dialect;

  constructor(
    readonly product: TsqlProduct,
    protected readonly driver: TsqlDriver,
    private readonly staging: Staging,
    private readonly distribution: Distribution,
    private readonly duck: DuckSettings,
  ) {
    this.dialect = tsqlDialect(product, distribution);
  }

  private stageName(plan: Pick<MergePlan, 'target' | 'pipeline'>): QualifiedName {
    const name = `_tm_stage_${plan.pipeline}`;
    return plan.target.schema ? { schema: plan.target.schema, name } : { name };
  }

  async describe(target: QualifiedName): Promise<ExistingColumn[]> {
    const rows = await this.driver.query(this.dialect.describeTarget(target));
    return rows.map((r) => ({ name: String(r.name), type: String(r.type) }));
  }

  private async parquetColumns(file: string): Promise<Array<{ name: string; type: ReturnType<typeof logicalFromDuck> }>> {
    const duck = await DuckSession.open(':memory:', this.duck);
    try {
      const rows = await duck.rows<{ column_name: string; column_type: string }>(`DESCRIBE SELECT * FROM read_parquet(${duckLiteral(file)})`);
      return rows.map((r) => ({ name: r.column_name, type: logicalFromDuck(r.column_type) }));
    } finally {
      await duck.close();
    }
  }

  async merge(planIn: Omit<MergePlan, 'stage'>, changesFile: string, changesBlob?: BlobRef): Promise<MergeOutcome> {
    if (this.staging.kind === 'copyInto' && !changesBlob) throw new TerminalError('the synapse warehouse loads the changes from storage; the merge stage must pass the changes blob');
    if (planIn.versionKeyFrom) {
      // Written for a warehouse that computes the version key while it reads the file (the
      // target's warehouse changed while this run was in flight): COPY INTO would load no key.
      throw new TerminalError(
        `the changes of run ${planIn.runId} of ${planIn.pipeline} hold no _tm_version_key (written for a DuckDB or PostgreSQL target); nothing was applied. Cancel the run and start a new one: its transform writes the file this warehouse reads`,
      );
    }
    const plan: MergePlan = { ...planIn, stage: this.stageName(planIn) };
    const columns = await this.parquetColumns(changesFile);
    const lists = columns.filter((c) => c.type.kind === 'list');
    if (this.staging.kind === 'copyInto' && lists.length > 0) {
      // COPY INTO reads no Parquet LIST into a column; the JSON text is made by DuckDB on the
      // insert path only. Refused before anything is written.
      throw new TerminalError(
        `list column(s) ${lists.map((c) => c.name).join(', ')} cannot be loaded into Synapse by COPY INTO; land them as JSON text in transform.sql (CAST(to_json(${lists[0]!.name}) AS VARCHAR) AS ${lists[0]!.name})`,
      );
    }
    const existing = await this.describe(plan.target);
    const types = tsqlColumnTypes(this.product, plan, existing);
    // Before any statement that changes the warehouse: a value its bounded column cannot hold
    // would make COPY INTO or the insert fail halfway (or, with ANSI_WARNINGS off, be cut).
    await this.refuseOversize(plan, types, changesFile);
    for (const st of this.dialect.ensureTarget(plan, existing)) await this.driver.query(st);
    const check = this.dialect.ledgerCheck(plan);
    if ((await this.driver.query(check)).length > 0) return 'already-merged';
    for (const st of tsqlStageStatements(this.product, plan.stage, columns, plan.keys, this.distribution, types)) await this.driver.query(st);
    try {
      if (this.staging.kind === 'copyInto') {
        await this.driver.query(
          synapseCopyInto(plan.stage, { url: copySourceUrl(this.staging.stagingUrl, this.staging.credential, changesBlob!), credential: this.staging.credential }),
        );
      } else {
        await this.insertStage(plan.stage, columns, changesFile);
      }
      await this.driver.begin();
      try {
        // READ UNCOMMITTED is the pool's default: the check inside the transaction closes the
        // window between the first check and the merge for a redelivered message.
        const guard = synapseCommitGuard(plan);
        await this.driver.query(guard.lock);
        if ((await this.driver.query(check)).length > 0) {
          await this.driver.rollback();
          return 'already-merged';
        }
        if (baseMoved((await this.driver.query(this.dialect.ledgerHead(plan.target, plan.pipeline)))[0] as LedgerHead | undefined, plan)) {
          await this.driver.rollback();
          return 'base-moved';
        }
        for (const st of this.dialect.mergeSteps(plan)) await this.driver.query(st);
        if (Number((await this.driver.query(guard.verify))[0]?.n ?? 0) > 1) {
          await this.driver.rollback();
          return 'base-moved';
        }
        await this.driver.commit();
        return 'merged';
      } catch (err) {
        await this.driver.rollback();
        throw err;
      }
    } finally {
      await this.driver.query({ sql: `IF OBJECT_ID(N'${this.dialect.qualify(plan.stage).replace(/'/g, "''")}', N'U') IS NOT NULL DROP TABLE ${this.dialect.qualify(plan.stage)}`, parameters: [] }).catch(() => undefined);
    }
  }

  /** The longest value of each bounded column in the changes file, refused when it does not fit. */
  private async refuseOversize(plan: MergePlan, types: ReadonlyMap<string, string>, changesFile: string): Promise<void> {
    const checks = oversizeChecks(plan, types);
    if (!checks.length) return;
    const duck = await DuckSession.open(':memory:', this.duck);
    try {
      const rows = await duck.rows<{ i: number; len: number | bigint; k: string | null }>(oversizeQuery(checks, plan.keys, changesFile));
      const worst = rows[0];
      if (worst) throw oversizeError(this.product, plan.pipeline, checks[Number(worst.i)]!, Number(worst.len), worst.k);
    } finally {
      await duck.close();
    }
  }

  async currentRowCount(target: QualifiedName): Promise<number> {
    return Number((await this.driver.query(this.dialect.currentRowCount(target)))[0]?.n ?? 0);
  }

  /**
   * Loads the stage from the local changes file with bound multi-row inserts. Every value is
   * bound as text DuckDB printed exactly (decimals with their scale, hugeints in full,
   * timestamps to the microsecond, in UTC) and converted by the server to the stage column's
   * type, so no value goes through a JavaScript number; binary values are bound as bytes.
   */
  private async insertStage(stage: QualifiedName, columns: ReadonlyArray<{ name: string; type: ReturnType<typeof logicalFromDuck> }>, changesFile: string): Promise<void> {
    const dq = (n: string) => `"${n.replace(/"/g, '""')}"`;
    const select = columns
      .map((c) => {
        const col = dq(c.name);
        if (c.type.kind === 'binary') return col;
        if (c.type.kind === 'timestamptz') return `strftime(timezone('UTC', ${col}), '%Y-%m-%d %H:%M:%S.%f')`;
        if (c.type.kind === 'timestamp') return `strftime(${col}, '%Y-%m-%d %H:%M:%S.%f')`;
        if (c.type.kind === 'boolean') return `CASE WHEN ${col} THEN '1' WHEN NOT ${col} THEN '0' END`;
        // No arrays in T-SQL: a list lands as its canonical JSON text, which the checksum and
        // the sample then read as it is (validate/canonical-sql.ts).
        if (c.type.kind === 'list') return canonicalText({ name: c.name, type: duckTypeName(c.type) }, undefined, 3);
        return `CAST(${col} AS VARCHAR)`;
      })
      .join(', ');
    const table = this.dialect.qualify(stage);
    const names = columns.map((c) => c.name);
    const perInsert = rowsPerInsert(columns.length);
    const duck = await DuckSession.open(':memory:', this.duck);
    try {
      const result = await duck.conn.stream(`SELECT ${select} FROM read_parquet(${duckLiteral(changesFile)})`);
      let pending: unknown[][] = [];
      const flush = async () => {
        if (!pending.length) return;
        await this.driver.query(tsqlInsertRows(this.product, table, names, pending));
        pending = [];
      };
      for await (const rows of result.yieldRowsJs()) {
        for (const r of rows as unknown[][]) {
          pending.push(r.map((v) => (v instanceof Uint8Array ? Buffer.from(v) : v)));
          if (pending.length >= perInsert) await flush();
        }
      }
      await flush();
    } finally {
      await duck.close();
    }
  }

  /**
   * For a changes scope, the changed keys are read from the local changes file and bound into
   * a session temp table in batches, staying under the 2 100-parameter limit. The checksum
   * itself is validate/canonical-sql.ts's T-SQL rendering, its sum returned as text.
   */
  async checksum(target: QualifiedName, columns: readonly string[], keys: readonly string[], scope: 'table' | { changesFile: string }): Promise<string> {
    const existing = await this.describe(target);
    const typeOf = (name: string) => {
      const e = existing.find((x) => x.name === name);
      if (!e) throw new TerminalError(`checksum column ${name} is not in the target ${this.dialect.qualify(target)}`);
      return e.type;
    };
    const typed = columns.map((name) => ({ name, type: logicalFromTsql(typeOf(name)) }));
    const q = quoteBracket;
    const current = `(SELECT * FROM ${this.dialect.qualify(target)} WHERE ${q('_tm_is_current')} = 1 AND ${q('_tm_is_deleted')} = 0)`;
    let rel = `${current} AS _tm_t`;
    if (scope !== 'table') {
      const K = '#_tm_checksum_keys';
      await this.driver.query({ sql: `IF OBJECT_ID(N'tempdb..${K}') IS NOT NULL DROP TABLE ${K}`, parameters: [] });
      await this.driver.query({ sql: tsqlTempTable(this.product, K, keys.map((k) => ({ name: k, type: typeOf(k) }))), parameters: [] });
      const perBatch = Math.max(1, Math.floor((this.dialect.capabilities.maxParameters - 100) / keys.length));
      const duck = await DuckSession.open(':memory:', this.duck);
      try {
        const result = await duck.conn.stream(
          `SELECT ${keys.map((k) => `CAST(${'"' + k.replace(/"/g, '""') + '"'} AS VARCHAR)`).join(', ')} FROM read_parquet(${duckLiteral(scope.changesFile)}) WHERE _tm_op IN ('insert', 'update', 'type1')`,
        );
        let pending: unknown[][] = [];
        const flush = async () => {
          if (!pending.length) return;
          await this.driver.query(tsqlInsertRows(this.product, K, keys, pending.splice(0, Math.min(pending.length, 1_000))));
          if (pending.length) await flush();
        };
        for await (const rows of result.yieldRowsJs()) {
          for (const r of rows) {
            pending.push(r as unknown[]);
            if (pending.length >= perBatch) await flush();
          }
        }
        await flush();
      } finally {
        await duck.close();
      }
      rel = `(SELECT t.* FROM ${current} AS t WHERE EXISTS (SELECT 1 FROM ${K} AS k WHERE ${keys.map((k) => `k.${q(k)} = t.${q(k)}`).join(' AND ')})) AS _tm_t`;
    }
    const st = checksumStatement(this.product, { q }, typed, rel);
    return formatChecksum((await this.driver.query(st))[0] as { n: unknown; s: unknown } | undefined);
  }

  asOf(target: QualifiedName, columns: readonly PlanColumn[], at: string, o?: { keys?: readonly string[]; limit?: number }): Promise<Record<string, unknown>[]> {
    return this.driver.query(this.dialect.asOf(target, columns, at, o));
  }

  /**
   * Generic SQL for validation rules, rollback and backups. Rollback and restore are DML only,
   * so they run in one user transaction; backups (CTAS, DROP) go through `execute`, outside any.
   */
  readonly sql: WarehouseSql = {
    query: async <T>(st: Statement) => (await this.driver.query(st)) as T[],
    execute: async (statements: readonly Statement[]) => {
      for (const st of statements) await this.driver.query(st);
    },
    transaction: async (statements: readonly Statement[]) => {
      await this.driver.begin();
      try {
        for (const st of statements) await this.driver.query(st);
        await this.driver.commit();
      } catch (err) {
        await this.driver.rollback();
        throw err;
      }
    },
    readOnly: async <T>(st: Statement) => {
      await this.driver.begin();
      try {
        return (await this.driver.query(st)) as T[];
      } finally {
        await this.driver.rollback();
      }
    },
  };

  close(): Promise<void> {
    return this.driver.close();
  }
}



/** The Synapse dedicated SQL pool warehouse: COPY INTO staging, distribution and columnstore. */
export class SynapseWarehouse extends TsqlWarehouse {
  constructor(driver: TsqlDriver, options: SynapseOptions) {
    super('synapse', driver, { kind: 'copyInto', stagingUrl: options.stagingUrl, credential: options.credential }, options.distribution, options.duck);
  }

  static fromConfig(wh: WarehouseConfig, p: PipelineConfig, env: NodeJS.ProcessEnv, duck: DuckSettings): SynapseWarehouse {
    if (wh.kind !== 'synapse') throw new TerminalError(`warehouse ${p.target.warehouse} is ${wh.kind}, not synapse`);
    if (!wh.stagingUrlSetting) {
      throw new ConfigError('tidemark.yaml', `warehouses.${p.target.warehouse}.stagingUrlSetting`, 'synapse needs the app setting holding the ADLS Gen2 endpoint COPY INTO reads from');
    }
    let credential: CopySource['credential'] = { kind: 'managedIdentity' };
    if (wh.credential === 'sas') {
      if (!wh.sasSetting) throw new ConfigError('tidemark.yaml', `warehouses.${p.target.warehouse}.sasSetting`, 'credential: sas needs the app setting holding the SAS token');
      credential = { kind: 'sas', token: readSetting(wh.sasSetting, env).replace(/^\?/, '') };
    }
    const driver = new MssqlDriver(readSetting(wh.setting, env), parseDuration(wh.requestTimeout));
    return new SynapseWarehouse(driver, { stagingUrl: readSetting(wh.stagingUrlSetting, env), credential, distribution: p.target.distribution, duck });
  }
}

/**
 * SQL Server, Azure SQL Database, Managed Instance: enforced primary keys, no COPY INTO (the
 * stage is loaded with bound multi-row inserts, exact for decimals), no distribution.
 */
export class MssqlWarehouse extends TsqlWarehouse {
  constructor(driver: TsqlDriver, duck: DuckSettings) {
    super('mssql', driver, { kind: 'insert' }, 'round_robin', duck);
  }

  static fromConfig(wh: WarehouseConfig, p: PipelineConfig, env: NodeJS.ProcessEnv, duck: DuckSettings): MssqlWarehouse {
    if (wh.kind !== 'mssql') throw new TerminalError(`warehouse ${p.target.warehouse} is ${wh.kind}, not mssql`);
    return new MssqlWarehouse(new MssqlDriver(readSetting(wh.setting, env), parseDuration(wh.requestTimeout)), duck);
  }
}
