import type { QualifiedName } from '../../config/identifiers.js';
import { TerminalError } from '../../errors.js';
import type { Dialect, DialectCapabilities, ExistingColumn, Statement } from '../dialect.js';
import type { LogicalType, MergePlan, PlanColumn } from '../plan.js';
import { ledgerName } from '../scd-sql.js';
import { assertIdentifierLengths, planTargetChanges, scdColumnDefs, widensBy } from '../target.js';

/**
 * Azure Synapse Analytics dedicated SQL pool. Each fact below is from Microsoft's documentation
 * (Microsoft Learn, page titles quoted):
 *  - transactionalDdl false: "Use transactions in a SQL pool in Azure Synapse" lists the
 *    limitations; DDL such as CREATE TABLE is not allowed inside a user-defined transaction.
 *    The same page: the default isolation is READ UNCOMMITTED, so the run ledger check is
 *    repeated inside the merge transaction and the pipeline lease keeps merges one at a time.
 *  - merge true but unused: MERGE exists in the dedicated pool ("MERGE (Transact-SQL)",
 *    applies to dedicated SQL pool; Azure update "Generally available: MERGE command for Azure
 *    Synapse Analytics", Oct 2022), but its NOT MATCHED BY TARGET branch needs a
 *    HASH-distributed target without IDENTITY (same page, remarks for Azure Synapse). The
 *    plan is therefore UPDATE … FROM + INSERT … SELECT, which works on every distribution
 *    (REPLICATE and ROUND_ROBIN included).
 *  - UPDATE … FROM with an implicit join (target named by its table name, the stage in FROM,
 *    the join in WHERE): "Using CTAS to work around unsupported features", section "ANSI join
 *    replacement for update statements" (ANSI JOIN in the FROM of UPDATE/DELETE is refused).
 *  - maxIdentifierLength 128: "Database identifiers" (sysname).
 *  - maxParameters 2100: "Maximum capacity specifications for SQL Server" (parameters per
 *    stored procedure / parameterized batch); the merge binds at most a handful.
 *  - PRIMARY KEY only NONCLUSTERED NOT ENFORCED: "Primary key, foreign key, and unique key
 *    using dedicated SQL pool in Azure Synapse Analytics".
 *  - DISTRIBUTION = HASH | ROUND_ROBIN | REPLICATE and CLUSTERED COLUMNSTORE INDEX / HEAP:
 *    "CREATE TABLE (Azure Synapse Analytics)".
 *  - COPY INTO from Parquet on ADLS Gen2: managed identity needs the .dfs endpoint, SAS needs
 *    the .blob endpoint: "Securely load data using Synapse SQL" (authentication matrix,
 *    footnotes 1 and 2) and "COPY INTO (Transact-SQL)".
 *  - Quoted identifiers in [] with ] doubled: "Database identifiers" / QUOTENAME.
 */
export const synapseCapabilities: DialectCapabilities = {
  transactionalDdl: false,
  merge: true,
  maxIdentifierLength: 128,
  maxParameters: 2_100,
};

export const quoteBracket = (name: string) => `[${name.replace(/]/g, ']]')}]`;
const q = quoteBracket;
const qualify = (n: QualifiedName) => (n.schema ? `${q(n.schema)}.${q(n.name)}` : q(n.name));
const p = (i: number) => `@p${i}`;
const TRUE = '1';
const FALSE = '0';

/** Type names as the describe query prints them (sys.types name + length/precision/scale). */
export function synapseTypeName(t: LogicalType): string {
  switch (t.kind) {
    case 'boolean':
      return 'bit';
    case 'integer':
      return t.bits === 128 ? 'decimal(38,0)' : t.bits === 64 ? 'bigint' : t.bits === 32 ? 'int' : 'smallint';
    case 'decimal':
      if (t.precision > 38) throw new TerminalError(`DECIMAL(${t.precision},${t.scale}) exceeds Synapse's maximum precision 38; cast it in transform.sql`);
      return `decimal(${t.precision},${t.scale})`;
    case 'float':
      return t.bits === 32 ? 'real' : 'float';
    case 'text':
    case 'json':
      // nvarchar(max) cannot be a distribution column nor sit well in columnstore segments;
      // 4000 characters is the largest bounded nvarchar ("nchar and nvarchar").
      return 'nvarchar(4000)';
    case 'date':
      return 'date';
    case 'time':
      return 'time(6)';
    case 'timestamp':
    case 'timestamptz':
      // Values are UTC by tidemark's contract (docs/design.md §8), so no offset is stored.
      return 'datetime2(6)';
    case 'binary':
      return 'varbinary(8000)';
    case 'uuid':
      return 'uniqueidentifier';
  }
}

export const synapseWidens = widensBy([
  ['smallint', 'int', 'bigint', 'decimal(38,0)'],
  ['real', 'float'],
  ['date', 'datetime2(6)'],
]);

const SCD_TYPES = { timestamp: 'datetime2(6)', boolean: 'bit', hash: 'varchar(64)' };

export type Distribution = 'hash' | 'replicate' | 'round_robin';

function distributionClause(d: Distribution, keys: readonly string[]): string {
  // HASH on the first key column: every version of a key lands in one distribution, so the
  // UPDATE … FROM and INSERT … SELECT joins with the stage (hashed the same way) move no data.
  if (d === 'hash') return `DISTRIBUTION = HASH(${q(keys[0]!)})`;
  return d === 'replicate' ? 'DISTRIBUTION = REPLICATE' : 'DISTRIBUTION = ROUND_ROBIN';
}

export function synapseCreateTarget(plan: MergePlan, distribution: Distribution): string {
  const cols = [
    ...plan.columns.map((c) => `${q(c.name)} ${synapseTypeName(c.type)} NULL`),
    ...scdColumnDefs(SCD_TYPES).map(([n, t]) => `${q(n)} ${t} ${n === '_tm_version_key' ? 'NOT NULL' : 'NULL'}`),
  ];
  const pk = `CONSTRAINT ${q(`pk_${plan.target.name}`.slice(0, 128))} PRIMARY KEY NONCLUSTERED (${q('_tm_version_key')}) NOT ENFORCED`;
  return `CREATE TABLE ${qualify(plan.target)} (${cols.join(', ')}, ${pk}) WITH (${distributionClause(distribution, plan.keys)}, CLUSTERED COLUMNSTORE INDEX)`;
}

const objectMissing = (n: QualifiedName, kind: 'U') => `IF OBJECT_ID(N'${qualify(n).replace(/'/g, "''")}', N'${kind}') IS NULL`;

/** The staging table: same distribution as the target on HASH so the joins stay local. */
export function synapseStageStatements(
  stage: QualifiedName,
  columns: ReadonlyArray<{ name: string; type: LogicalType }>,
  keys: readonly string[],
  distribution: Distribution,
): Statement[] {
  const d = distribution === 'hash' ? distributionClause('hash', keys) : 'DISTRIBUTION = ROUND_ROBIN';
  return [
    { sql: `IF OBJECT_ID(N'${qualify(stage).replace(/'/g, "''")}', N'U') IS NOT NULL DROP TABLE ${qualify(stage)}`, parameters: [] },
    {
      sql: `CREATE TABLE ${qualify(stage)} (${columns.map((c) => `${q(c.name)} ${synapseTypeName(c.type)} NULL`).join(', ')}) WITH (${d}, HEAP)`,
      parameters: [],
    },
  ];
}

export interface CopySource {
  /** https://<account>.dfs.core.windows.net/<container>/<path> (or .blob for SAS). */
  url: string;
  credential: { kind: 'managedIdentity' } | { kind: 'sas'; token: string };
}

const literal = (s: string) => `'${s.replace(/'/g, "''")}'`;

/**
 * COPY INTO takes no variables for its source or secret ("COPY INTO (Transact-SQL)"), so both
 * are literals; they come from app settings, never from user input, and are escaped.
 * No column list: Parquet columns map to the stage by ordinal, and the stage is created in the
 * Parquet file's column order.
 */
export function synapseCopyInto(stage: QualifiedName, src: CopySource): Statement {
  const cred =
    src.credential.kind === 'managedIdentity'
      ? `IDENTITY = 'Managed Identity'`
      : `IDENTITY = 'Shared Access Signature', SECRET = ${literal(src.credential.token)}`;
  return {
    sql: `COPY INTO ${qualify(stage)} FROM ${literal(src.url)} WITH (FILE_TYPE = 'PARQUET', CREDENTIAL = (${cred}), AUTO_CREATE_TABLE = 'OFF')`,
    parameters: [],
  };
}

/** The SCD steps in T-SQL; same order and meaning as scd-sql.ts `renderScdSteps`. */
export function renderSynapseSteps(plan: MergePlan): Statement[] {
  const T = qualify(plan.target);
  const S = qualify(plan.stage);
  // In UPDATE/DELETE the target is referenced by its name (no alias), the stage as s.
  const tcol = (c: string) => `${T}.${q(c)}`;
  const onT = plan.keys.map((k) => `${tcol(k)} = s.${q(k)}`).join(' AND ');
  const onAlias = plan.keys.map((k) => `t.${q(k)} = s.${q(k)}`).join(' AND ');
  const dataCols = plan.columns.map((c) => q(c.name));
  const scdCols = ['_tm_valid_from', '_tm_valid_to', '_tm_is_current', '_tm_is_deleted', '_tm_row_hash', '_tm_run_id', '_tm_version_key'].map(q);
  const run = p(1);
  const steps: Statement[] = [];

  if (plan.scd === 1) {
    const nonKey = plan.columns.filter((c) => !plan.keys.includes(c.name));
    steps.push({
      sql: `UPDATE ${T} SET ${[...nonKey.map((c) => `${q(c.name)} = s.${q(c.name)}`), `${q('_tm_valid_from')} = s.${q('_tm_valid_from')}`, `${q('_tm_is_deleted')} = ${FALSE}`, `${q('_tm_row_hash')} = s.${q('_tm_row_hash')}`, `${q('_tm_run_id')} = ${run}`].join(', ')} FROM ${S} AS s WHERE ${onT} AND s.${q('_tm_op')} IN ('update', 'type1', 'insert')`,
      parameters: [plan.runId],
    });
    if (plan.deletes === 'retire') {
      steps.push({
        sql: `DELETE FROM ${T} WHERE EXISTS (SELECT 1 FROM ${S} AS s WHERE ${onT} AND s.${q('_tm_op')} = 'delete')`,
        parameters: [],
      });
    } else if (plan.deletes === 'mark') {
      steps.push({
        sql: `UPDATE ${T} SET ${q('_tm_is_deleted')} = ${TRUE}, ${q('_tm_run_id')} = ${run} FROM ${S} AS s WHERE ${onT} AND s.${q('_tm_op')} = 'delete'`,
        parameters: [plan.runId],
      });
    }
    steps.push({
      sql: `INSERT INTO ${T} (${[...dataCols, ...scdCols].join(', ')}) SELECT ${dataCols.map((c) => `s.${c}`).join(', ')}, s.${q('_tm_valid_from')}, NULL, ${TRUE}, ${FALSE}, s.${q('_tm_row_hash')}, ${run}, s.${q('_tm_version_key')} FROM ${S} AS s WHERE s.${q('_tm_op')} = 'insert' AND NOT EXISTS (SELECT 1 FROM ${T} AS t WHERE ${onAlias})`,
      parameters: [plan.runId],
    });
    return steps;
  }

  if (plan.deletes === 'mark') {
    steps.push({
      sql: `INSERT INTO ${T} (${[...dataCols, ...scdCols].join(', ')}) SELECT ${dataCols.map((c) => `t.${c}`).join(', ')}, s.${q('_tm_valid_from')}, NULL, ${TRUE}, ${TRUE}, t.${q('_tm_row_hash')}, ${run}, s.${q('_tm_version_key')} FROM ${T} AS t, ${S} AS s WHERE ${onAlias} AND t.${q('_tm_is_current')} = ${TRUE} AND s.${q('_tm_op')} = 'delete'`,
      parameters: [plan.runId],
    });
  }
  const closing = plan.deletes === 'ignore' ? `('insert', 'update')` : `('insert', 'update', 'delete')`;
  steps.push({
    sql: `UPDATE ${T} SET ${q('_tm_valid_to')} = s.${q('_tm_valid_from')}, ${q('_tm_is_current')} = ${FALSE} FROM ${S} AS s WHERE ${onT} AND ${tcol('_tm_is_current')} = ${TRUE} AND ${tcol('_tm_run_id')} <> ${run} AND s.${q('_tm_op')} IN ${closing}`,
    parameters: [plan.runId],
  });
  if (plan.type1Columns.length > 0) {
    steps.push({
      sql: `UPDATE ${T} SET ${plan.type1Columns.map((c) => `${q(c)} = s.${q(c)}`).join(', ')} FROM ${S} AS s WHERE ${onT} AND ${tcol('_tm_is_current')} = ${TRUE} AND s.${q('_tm_op')} = 'type1'`,
      parameters: [],
    });
  }
  steps.push({
    sql: `INSERT INTO ${T} (${[...dataCols, ...scdCols].join(', ')}) SELECT ${dataCols.map((c) => `s.${c}`).join(', ')}, s.${q('_tm_valid_from')}, NULL, ${TRUE}, ${FALSE}, s.${q('_tm_row_hash')}, ${run}, s.${q('_tm_version_key')} FROM ${S} AS s WHERE s.${q('_tm_op')} IN ('insert', 'update')`,
    parameters: [plan.runId],
  });
  return steps;
}

export function synapseLedgerInsert(plan: MergePlan): Statement {
  const cols = ['pipeline', 'run_id', 'target_table', 'boundary', 'inserted', 'updated', 'deleted', 'committed_at'];
  return {
    sql: `INSERT INTO ${qualify(ledgerName(plan))} (${cols.map(q).join(', ')}) VALUES (${p(1)}, ${p(2)}, ${p(3)}, CAST(${p(4)} AS datetime2(6)), ${p(5)}, ${p(6)}, ${p(7)}, SYSUTCDATETIME())`,
    parameters: [
      plan.pipeline,
      plan.runId,
      plan.target.schema ? `${plan.target.schema}.${plan.target.name}` : plan.target.name,
      plan.boundary.replace('T', ' ').replace('Z', ''),
      plan.counts.inserted,
      plan.counts.updated,
      plan.counts.deleted,
    ],
  };
}

/** Builds the dialect for one pipeline's distribution choice. */
export function synapseDialect(distribution: Distribution = 'hash'): Dialect {
  return {
    name: 'synapse',
    capabilities: synapseCapabilities,
    quoteIdent: q,
    qualify,
    param: p,
    typeName: synapseTypeName,

    ensureTarget(plan: MergePlan, existing: readonly ExistingColumn[] | undefined): Statement[] {
      assertIdentifierLengths(plan, 'synapse', synapseCapabilities.maxIdentifierLength);
      const out: Statement[] = [];
      if (plan.target.schema) {
        // CREATE SCHEMA must be alone in its batch, hence EXEC.
        out.push({
          sql: `IF SCHEMA_ID(N'${plan.target.schema.replace(/'/g, "''")}') IS NULL EXEC(N'CREATE SCHEMA ${q(plan.target.schema).replace(/'/g, "''")}')`,
          parameters: [],
        });
      }
      const T = qualify(plan.target);
      if (!existing || existing.length === 0) {
        out.push({ sql: `${objectMissing(plan.target, 'U')} ${synapseCreateTarget(plan, distribution)}`, parameters: [] });
      } else {
        const changes = planTargetChanges(plan, existing, synapseTypeName, synapseWidens);
        if (changes.added.length) {
          out.push({ sql: `ALTER TABLE ${T} ADD ${changes.added.map((c) => `${q(c.name)} ${synapseTypeName(c.type)} NULL`).join(', ')}`, parameters: [] });
        }
        for (const c of changes.widened) {
          out.push({ sql: `ALTER TABLE ${T} ALTER COLUMN ${q(c.name)} ${synapseTypeName(c.type)} NULL`, parameters: [] });
        }
      }
      const L = ledgerName(plan);
      out.push({
        sql: `${objectMissing(L, 'U')} CREATE TABLE ${qualify(L)} (${q('pipeline')} nvarchar(128) NOT NULL, ${q('run_id')} varchar(64) NOT NULL, ${q('target_table')} nvarchar(300) NOT NULL, ${q('boundary')} datetime2(6) NOT NULL, ${q('inserted')} bigint NULL, ${q('updated')} bigint NULL, ${q('deleted')} bigint NULL, ${q('committed_at')} datetime2(6) NULL, CONSTRAINT ${q('pk__tm_ledger')} PRIMARY KEY NONCLUSTERED (${q('pipeline')}, ${q('run_id')}) NOT ENFORCED) WITH (DISTRIBUTION = ROUND_ROBIN, HEAP)`,
        parameters: [],
      });
      return out;
    },

    ledgerCheck(plan: MergePlan): Statement {
      return {
        sql: `SELECT 1 AS present FROM ${qualify(ledgerName(plan))} WHERE ${q('pipeline')} = ${p(1)} AND ${q('run_id')} = ${p(2)}`,
        parameters: [plan.pipeline, plan.runId],
      };
    },

    mergeSteps: (plan) => [...renderSynapseSteps(plan), synapseLedgerInsert(plan)],

    describeTarget(target: QualifiedName): Statement {
      return {
        sql: `SELECT c.[name] AS [name], CASE WHEN ty.[name] IN ('nvarchar', 'nchar') THEN ty.[name] + '(' + CASE WHEN c.[max_length] = -1 THEN 'max' ELSE CAST(c.[max_length] / 2 AS varchar(10)) END + ')' WHEN ty.[name] IN ('varchar', 'char', 'varbinary', 'binary') THEN ty.[name] + '(' + CASE WHEN c.[max_length] = -1 THEN 'max' ELSE CAST(c.[max_length] AS varchar(10)) END + ')' WHEN ty.[name] IN ('decimal', 'numeric') THEN ty.[name] + '(' + CAST(c.[precision] AS varchar(10)) + ',' + CAST(c.[scale] AS varchar(10)) + ')' WHEN ty.[name] IN ('datetime2', 'time', 'datetimeoffset') THEN ty.[name] + '(' + CAST(c.[scale] AS varchar(10)) + ')' ELSE ty.[name] END AS [type] FROM sys.columns AS c, sys.types AS ty WHERE c.[user_type_id] = ty.[user_type_id] AND c.[object_id] = OBJECT_ID(${p(1)}) ORDER BY c.[column_id]`,
        parameters: [qualify(target)],
      };
    },

    currentRowCount(target: QualifiedName): Statement {
      return {
        sql: `SELECT COUNT_BIG(*) AS n FROM ${qualify(target)} WHERE ${q('_tm_is_current')} = ${TRUE} AND ${q('_tm_is_deleted')} = ${FALSE}`,
        parameters: [],
      };
    },

    asOf(target: QualifiedName, columns: readonly PlanColumn[], at: string): Statement {
      return {
        sql: `SELECT ${columns.map((c) => q(c.name)).join(', ')} FROM ${qualify(target)} WHERE ${q('_tm_valid_from')} <= CAST(${p(1)} AS datetime2(6)) AND (${q('_tm_valid_to')} IS NULL OR ${q('_tm_valid_to')} > CAST(${p(1)} AS datetime2(6))) AND ${q('_tm_is_deleted')} = ${FALSE}`,
        parameters: [at.replace('T', ' ').replace('Z', '')],
      };
    },
  };
}

/**
 * Canonical text (transform/row-hash.ts) in T-SQL for the checksum. Text is hashed as
 * varchar, i.e. in the database's code page: equal to DuckDB's UTF-8 figure for ASCII text.
 * Floats have no shortest round-trip conversion in T-SQL, so they are refused as checksum
 * columns rather than compared wrongly.
 */
export function synapseCanonicalText(name: string, type: string): string {
  const c = q(name);
  const t = type.toLowerCase();
  if (t === 'bit') return `CASE WHEN ${c} = 1 THEN 'true' ELSE 'false' END`;
  if (t === 'date') return `CONVERT(varchar(10), ${c}, 23)`;
  if (t.startsWith('datetime2') || t === 'datetime') {
    return `CONVERT(varchar(19), ${c}, 126) + '.' + RIGHT('000000' + CAST(DATEPART(microsecond, ${c}) AS varchar(6)), 6) + 'Z'`;
  }
  if (t.startsWith('varbinary') || t.startsWith('binary')) return `LOWER(CONVERT(varchar(max), ${c}, 2))`;
  if (t === 'uniqueidentifier') return `LOWER(CAST(${c} AS char(36)))`;
  if (t === 'float' || t === 'real') {
    throw new TerminalError(`checksum column ${name} is ${t}: Synapse has no shortest round-trip float text, so it cannot match DuckDB's; leave it out of validation.checksumColumns`);
  }
  return `CAST(${c} AS varchar(max))`;
}

export function synapseChecksumSql(columns: ReadonlyArray<{ name: string; type: string }>, relation: string): string {
  const parts = columns.map((col) => {
    const text = synapseCanonicalText(col.name, col.type);
    return `CASE WHEN ${q(col.name)} IS NULL THEN '' ELSE '|' + '${col.name.replace(/'/g, "''")}=' + CAST(DATALENGTH(${text}) AS varchar(20)) + ':' + ${text} END`;
  });
  // concat_ws('|', …) skipping NULLs, as DuckDB does: each present part brings its separator.
  const row = parts.length ? `COALESCE(STUFF(${parts.join(' + ')}, 1, 1, ''), '')` : `''`;
  const hex = `CONVERT(varchar(32), HASHBYTES('MD5', ${row}), 2)`;
  return `SELECT COUNT_BIG(*) AS n, COALESCE(SUM(CAST(CAST(CONVERT(varbinary(8), '0' + LEFT(${hex}, 15), 2) AS bigint) AS decimal(38,0))), 0) AS s FROM ${relation}`;
}
