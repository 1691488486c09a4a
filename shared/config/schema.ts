import { z } from 'zod';
import { MEMORY_LIMIT_PATTERN } from './memory-limit.js';
import { DURATION_PATTERN } from './duration.js';
import { IDENTIFIER_PATTERN, PIPELINE_NAME_PATTERN, QUALIFIED_NAME_PATTERN } from './identifiers.js';

const identifier = z
  .string()
  .regex(IDENTIFIER_PATTERN, 'must be a safe identifier: letters, digits and _, not starting with a digit');
const qualifiedName = z
  .string()
  .regex(QUALIFIED_NAME_PATTERN, 'must be table or schema.table, each part letters, digits and _');
const duration = z.string().regex(DURATION_PATTERN, 'must be a number and a unit (ms, s, m, h, d), e.g. 5m');
const settingName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must name an app setting / environment variable (letters, digits, _)');

/* ---------- tidemark.yaml ---------- */

const duckdbConnection = z.strictObject({
  kind: z.literal('duckdb').describe('A DuckDB database file as the source.'),
  /** Relative to the project folder. A file, never a secret, so a path is fine here. */
  path: z.string().min(1).describe('Path of the DuckDB file, relative to the project folder.'),
});
const mssqlConnection = z.strictObject({
  kind: z.literal('mssql').describe('SQL Server, Azure SQL Database or Managed Instance as the source.'),
  setting: settingName.describe('App setting / environment variable holding the connection string (never the string itself).'),
  authentication: z.enum(['sql', 'entra']).default('sql').describe('sql: user and password from the connection string; entra: managed identity / developer login (DefaultAzureCredential).'),
  requestTimeout: duration.default('10m').describe('Longest a single statement may run, e.g. 10m.'),
  pool: z
    .strictObject({ max: z.number().int().min(1).max(100).default(4).describe('Most connections open at once.') })
    .default({ max: 4 })
    .describe('Connection pool of the driver.'),
});
const postgresConnection = z.strictObject({
  kind: z.literal('postgres').describe('A PostgreSQL database as the source.'),
  setting: settingName.describe('App setting / environment variable holding the postgres:// connection string.'),
  requestTimeout: duration.default('10m').describe('Longest a single statement may run, e.g. 10m.'),
});

/* salesforce connection (issue 18) */
const salesforceConnection = z
  .strictObject({
    kind: z.literal('salesforce').describe('A Salesforce org read through its REST and Bulk API 2.0.'),
    /** Setting holding the org's My Domain URL (https://acme.my.salesforce.com), also the OAuth token endpoint. */
    instanceUrlSetting: settingName.describe("App setting holding the org's My Domain URL (also the OAuth token endpoint)."),
    auth: z.enum(['clientCredentials', 'jwt']).default('clientCredentials').describe('OAuth flow: clientCredentials (consumer secret) or jwt (certificate-signed assertion).'),
    clientIdSetting: settingName.describe("App setting holding the connected app's consumer key."),
    /** clientCredentials: the setting holding the connected app's consumer secret. */
    secretSetting: settingName.optional().describe("clientCredentials: app setting holding the connected app's consumer secret."),
    /** jwt: the setting holding the PEM private key whose certificate the connected app holds. */
    privateKeySetting: settingName.optional().describe('jwt: app setting holding the PEM private key whose certificate the connected app holds.'),
    /** jwt: the user the token is issued for (not a secret). */
    username: z.string().min(1).optional().describe('jwt: the user the token is issued for.'),
    /** jwt: audience of the assertion; test.salesforce.com for sandboxes. */
    audience: z.string().url().default('https://login.salesforce.com').describe('jwt: audience of the assertion (https://test.salesforce.com for sandboxes).'),
    apiVersion: z.string().regex(/^\d{2,3}\.0$/, 'must be an API version like 62.0').default('62.0').describe('Salesforce API version, like 62.0.'),
    requestTimeout: duration.default('10m').describe('Longest time one Salesforce request may take.'),
  })
  .superRefine((c, ctx) => {
    if (c.auth === 'clientCredentials' && !c.secretSetting) {
      ctx.addIssue({ code: 'custom', path: ['secretSetting'], message: 'auth: clientCredentials needs secretSetting (the setting holding the consumer secret)' });
    }
    if (c.auth === 'jwt' && (!c.privateKeySetting || !c.username)) {
      ctx.addIssue({ code: 'custom', path: [c.privateKeySetting ? 'username' : 'privateKeySetting'], message: 'auth: jwt needs privateKeySetting and username' });
    }
  });
/* end salesforce connection */

export const connectionSchema = z.discriminatedUnion('kind', [duckdbConnection, mssqlConnection, postgresConnection, salesforceConnection]);

const duckdbWarehouse = z.strictObject({
  kind: z.literal('duckdb').describe('An embedded DuckDB file as the warehouse (local default).'),
  path: z.string().min(1).describe('Path of the warehouse file, relative to the project folder.'),
});
const synapseWarehouse = z.strictObject({
  kind: z.literal('synapse').describe('An Azure Synapse dedicated SQL pool.'),
  setting: settingName.describe('App setting holding the Synapse connection string.'),
  /** Where COPY INTO reads the changes Parquet from (ADLS Gen2 .dfs endpoint). */
  stagingUrlSetting: settingName.optional().describe('App setting holding the ADLS Gen2 (.dfs) URL COPY INTO reads the changes Parquet from.'),
  credential: z.enum(['managedIdentity', 'sas']).default('managedIdentity').describe('How COPY INTO authenticates to storage.'),
  /** With credential: sas, the setting holding the SAS token (never the token itself). */
  sasSetting: settingName.optional().describe('With credential sas: the app setting holding the SAS token.'),
  requestTimeout: duration.default('30m').describe('Longest a single statement may run, e.g. 30m.'),
});
const postgresWarehouse = z.strictObject({
  kind: z.literal('postgres').describe('A PostgreSQL database as the warehouse.'),
  setting: settingName.describe('App setting holding the postgres:// connection string.'),
});
/** SQL Server, Azure SQL Database, Managed Instance: the setting holds an ADO connection string. */
const mssqlWarehouse = z.strictObject({
  kind: z.literal('mssql').describe('SQL Server, Azure SQL Database or Managed Instance as the warehouse.'),
  setting: settingName.describe('App setting holding its ADO connection string.'),
  requestTimeout: duration.default('30m').describe('Longest time one warehouse statement may take (raised from the driver default of 15 s).'),
});

export const warehouseSchema = z.discriminatedUnion('kind', [duckdbWarehouse, synapseWarehouse, postgresWarehouse, mssqlWarehouse]);

export const projectSchema = z.strictObject({
  /** The app setting that holds the storage connection string. */
  storage: settingName.default('AzureWebJobsStorage').describe('App setting holding the storage connection string; unset or UseDevelopmentStorage=true starts Azurite locally.'),
  connections: z.record(identifier, connectionSchema).default({}).describe('Sources by name; pipelines refer to them in source.connection.'),
  warehouses: z.record(identifier, warehouseSchema).default({}).describe('Warehouses by name; pipelines refer to them in target.warehouse.'),
  /** DuckDB resources for transforms and the embedded warehouse. */
  duckdb: z
    .strictObject({
      memoryLimit: z.string().regex(MEMORY_LIMIT_PATTERN).default('1GB').describe('DuckDB memory limit; past it DuckDB spills to disk, e.g. 1GB.'),
      threads: z.number().int().min(1).max(64).default(2).describe('DuckDB worker threads.'),
    })
    .default({ memoryLimit: '1GB', threads: 2 })
    .describe('DuckDB resources for transforms and the embedded warehouse.'),
});

export type ProjectConfig = z.infer<typeof projectSchema>;
export type ConnectionConfig = z.infer<typeof connectionSchema>;
export type WarehouseConfig = z.infer<typeof warehouseSchema>;

/* ---------- pipelines/<name>.yaml ---------- */

export const changeDetectionSchema = z.strictObject({
  mode: z
    .enum(['full', 'timestamp', 'rowversion', 'cdc', 'changeTracking'])
    .describe('full: hash every row each run (sees deletes); timestamp: rows whose modified-at moved (misses hard deletes); rowversion: SQL Server rowversion; cdc: SQL Server CDC net changes; changeTracking: SQL Server Change Tracking.'),
  column: identifier.optional().describe('timestamp: the modified-at column; rowversion: the rowversion column.'),
  lag: duration.optional().describe('timestamp: re-read this far behind the saved watermark against clock skew and late commits, e.g. 5m.'),
  /** CDC capture instance (cdc mode). */
  captureInstance: identifier.optional().describe('cdc: the capture instance; default: the newest capture instance of the table that covers the pipeline and reaches back to the saved LSN.'),
});

const ruleSchema = z.strictObject({
  name: identifier.describe('Name of the quality rule, shown in results.'),
  check: z.string().min(1).describe('A DuckDB SQL condition over a transformed row that must hold, e.g. Email is not null.'),
  onFail: z.enum(['quarantine', 'fail', 'warn']).default('fail').describe('quarantine: hold the row back; fail: fail the run; warn: keep the row and report.'),
});

const validFromSchema = z
  .union([z.literal('load'), z.strictObject({ column: identifier.describe('Source column holding when the version became valid.') })])
  .describe('load: versions start at the run boundary (UTC); { column }: at a source column.');

export const pipelineSchema = z
  .strictObject({
    name: z.string().regex(PIPELINE_NAME_PATTERN, 'must be lowercase letters, digits and _, starting with a letter').describe('Pipeline name; equals the file name without .yaml.'),
    description: z.string().optional().describe('Free text shown in listings.'),
    /** NCRONTAB with six fields (seconds first), UTC. Checked further in load.ts. */
    schedule: z.string().optional().describe('NCRONTAB with six fields (second minute hour day month day-of-week), UTC, e.g. "0 */15 * * * *". Omitted: runs only on demand.'),
    /**
     * How long after the last successful run the pipeline counts as stale (red on the run-history
     * page). Omitted: twice the schedule's interval, or no threshold for unscheduled pipelines.
     */
    freshness: duration.optional().describe('How long after the last successful run the pipeline counts as stale; default twice the schedule interval.'),
    dependsOn: z.array(z.string().regex(PIPELINE_NAME_PATTERN)).default([]).describe('Pipelines that must have succeeded in this window before this one starts.'),
    /** How long a run waits for its dependsOn pipelines to succeed in its window before it fails. */
    dependencyTimeout: duration.default('1h').describe('How long a run waits for its dependsOn pipelines before it fails.'),
    /** Webhooks (Slack / Teams) per pipeline; `setting` names the app setting holding the URL. */
    notifications: z
      .strictObject({
        webhooks: z
          .array(
            z.strictObject({
              setting: settingName.describe('App setting holding the webhook URL.'),
              on: z.array(z.enum(['failure', 'success'])).min(1).default(['failure']).describe('Which run outcomes post a message.'),
              format: z.enum(['slack', 'teams']).default('slack').describe('Message format of the webhook.'),
            }),
          )
          .default([])
          .describe('Slack / Teams webhooks.'),
      })
      .default({ webhooks: [] })
      .describe('Where run outcomes are posted.'),
    source: z
      .strictObject({
        connection: identifier.describe('A connection named in tidemark.yaml.'),
        table: qualifiedName.optional().describe('The table to read, table or schema.table (or give query).'),
        query: z.string().min(1).optional().describe('A SELECT to read instead of a table.'),
        changeDetection: changeDetectionSchema.default({ mode: 'full' }).describe('How the extract finds what changed since the last run.'),
        /** Bounded Parquet parts: neither a whole table nor a whole part is held in JS memory. */
        partRows: z.number().int().min(1000).default(1_000_000).describe('Most rows per Parquet part.'),
        partBytes: z.string().regex(/^\d+(KB|MB|GB)$/).default('128MB').describe('Largest Parquet part, e.g. 128MB.'),
        /**
         * Full reads (initial loads, full runs) split into key ranges, each its own extract
         * message so several instances read in parallel. Give count or rowsPerPartition.
         */
        partitions: z
          .strictObject({
            count: z.number().int().min(1).max(1000).optional().describe('Number of key ranges.'),
            rowsPerPartition: z.number().int().min(1000).optional().describe('Rows per key range.'),
            /** An integer column to split on; default the first key column. */
            column: identifier.optional().describe('Integer column to split on; default the first key column.'),
          })
          .refine((x) => (x.count === undefined) !== (x.rowsPerPartition === undefined), {
            message: 'give exactly one of partitions.count or partitions.rowsPerPartition',
          })
          .optional()
          .describe('Full reads split into key ranges read in parallel; give count or rowsPerPartition.'),
        /**
         * What a change of the source's columns since the last committed run does: `evolve` adds
         * new columns and leaves dropped ones NULL in new versions (a changed type is decided by
         * the merge, see target.allowTypeWidening); `fail` refuses any change before the
         * transform writes anything.
         */
        schemaDrift: z.enum(['evolve', 'fail']).default('evolve').describe('evolve: add new source columns; fail: refuse any change of the source columns.'),
        /* salesforce source (issue 18) */
        /** Salesforce object (sObject API name) to read; with `fields` or all readable fields. */
        object: z.string().regex(/^[A-Za-z][A-Za-z0-9_]*$/, 'must be an sObject API name like Account or Invoice__c').optional().describe('Salesforce object (sObject API name) to read, for a salesforce connection.'),
        fields: z.union([z.literal('all'), z.array(z.string().regex(/^[A-Za-z][A-Za-z0-9_]*$/, 'must be a field API name')).min(1)]).optional().describe('Salesforce fields to read: a list of API names, or all readable fields from describe.'),
        /** A SOQL SELECT of one object without WHERE / ORDER BY / LIMIT; tidemark adds the window. */
        soql: z.string().min(1).optional().describe('A SOQL SELECT of one object, with or without a WHERE (no ORDER BY, LIMIT, OFFSET or GROUP BY: Bulk API 2.0 refuses them); tidemark adds the window to the WHERE.'),
        /** Reads estimated above this many rows go through Bulk API 2.0 (first loads and --full always do). */
        bulkThreshold: z.number().int().min(0).default(50_000).describe('Salesforce reads estimated above this many rows use Bulk API 2.0 (first loads and --full always do).'),
        /** What a recycle-bin gap (deletes purged unseen) is answered with: a full re-read, or a key-only read of Id. */
        deletesGap: z
          .enum(['fullRead', 'keys'])
          .default('fullRead')
          .describe('Salesforce: when the recycle bin no longer reaches the watermark, re-read every row (fullRead) or read the window plus every live Id and delete the absent keys (keys).'),
        /* end salesforce source */
      })
      .refine((s) => [s.table, s.query, s.object, s.soql].filter((x) => x !== undefined).length === 1, {
        message: 'give exactly one of source.table or source.query (source.object or source.soql for a salesforce connection)',
      })
      .refine((s) => s.fields === undefined || s.object !== undefined, { message: 'source.fields goes with source.object', path: ['fields'] })
      .describe('What the pipeline reads.'),
    key: z.array(identifier).min(1).describe('Columns that identify a row (business key), compared column by column.'),
    transform: z
      .strictObject({
        sql: z.string().min(1).optional().describe('DuckDB SQL over the view `extract`; omitted: the extract as it is.'),
        rules: z.array(ruleSchema).default([]).describe('Quality rules checked on every transformed row.'),
      })
      .default({ rules: [] })
      .describe('The DuckDB transform between extract and merge.'),
    target: z.strictObject({
      warehouse: identifier.describe('A warehouse named in tidemark.yaml.'),
      table: qualifiedName.describe('Target table, schema.table; created on the first run.'),
      scd: z.union([z.literal(1), z.literal(2)]).default(2).describe('2: keep history (a new version per change); 1: overwrite in place.'),
      trackedColumns: z.union([z.literal('all'), z.array(identifier).min(1)]).default('all').describe('Columns whose change opens a new version; all or a list.'),
      type1Columns: z.array(identifier).default([]).describe('Columns overwritten on the current version without opening a new one.'),
      deletes: z.enum(['retire', 'mark', 'ignore']).default('retire').describe('A deleted source key: retire closes its version; mark keeps a current version flagged deleted; ignore does nothing.'),
      validFrom: validFromSchema.default('load'),
      /** Synapse only; other dialects ignore distribution. */
      distribution: z.enum(['hash', 'replicate', 'round_robin']).default('hash').describe('Synapse table distribution; other warehouses ignore it.'),
      allowTypeWidening: z.boolean().default(false).describe('Let a source type change that keeps every value (e.g. INTEGER → BIGINT) alter the target column instead of failing.'),
      hashFormat: z
        .enum(['binary', 'hex'])
        .default('binary')
        .describe(
          'How a new target stores _tm_row_hash and _tm_version_key: binary (16 md5 bytes, hash rule 4) or hex (32 characters, rule 3, for consumers that compare them with md5() text). Read at a first load only: a target keeps the format it was created with.',
        ),
    })
    .describe('Where and how the changes are merged.'),
    validation: z
      .strictObject({
        rowCount: z.enum(['exact', 'none']).default('exact').describe('exact: source rows seen must equal target current rows.'),
        checksumColumns: z.array(identifier).default([]).describe('Columns checksummed on both sides with the same canonical text.'),
        rules: z
          .array(
            z.strictObject({
              name: identifier.describe('Name of the check.'),
              sql: z.string().min(1).describe('A query on the warehouse returning one value.'),
              expect: z.union([z.number(), z.string()]).describe('The value the query must return.'),
            }),
          )
          .default([])
          .describe('SQL checks on the warehouse after every merge.'),
        sample: z.number().int().min(0).max(2000).default(0).describe('Keys sampled and compared field by field between source and target.'),
        /** A failed validation holds the next run until `tidemark ack` (shared/validate/hold.ts). */
        holdOnFailure: z.boolean().default(false).describe('A failed validation holds the next run until `tidemark ack`.'),
        /** Checked on the extract before the transform touches anything (shared/validate/extract.ts). */
        extract: z
          .strictObject({
            minRows: z.number().int().min(0).default(0).describe('Fewest rows the extract must have.'),
            /** Column name → DuckDB type of the extract (as `DESCRIBE` prints it), or `any`. */
            columns: z.record(z.string().min(1), z.string().min(1)).optional().describe('Column name → DuckDB type the extract must have (or any).'),
          })
          .default({ minRows: 0 })
          .describe('Checks on the extract before the transform.'),
      })
      .default({ rowCount: 'exact', checksumColumns: [], rules: [], sample: 0, holdOnFailure: false, extract: { minRows: 0 } })
      .describe('Checks after every merge; results in the validations table.'),
    /** Copies of the target taken before a full refresh or first load (shared/rollback/backups.ts). */
    backup: z
      .strictObject({
        enabled: z.boolean().default(true).describe('Copy the target before a full refresh or first load.'),
        keep: duration.default('7d').describe('How long backups are kept, e.g. 7d.'),
      })
      .default({ enabled: true, keep: '7d' })
      .describe('Target copies for restore.'),
    retry: z
      .strictObject({
        attempts: z.number().int().min(1).max(20).default(3).describe('Tries of a failing source read.'),
        backoff: z.enum(['exponential', 'fixed']).default('exponential').describe('How the delay between tries grows.'),
        initialDelay: duration.default('30s').describe('Delay before the second try, e.g. 30s.'),
      })
      .default({ attempts: 3, backoff: 'exponential', initialDelay: '30s' })
      .describe('Retries of transient source failures.'),
    /** Scale-out by a stable hash of the key (docs/design.md §5). */
    buckets: z.number().int().min(1).max(64).default(1).describe('Split a run into this many buckets by a stable hash of the key.'),
  })
  .superRefine((p, ctx) => {
    const mode = p.source.changeDetection.mode;
    // A salesforce object defaults to SystemModstamp (issue 18).
    if (mode === 'timestamp' && !p.source.changeDetection.column && !p.source.object && !p.source.soql) {
      ctx.addIssue({
        code: 'custom',
        path: ['source', 'changeDetection', 'column'],
        message: 'timestamp mode needs the column that holds the modification time',
      });
    }
    const keys = new Set(p.key);
    if (keys.size !== p.key.length) ctx.addIssue({ code: 'custom', path: ['key'], message: 'a key column is listed twice' });
    for (const c of p.target.type1Columns) {
      if (keys.has(c)) ctx.addIssue({ code: 'custom', path: ['target', 'type1Columns'], message: `${c} is a key column` });
      if (Array.isArray(p.target.trackedColumns) && p.target.trackedColumns.includes(c)) {
        ctx.addIssue({
          code: 'custom',
          path: ['target', 'type1Columns'],
          message: `${c} is also in trackedColumns; a column is either tracked (new version) or type 1 (overwritten)`,
        });
      }
    }
  });

export type PipelineConfig = z.infer<typeof pipelineSchema>;
export type PipelineInput = z.input<typeof pipelineSchema>;
