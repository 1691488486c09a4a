import type { QualifiedName } from '../../config/identifiers.js';
import { TerminalError } from '../../errors.js';
import type { Dialect, DialectCapabilities, ExistingColumn, Statement } from '../dialect.js';
import type { LogicalType, MergePlan, PlanColumn } from '../plan.js';
import { duckTypeName } from '../duckdb/dialect.js';
import { renderAsOf, renderAsOfCount, renderKeyHistory, type ReadStyle } from '../read-sql.js';
import { LEDGER_COMMIT_COLUMNS, baseKey, ledgerInsertParameters, ledgerName, renderLedgerHead, renderScdSteps, type SqlStyle } from '../scd-sql.js';
import { assertIdentifierLengths, planTargetChanges, scdColumnDefs, widensBy, type ScdTypes } from '../target.js';

/**
 * The one T-SQL renderer: Azure Synapse Analytics dedicated SQL pool (`synapse`) and SQL Server,
 * Azure SQL Database, Managed Instance (`mssql`). The SCD steps are scd-sql.ts's, shared with
 * DuckDB and PostgreSQL; what differs between the two T-SQL products is data (`TsqlFeatures`
 * below), each fact with the page it comes from.
 *
 * Synapse facts (Microsoft Learn, page titles quoted):
 *  - transactionalDdl false: "Use transactions in a SQL pool in Azure Synapse" lists the
 *    limitations; DDL such as CREATE TABLE is not allowed inside a user-defined transaction.
 *    The same page: the default isolation is READ UNCOMMITTED, so the run ledger check is
 *    repeated inside the merge transaction, after a write lock on the pipeline's ledger rows,
 *    and the commit check does not rely on the NOT ENFORCED key (synapseCommitGuard).
 *  - merge true but unused: MERGE exists in the dedicated pool ("MERGE (Transact-SQL)",
 *    applies to dedicated SQL pool; Azure update "Generally available: MERGE command for Azure
 *    Synapse Analytics", Oct 2022), but its NOT MATCHED BY TARGET branch needs a
 *    HASH-distributed target without IDENTITY (same page, remarks for Azure Synapse). The
 *    plan is therefore UPDATE … FROM + INSERT … SELECT, which works on every distribution
 *    (REPLICATE and ROUND_ROBIN included), and on SQL Server too.
 *  - UPDATE … FROM with an implicit join (target named by its table name, the stage in FROM,
 *    the join in WHERE): "Using CTAS to work around unsupported features", section "ANSI join
 *    replacement for update statements" (ANSI JOIN in the FROM of UPDATE/DELETE is refused).
 *  - maxIdentifierLength 128: "Database identifiers" (sysname), both products.
 *  - maxParameters 2100: "Maximum capacity specifications for SQL Server" (parameters per
 *    stored procedure / parameterized batch), both products.
 *  - Quoted identifiers in [] with ] doubled: "Database identifiers" / QUOTENAME.
 */
export interface TsqlFeatures {
  /**
   * The stage is loaded with COPY INTO from storage ("COPY INTO (Transact-SQL)", Synapse only);
   * otherwise with bound multi-row INSERT … VALUES read from the local changes file.
   */
  copyInto: boolean;
  /** `WITH (DISTRIBUTION = HASH | ROUND_ROBIN | REPLICATE)`: "CREATE TABLE (Azure Synapse Analytics)". */
  distribution: boolean;
  /** `WITH (CLUSTERED COLUMNSTORE INDEX | HEAP)` table options: same page (Synapse syntax; SQL Server spells them as indexes). */
  columnstore: boolean;
  /**
   * PRIMARY KEY NONCLUSTERED … NOT ENFORCED: "Primary key, foreign key, and unique key using
   * dedicated SQL pool in Azure Synapse Analytics" (the only primary key Synapse has). SQL
   * Server's primary key is enforced: a doubled version key fails the merge instead of landing.
   */
  notEnforced: boolean;
  /**
   * CREATE TABLE … WITH (…) AS SELECT: "CREATE TABLE AS SELECT (Azure Synapse Analytics)".
   * SQL Server has no CTAS; `SELECT * INTO new FROM old` ("SELECT - INTO Clause") instead.
   */
  ctas: boolean;
  /**
   * INSERT … VALUES with several rows: SQL Server takes up to 1000 row value expressions
   * ("Table Value Constructor (Transact-SQL)"); Synapse's INSERT takes one row
   * ("INSERT (Transact-SQL)", Azure Synapse syntax), so keys are bound with UNION ALL there.
   */
  multiRowValues: boolean;
  transactionalDdl: boolean;
  /**
   * Whether nvarchar(max) / varbinary(max) may be columns of the target. Synapse: no. Its target
   * is a clustered columnstore table, and "Indexes on dedicated SQL pool tables in Azure Synapse
   * Analytics" (section "Clustered columnstore indexes") says columnstore tables don't support
   * varchar(max), nvarchar(max) and varbinary(max) (Microsoft Q&A "Integrating Spark with Azure
   * Synapse Dedicated sql instance" answers the same: no MAX in a CCI table). SQL Server: yes;
   * its target is a rowstore table (and its columnstore holds LOB columns since 2017: Azure
   * update "String and binary columns in clustered columnstore indexes").
   */
  lobInTarget: boolean;
  /**
   * Whether the HASH distribution column may be a LOB type. No Synapse page allows it ("CREATE
   * TABLE (Azure Synapse Analytics)" lists none, "Table data types for dedicated SQL pool" says to
   * prefer nvarchar(4000) / varchar(8000) over MAX), so it is bounded. Not provable here.
   */
  lobInDistribution: boolean;
  /**
   * Whether a primary key column may be a LOB type: no on both. SQL Server's primary key is an
   * index, and "CREATE INDEX (Transact-SQL)" refuses varchar(max), nvarchar(max) and
   * varbinary(max) as index key columns; Synapse's PRIMARY KEY NONCLUSTERED … NOT ENFORCED is
   * the same nonclustered index syntax. tidemark's primary key is `_tm_version_key`
   * (varchar(64)); the pipeline's key columns are bounded too, so that an index on them (the
   * first thing a DBA adds for the merge's joins on SQL Server) and the HASH distribution work.
   */
  lobInPrimaryKey: boolean;
}

export type TsqlProduct = 'synapse' | 'mssql';

export const TSQL_FEATURES: Record<TsqlProduct, TsqlFeatures> = {
  synapse: {
    copyInto: true,
    distribution: true,
    columnstore: true,
    notEnforced: true,
    ctas: true,
    multiRowValues: false,
    transactionalDdl: false,
    lobInTarget: false,
    lobInDistribution: false,
    lobInPrimaryKey: false,
  },
  // "Transactions (Transact-SQL)": SQL Server runs DDL inside a transaction; tidemark still runs
  // it before the merge transaction, as on Synapse, so both products take one code path.
  mssql: {
    copyInto: false,
    distribution: false,
    columnstore: false,
    notEnforced: false,
    ctas: false,
    multiRowValues: true,
    transactionalDdl: true,
    lobInTarget: true,
    lobInDistribution: false,
    lobInPrimaryKey: false,
  },
};

/** Rows per INSERT … VALUES ("Table Value Constructor (Transact-SQL)": at most 1000). */
export const MAX_VALUES_ROWS = 1_000;

export function tsqlCapabilities(product: TsqlProduct): DialectCapabilities {
  return { transactionalDdl: TSQL_FEATURES[product].transactionalDdl, merge: true, maxIdentifierLength: 128, maxParameters: 2_100 };
}
export const synapseCapabilities: DialectCapabilities = tsqlCapabilities('synapse');

export const quoteBracket = (name: string) => `[${name.replace(/]/g, ']]')}]`;
const q = quoteBracket;
const qualify = (n: QualifiedName) => (n.schema ? `${q(n.schema)}.${q(n.name)}` : q(n.name));
const p = (i: number) => `@p${i}`;
const TRUE = '1';
const FALSE = '0';

/** The T-SQL style of the shared SCD renderer (scd-sql.ts). */
export const tsqlStyle: SqlStyle = { q, qualify, param: p, true: TRUE, false: FALSE, targetByName: true };

const tsqlRead: ReadStyle = { s: tsqlStyle, text: synapseTypeName({ kind: 'text' }), instant: (x) => `CAST(${x} AS datetime2(6))`, limit: 'top' };
/** datetime2 takes no zone designator: the instant as '2026-01-01 12:00:00.000'. */
const tsqlInstant = (at: string) => at.replace('T', ' ').replace('Z', '');


/**
 * Type names as the describe query prints them (sys.types name + length/precision/scale). `lob`
 * says whether text and binary may be `max` here: for a column, tsqlColumnType decides it from
 * the product and the column's role (tsqlLobAllowed); a cast inside a query (no column) keeps
 * the default, `max`, so no value is cut. Otherwise they take the
 * largest bounded types, nvarchar(4000) and varbinary(8000) ("nchar and nvarchar (Transact-SQL)",
 * "binary and varbinary (Transact-SQL)"), and a longer value is refused before the merge
 * (oversizeChecks), never cut.
 */
export function synapseTypeName(t: LogicalType, lob = true): string {
  switch (t.kind) {
    case 'boolean':
      return 'bit';
    case 'integer':
      return t.bits === 128 ? 'decimal(38,0)' : t.bits === 64 ? 'bigint' : t.bits === 32 ? 'int' : 'smallint';
    case 'decimal':
      if (t.precision > 38) throw new TerminalError(`DECIMAL(${t.precision},${t.scale}) exceeds T-SQL's maximum precision 38; cast it in transform.sql`);
      return `decimal(${t.precision},${t.scale})`;
    case 'float':
      return t.bits === 32 ? 'real' : 'float';
    case 'text':
    case 'json':
    case 'list':
      // A list lands as its canonical JSON text (validate/canonical-sql.ts): T-SQL has no array type.
      return lob ? 'nvarchar(max)' : `nvarchar(${TSQL_BOUNDED.text})`;
    case 'date':
      return 'date';
    case 'time':
      return 'time(6)';
    case 'timestamp':
    case 'timestamptz':
      // Values are UTC by tidemark's contract (docs/design.md §8), so no offset is stored.
      return 'datetime2(6)';
    case 'binary':
      return lob ? 'varbinary(max)' : `varbinary(${TSQL_BOUNDED.binary})`;
    case 'uuid':
      return 'uniqueidentifier';
  }
}

/** The largest bounded string (UTF-16 code units) and binary (bytes) lengths. */
export const TSQL_BOUNDED = { text: 4_000, binary: 8_000 } as const;

/** A pipeline key column (the HASH distribution column is the first) or any other column. */
export type TsqlColumnRole = 'key' | 'value';

/** Whether a column of this role may be nvarchar(max) / varbinary(max): the facts of TsqlFeatures. */
export function tsqlLobAllowed(product: TsqlProduct, role: TsqlColumnRole): boolean {
  const f = TSQL_FEATURES[product];
  if (!f.lobInTarget) return false;
  return role === 'value' || (f.lobInPrimaryKey && (!f.distribution || f.lobInDistribution));
}

/** The type tidemark creates for a column of this role on this product. */
export function tsqlColumnType(product: TsqlProduct, t: LogicalType, role: TsqlColumnRole): string {
  return synapseTypeName(t, tsqlLobAllowed(product, role));
}

const LOB_TYPE = /^(?:nvarchar|varbinary)\(max\)$/i;
const BOUNDED_TYPE = /^(?:nvarchar\(4000\)|varbinary\(8000\))$/i;
const sameFamily = (t: LogicalType, type: string) =>
  t.kind === 'binary' ? /^varbinary\((?:8000|max)\)$/i.test(type) : (t.kind === 'text' || t.kind === 'json') && /^nvarchar\((?:4000|max)\)$/i.test(type);

/**
 * The type each user column has in the target once ensureTarget ran. A new column gets
 * tsqlColumnType. An existing text or binary column keeps the bounded or `max` type it has:
 * targets created when text was nvarchar(4000), or when key columns were nvarchar(max) (before
 * keys were bounded), keep working unchanged; tidemark never narrows a column in place. With
 * target.allowTypeWidening a bounded column whose role allows `max` is widened to it.
 */
export function tsqlColumnTypes(
  product: TsqlProduct,
  plan: Pick<MergePlan, 'keys' | 'columns' | 'allowTypeWidening'>,
  existing: readonly ExistingColumn[] = [],
): Map<string, string> {
  const have = new Map(existing.map((e) => [e.name.toLowerCase(), e.type]));
  const out = new Map<string, string>();
  for (const c of plan.columns) {
    const want = tsqlColumnType(product, c.type, plan.keys.includes(c.name) ? 'key' : 'value');
    const got = have.get(c.name.toLowerCase());
    const keep = got !== undefined && sameFamily(c.type, got) && !(plan.allowTypeWidening && BOUNDED_TYPE.test(got) && LOB_TYPE.test(want));
    out.set(c.name, keep ? got.toLowerCase() : want);
  }
  return out;
}

/** A bounded text or binary column of the target: its values are measured before the merge. */
export interface OversizeCheck {
  column: string;
  role: TsqlColumnRole;
  unit: 'text' | 'binary';
  type: string;
  limit: number;
  /** A list column's DuckDB type: its value is staged as its canonical JSON text, so that text is measured. */
  listType?: string;
}

/** The columns whose type is bounded, hence whose values must fit before anything is merged. */
export function oversizeChecks(plan: Pick<MergePlan, 'keys' | 'columns'>, types: ReadonlyMap<string, string>): OversizeCheck[] {
  const out: OversizeCheck[] = [];
  for (const c of plan.columns) {
    const type = types.get(c.name);
    if (!type || !BOUNDED_TYPE.test(type)) continue;
    const unit = c.type.kind === 'binary' ? 'binary' : 'text';
    out.push({
      column: c.name,
      role: plan.keys.includes(c.name) ? 'key' : 'value',
      unit,
      type,
      limit: unit === 'binary' ? TSQL_BOUNDED.binary : TSQL_BOUNDED.text,
      ...(c.type.kind === 'list' ? { listType: duckTypeName(c.type) } : {}),
    });
  }
  return out;
}

/**
 * The refusal of a value longer than its column's bounded type, naming the pipeline, the
 * column, the length, why the type is bounded on this product, and the fix. Nothing has been
 * merged when it is thrown: the run fails and keeps its files, and the next run reads again.
 */
export function oversizeError(product: TsqlProduct, pipeline: string, check: OversizeCheck, length: number, key: string | null): TerminalError {
  const what = check.unit === 'binary' ? `${length} bytes` : `${length} characters (UTF-16 code units)`;
  const at = key === null || check.role === 'key' ? '' : ` (key ${key.length > 80 ? `${key.slice(0, 80)}…` : key})`;
  const f = TSQL_FEATURES[product];
  const why =
    check.role === 'key'
      ? `key columns are bounded on ${product}: a primary key or index column cannot be nvarchar(max) or varbinary(max)${f.distribution ? ', nor can the HASH distribution column' : ''}`
      : !f.lobInTarget
        ? `${product}'s clustered columnstore tables hold no nvarchar(max) or varbinary(max), so text is nvarchar(${TSQL_BOUNDED.text}) and binary varbinary(${TSQL_BOUNDED.binary})`
        : `the target column was created as ${check.type}; set target.allowTypeWidening: true to widen it to ${check.unit === 'binary' ? 'varbinary' : 'nvarchar'}(max) in place`;
  const fix =
    check.role === 'key'
      ? `key the pipeline on a shorter column, or on a hash of this one computed in transform.sql (e.g. md5(${check.column}) AS ${check.column}_key)`
      : `shorten or split ${check.column} in transform.sql (e.g. ${check.unit === 'binary' ? `substr(${check.column}, 1, ${check.limit})` : `left(${check.column}, ${check.limit})`})`;
  return new TerminalError(
    `pipeline ${pipeline}: ${check.role === 'key' ? 'key column' : 'column'} ${check.column} has a value of ${what}${at}, longer than its ${product} type ${check.type} holds; ${why}. Nothing was merged and no value was cut: ${fix}, then run the pipeline again.`,
  );
}

/** The logical type of a T-SQL column type as the describe query prints it. */
export function logicalFromTsql(type: string): LogicalType {
  const t = type.toLowerCase().replace(/\s+/g, '');
  const dec = /^(?:decimal|numeric)\((\d+),(\d+)\)$/.exec(t);
  if (dec) return { kind: 'decimal', precision: Number(dec[1]), scale: Number(dec[2]) };
  const base = t.replace(/\(.*$/, '');
  switch (base) {
    case 'bit':
      return { kind: 'boolean' };
    case 'tinyint':
    case 'smallint':
      return { kind: 'integer', bits: 16 };
    case 'int':
      return { kind: 'integer', bits: 32 };
    case 'bigint':
      return { kind: 'integer', bits: 64 };
    case 'real':
      return { kind: 'float', bits: 32 };
    case 'float':
      return { kind: 'float', bits: 64 };
    case 'date':
      return { kind: 'date' };
    case 'time':
      return { kind: 'time' };
    case 'datetime':
    case 'datetime2':
    case 'smalldatetime':
      return { kind: 'timestamp' };
    case 'datetimeoffset':
      return { kind: 'timestamptz' };
    case 'varbinary':
    case 'binary':
      return { kind: 'binary' };
    case 'uniqueidentifier':
      return { kind: 'uuid' };
    case 'nvarchar':
    case 'varchar':
    case 'nchar':
    case 'char':
      return { kind: 'text' };
    default:
      throw new TerminalError(`column type ${type} has no tidemark logical type; cast the column in transform.sql`);
  }
}

export const synapseWidens = widensBy([
  ['smallint', 'int', 'bigint', 'decimal(38,0)'],
  ['real', 'float'],
  ['date', 'datetime2(6)'],
  // A bounded text or binary column whose role allows `max` (tsqlColumnTypes).
  ['nvarchar(4000)', 'nvarchar(max)'],
  ['varbinary(8000)', 'varbinary(max)'],
]);

// binary(16): what HASHBYTES('MD5', …) returns, fixed length (no length prefix per value).
const SCD_TYPES: ScdTypes = { timestamp: 'datetime2(6)', boolean: 'bit', text: 'varchar(64)', binaryHash: 'binary(16)' };

export type Distribution = 'hash' | 'replicate' | 'round_robin';

function distributionClause(d: Distribution, keys: readonly string[]): string {
  // HASH on the first key column: every version of a key lands in one distribution, so the
  // UPDATE … FROM and INSERT … SELECT joins with the stage (hashed the same way) move no data.
  if (d === 'hash') return `DISTRIBUTION = HASH(${q(keys[0]!)})`;
  return d === 'replicate' ? 'DISTRIBUTION = REPLICATE' : 'DISTRIBUTION = ROUND_ROBIN';
}

/** The table options of a CREATE TABLE, per product: Synapse's WITH (…), nothing on SQL Server. */
function tableOptions(f: TsqlFeatures, distribution: string, storage: 'CLUSTERED COLUMNSTORE INDEX' | 'HEAP'): string {
  const opts = [...(f.distribution ? [distribution] : []), ...(f.columnstore ? [storage] : [])];
  return opts.length ? ` WITH (${opts.join(', ')})` : '';
}

function primaryKey(f: TsqlFeatures, name: string, cols: readonly string[]): string {
  const c = cols.map(q).join(', ');
  return f.notEnforced ? `CONSTRAINT ${q(name)} PRIMARY KEY NONCLUSTERED (${c}) NOT ENFORCED` : `CONSTRAINT ${q(name)} PRIMARY KEY (${c})`;
}

export function tsqlCreateTarget(product: TsqlProduct, plan: MergePlan, distribution: Distribution): string {
  const f = TSQL_FEATURES[product];
  const cols = [
    ...plan.columns.map((c) => `${q(c.name)} ${tsqlColumnType(product, c.type, plan.keys.includes(c.name) ? 'key' : 'value')} NULL`),
    ...scdColumnDefs(SCD_TYPES, plan).map(([n, t]) => `${q(n)} ${t} ${n === '_tm_version_key' ? 'NOT NULL' : 'NULL'}`),
  ];
  const pk = primaryKey(f, `pk_${plan.target.name}`.slice(0, 128), ['_tm_version_key']);
  return `CREATE TABLE ${qualify(plan.target)} (${cols.join(', ')}, ${pk})${tableOptions(f, distributionClause(distribution, plan.keys), 'CLUSTERED COLUMNSTORE INDEX')}`;
}

export const synapseCreateTarget = (plan: MergePlan, distribution: Distribution) => tsqlCreateTarget('synapse', plan, distribution);

const objectMissing = (n: QualifiedName, kind: 'U') => `IF OBJECT_ID(N'${qualify(n).replace(/'/g, "''")}', N'${kind}') IS NULL`;

/**
 * The staging table: same distribution as the target on HASH so the joins stay local. A user
 * column takes its type in the target (`types`, from tsqlColumnTypes), so the stage holds what
 * the target holds; the rest take the type of their role.
 */
export function tsqlStageStatements(
  product: TsqlProduct,
  stage: QualifiedName,
  columns: ReadonlyArray<{ name: string; type: LogicalType }>,
  keys: readonly string[],
  distribution: Distribution,
  types: ReadonlyMap<string, string> = new Map(),
): Statement[] {
  const typeOf = (c: { name: string; type: LogicalType }) => types.get(c.name) ?? tsqlColumnType(product, c.type, keys.includes(c.name) ? 'key' : 'value');
  const d = distribution === 'hash' ? distributionClause('hash', keys) : 'DISTRIBUTION = ROUND_ROBIN';
  return [
    { sql: `IF OBJECT_ID(N'${qualify(stage).replace(/'/g, "''")}', N'U') IS NOT NULL DROP TABLE ${qualify(stage)}`, parameters: [] },
    {
      sql: `CREATE TABLE ${qualify(stage)} (${columns.map((c) => `${q(c.name)} ${typeOf(c)} NULL`).join(', ')})${tableOptions(TSQL_FEATURES[product], d, 'HEAP')}`,
      parameters: [],
    },
  ];
}

export const synapseStageStatements = (
  stage: QualifiedName,
  columns: ReadonlyArray<{ name: string; type: LogicalType }>,
  keys: readonly string[],
  distribution: Distribution,
) => tsqlStageStatements('synapse', stage, columns, keys, distribution);

/** A session temp table for bound key values (checksum scope): Synapse needs its table options. */
export function tsqlTempTable(product: TsqlProduct, name: string, columns: ReadonlyArray<{ name: string; type: string }>): string {
  return `CREATE TABLE ${name} (${columns.map((c) => `${q(c.name)} ${c.type} NULL`).join(', ')})${tableOptions(TSQL_FEATURES[product], 'DISTRIBUTION = ROUND_ROBIN', 'HEAP')}`;
}

/**
 * Bound rows into a table: multi-row VALUES on SQL Server, `SELECT … UNION ALL SELECT …` on
 * Synapse (one row per INSERT … VALUES there). Parameters are numbered from 1.
 */
export function tsqlInsertRows(product: TsqlProduct, table: string, columns: readonly string[], rows: ReadonlyArray<readonly unknown[]>): Statement {
  const params: unknown[] = [];
  const bind = (row: readonly unknown[]) => row.map((v) => (params.push(v), p(params.length))).join(', ');
  const body = TSQL_FEATURES[product].multiRowValues
    ? `VALUES ${rows.map((r) => `(${bind(r)})`).join(', ')}`
    : rows.map((r) => `SELECT ${bind(r)}`).join(' UNION ALL ');
  return { sql: `INSERT INTO ${table} (${columns.map(q).join(', ')}) ${body}`, parameters: params as Statement['parameters'] };
}

/** Rows per bound INSERT: under 2 100 parameters (with room to spare) and 1 000 rows. */
export function rowsPerInsert(columnCount: number): number {
  return Math.max(1, Math.min(MAX_VALUES_ROWS, Math.floor(2_000 / Math.max(1, columnCount))));
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
 * Parquet file's column order. The file of a Synapse target is Snappy (storage/parquet-format.ts): COPY INTO reads
 * Snappy or GZIP Parquet only.
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

// ---- The run ledger (docs/design.md §5): its table and its row, kept here in one place. ----

export function tsqlLedgerCreate(product: TsqlProduct, plan: MergePlan): Statement {
  const L = ledgerName(plan);
  const f = TSQL_FEATURES[product];
  return {
    sql: `${objectMissing(L, 'U')} CREATE TABLE ${qualify(L)} (${q('pipeline')} nvarchar(128) NOT NULL, ${q('run_id')} varchar(64) NOT NULL, ${q('target_table')} nvarchar(300) NOT NULL, ${q('boundary')} datetime2(6) NOT NULL, ${q('inserted')} bigint NULL, ${q('updated')} bigint NULL, ${q('deleted')} bigint NULL, ${q('committed_at')} datetime2(6) NULL, ${primaryKey(f, 'pk__tm_ledger', ['pipeline', 'run_id'])})${tableOptions(f, 'DISTRIBUTION = ROUND_ROBIN', 'HEAP')}`,
    parameters: [],
  };
}

export function tsqlLedgerCheck(plan: MergePlan): Statement {
  return {
    sql: `SELECT 1 AS present FROM ${qualify(ledgerName(plan))} WHERE ${q('pipeline')} = ${p(1)} AND ${q('run_id')} = ${p(2)}`,
    parameters: [plan.pipeline, plan.runId],
  };
}

export function synapseLedgerInsert(plan: MergePlan): Statement {
  const cols = ['pipeline', 'run_id', 'target_table', 'boundary', 'inserted', 'updated', 'deleted', 'run_seq', 'base_run_id', 'read_to', 'snapshot', 'committed_at'];
  return {
    sql: `INSERT INTO ${qualify(ledgerName(plan))} (${cols.map(q).join(', ')}) VALUES (${p(1)}, ${p(2)}, ${p(3)}, CAST(${p(4)} AS datetime2(6)), ${p(5)}, ${p(6)}, ${p(7)}, ${p(8)}, ${p(9)}, ${p(10)}, ${p(11)}, SYSUTCDATETIME())`,
    parameters: ledgerInsertParameters(plan),
  };
}

/**
 * The commit check on T-SQL warehouses (written for Synapse, where the ledger's keys are NOT ENFORCED and reads are READ
 * UNCOMMITTED by default ("SET TRANSACTION ISOLATION LEVEL (Transact-SQL)", note for Azure
 * Synapse Analytics); SQL Server and Azure SQL run it too, where READ COMMITTED makes `verify`
 * wait for a concurrent insert instead of reading it dirty, with the same outcome). No unique index can stop a second commit on one base, so the merge
 * transaction does it itself:
 *  1. `lock` first: an UPDATE of the pipeline's own ledger rows (values unchanged). Writers
 *     take exclusive locks whatever the read isolation (READ UNCOMMITTED only drops the shared
 *     locks of reads), held to the end of the transaction, so a second merge of the pipeline
 *     waits here until the first commits or rolls back.
 *  2. the head check (ledgerHead) and the SCD steps and ledger insert.
 *  3. `verify` after the insert: rows of the pipeline on this base. Under READ UNCOMMITTED it
 *     also sees a concurrent transaction's uncommitted insert (the first load, with no row to
 *     lock in step 1, is the only case where one could be running), so more than one means
 *     roll back. Both of two racing first loads may roll back; neither applies twice.
 */
export function synapseCommitGuard(plan: MergePlan): { lock: Statement; verify: Statement } {
  const L = qualify(ledgerName(plan));
  return {
    lock: { sql: `UPDATE ${L} SET ${q('pipeline')} = ${q('pipeline')} WHERE ${q('pipeline')} = ${p(1)}`, parameters: [plan.pipeline] },
    verify: {
      sql: `SELECT COUNT_BIG(*) AS n FROM ${L} WHERE ${q('pipeline')} = ${p(1)} AND ${q('base_run_id')} = ${p(2)}`,
      parameters: [plan.pipeline, baseKey(plan.commit.baseRunId)],
    },
  };
}

/**
 * Ledgers created before the commit record existed gain its columns in place (COL_LENGTH is
 * NULL for a missing column on Synapse and SQL Server alike).
 */
export function tsqlLedgerUpgrade(plan: MergePlan): Statement[] {
  const L = ledgerName(plan);
  const ledgerText = qualify(L).replace(/'/g, "''");
  return LEDGER_COMMIT_COLUMNS.map(([c, t]) => ({
    sql: `IF COL_LENGTH(N'${ledgerText}', N'${c}') IS NULL ALTER TABLE ${qualify(L)} ADD ${q(c)} ${t === 'bigint' ? 'bigint' : c === 'base_run_id' ? 'varchar(64)' : 'nvarchar(1000)'} NULL`,
    parameters: [],
  }));
}

// ---- end of the ledger ----

/** The SCD steps in T-SQL: scd-sql.ts's one rendering, with the T-SQL style. */
export function renderSynapseSteps(plan: MergePlan): Statement[] {
  return renderScdSteps(tsqlStyle, plan);
}

/** Builds the dialect of one T-SQL product, for one pipeline's distribution choice (Synapse). */
export function tsqlDialect(product: TsqlProduct, distribution: Distribution = 'hash'): Dialect {
  const capabilities = tsqlCapabilities(product);
  return {
    name: product,
    capabilities,
    quoteIdent: q,
    qualify,
    param: p,
    typeName: (t) => tsqlColumnType(product, t, 'value'),

    ensureTarget(plan: MergePlan, existing: readonly ExistingColumn[] | undefined): Statement[] {
      assertIdentifierLengths(plan, product, capabilities.maxIdentifierLength);
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
        out.push({ sql: `${objectMissing(plan.target, 'U')} ${tsqlCreateTarget(product, plan, distribution)}`, parameters: [] });
      } else {
        // Legacy bounded or `max` text and binary columns keep their type (tsqlColumnTypes).
        const types = tsqlColumnTypes(product, plan, existing);
        const changes = planTargetChanges(plan, existing, (_t, name) => types.get(name)!, synapseWidens, SCD_TYPES);
        if (changes.added.length) {
          out.push({ sql: `ALTER TABLE ${T} ADD ${changes.added.map((c) => `${q(c.name)} ${types.get(c.name)!} NULL`).join(', ')}`, parameters: [] });
        }
        for (const c of changes.widened) {
          // SQL Server: no NULL keyword, the form the Babelfish test engine runs too; the column
          // stays nullable because the tedious driver connects with ANSI_NULL_DFLT_ON (its
          // `enableAnsiNullDefault`, on by default). Synapse keeps the explicit NULL.
          const nullable = product === 'mssql' ? '' : ' NULL';
          out.push({ sql: `ALTER TABLE ${T} ALTER COLUMN ${q(c.name)} ${types.get(c.name)!}${nullable}`, parameters: [] });
        }
      }
      out.push(tsqlLedgerCreate(product, plan), ...tsqlLedgerUpgrade(plan));
      return out;
    },

    ledgerHead: (target, pipeline) => renderLedgerHead(tsqlStyle, target, pipeline, { top: 'TOP 1 ', tail: '' }),

    ledgerCheck: tsqlLedgerCheck,

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

    asOf: (target, columns, at, o) => renderAsOf(tsqlRead, target, columns, tsqlInstant(at), o),
    asOfCount: (target, at) => renderAsOfCount(tsqlRead, target, tsqlInstant(at)),
    keyHistory: (target, columns, key, at) => renderKeyHistory(tsqlRead, target, columns, key, tsqlInstant(at)),
  };
}

export const synapseDialect = (distribution: Distribution = 'hash'): Dialect => tsqlDialect('synapse', distribution);
export const mssqlDialect = (): Dialect => tsqlDialect('mssql');
