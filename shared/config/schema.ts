import { z } from 'zod';
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
  kind: z.literal('duckdb'),
  /** Relative to the project folder. A file, never a secret, so a path is fine here. */
  path: z.string().min(1),
});
const mssqlConnection = z.strictObject({
  kind: z.literal('mssql'),
  setting: settingName,
  authentication: z.enum(['sql', 'entra']).default('sql'),
  requestTimeout: duration.default('10m'),
  pool: z.strictObject({ max: z.number().int().min(1).max(100).default(4) }).default({ max: 4 }),
});
const postgresConnection = z.strictObject({
  kind: z.literal('postgres'),
  setting: settingName,
  requestTimeout: duration.default('10m'),
});

export const connectionSchema = z.discriminatedUnion('kind', [duckdbConnection, mssqlConnection, postgresConnection]);

const duckdbWarehouse = z.strictObject({ kind: z.literal('duckdb'), path: z.string().min(1) });
const synapseWarehouse = z.strictObject({
  kind: z.literal('synapse'),
  setting: settingName,
  /** Where COPY INTO reads the changes Parquet from (ADLS Gen2 .dfs endpoint). */
  stagingUrlSetting: settingName.optional(),
  credential: z.enum(['managedIdentity', 'sas']).default('managedIdentity'),
  /** With credential: sas, the setting holding the SAS token (never the token itself). */
  sasSetting: settingName.optional(),
  requestTimeout: duration.default('30m'),
});
const postgresWarehouse = z.strictObject({ kind: z.literal('postgres'), setting: settingName });

export const warehouseSchema = z.discriminatedUnion('kind', [duckdbWarehouse, synapseWarehouse, postgresWarehouse]);

export const projectSchema = z.strictObject({
  /** The app setting that holds the storage connection string. */
  storage: settingName.default('AzureWebJobsStorage'),
  connections: z.record(identifier, connectionSchema).default({}),
  warehouses: z.record(identifier, warehouseSchema).default({}),
  /** DuckDB resources for transforms and the embedded warehouse. */
  duckdb: z
    .strictObject({
      memoryLimit: z.string().regex(/^\d+(\.\d+)?\s*(KB|MB|GB|KiB|MiB|GiB)$/i).default('1GB'),
      threads: z.number().int().min(1).max(64).default(2),
    })
    .default({ memoryLimit: '1GB', threads: 2 }),
});

export type ProjectConfig = z.infer<typeof projectSchema>;
export type ConnectionConfig = z.infer<typeof connectionSchema>;
export type WarehouseConfig = z.infer<typeof warehouseSchema>;

/* ---------- pipelines/<name>.yaml ---------- */

export const changeDetectionSchema = z.strictObject({
  mode: z.enum(['full', 'timestamp', 'rowversion', 'cdc', 'changeTracking']),
  column: identifier.optional(),
  lag: duration.optional(),
  /** CDC capture instance (cdc mode). */
  captureInstance: identifier.optional(),
});

const ruleSchema = z.strictObject({
  name: identifier,
  check: z.string().min(1),
  onFail: z.enum(['quarantine', 'fail', 'warn']).default('fail'),
});

const validFromSchema = z.union([z.literal('load'), z.strictObject({ column: identifier })]);

export const pipelineSchema = z
  .strictObject({
    name: z.string().regex(PIPELINE_NAME_PATTERN, 'must be lowercase letters, digits and _, starting with a letter'),
    description: z.string().optional(),
    /** NCRONTAB with six fields (seconds first), UTC. Checked further in load.ts. */
    schedule: z.string().optional(),
    /**
     * How long after the last successful run the pipeline counts as stale (red on the run-history
     * page). Omitted: twice the schedule's interval, or no threshold for unscheduled pipelines.
     */
    freshness: duration.optional(),
    dependsOn: z.array(z.string().regex(PIPELINE_NAME_PATTERN)).default([]),
    /** How long a run waits for its dependsOn pipelines to succeed in its window before it fails. */
    dependencyTimeout: duration.default('1h'),
    /** Webhooks (Slack / Teams) per pipeline; `setting` names the app setting holding the URL. */
    notifications: z
      .strictObject({
        webhooks: z
          .array(
            z.strictObject({
              setting: settingName,
              on: z.array(z.enum(['failure', 'success'])).min(1).default(['failure']),
              format: z.enum(['slack', 'teams']).default('slack'),
            }),
          )
          .default([]),
      })
      .default({ webhooks: [] }),
    source: z
      .strictObject({
        connection: identifier,
        table: qualifiedName.optional(),
        query: z.string().min(1).optional(),
        changeDetection: changeDetectionSchema.default({ mode: 'full' }),
        /** Bounded Parquet parts: neither a whole table nor a whole part is held in JS memory. */
        partRows: z.number().int().min(1000).default(1_000_000),
        partBytes: z.string().regex(/^\d+(KB|MB|GB)$/).default('128MB'),
        /**
         * Full reads (initial loads, full runs) split into key ranges, each its own extract
         * message so several instances read in parallel. Give count or rowsPerPartition.
         */
        partitions: z
          .strictObject({
            count: z.number().int().min(1).max(1000).optional(),
            rowsPerPartition: z.number().int().min(1000).optional(),
            /** An integer column to split on; default the first key column. */
            column: identifier.optional(),
          })
          .refine((x) => (x.count === undefined) !== (x.rowsPerPartition === undefined), {
            message: 'give exactly one of partitions.count or partitions.rowsPerPartition',
          })
          .optional(),
        /**
         * What a change of the source's columns since the last committed run does: `evolve` adds
         * new columns and leaves dropped ones NULL in new versions (a changed type is decided by
         * the merge, see target.allowTypeWidening); `fail` refuses any change before the
         * transform writes anything.
         */
        schemaDrift: z.enum(['evolve', 'fail']).default('evolve'),
      })
      .refine((s) => (s.table === undefined) !== (s.query === undefined), {
        message: 'give exactly one of source.table or source.query',
      }),
    key: z.array(identifier).min(1),
    transform: z
      .strictObject({
        sql: z.string().min(1).optional(),
        rules: z.array(ruleSchema).default([]),
      })
      .default({ rules: [] }),
    target: z.strictObject({
      warehouse: identifier,
      table: qualifiedName,
      scd: z.union([z.literal(1), z.literal(2)]).default(2),
      trackedColumns: z.union([z.literal('all'), z.array(identifier).min(1)]).default('all'),
      type1Columns: z.array(identifier).default([]),
      deletes: z.enum(['retire', 'mark', 'ignore']).default('retire'),
      validFrom: validFromSchema.default('load'),
      /** Synapse only; other dialects ignore distribution. */
      distribution: z.enum(['hash', 'replicate', 'round_robin']).default('hash'),
      allowTypeWidening: z.boolean().default(false),
    }),
    validation: z
      .strictObject({
        rowCount: z.enum(['exact', 'none']).default('exact'),
        checksumColumns: z.array(identifier).default([]),
        rules: z
          .array(z.strictObject({ name: identifier, sql: z.string().min(1), expect: z.union([z.number(), z.string()]) }))
          .default([]),
        sample: z.number().int().min(0).max(2000).default(0),
        /** A failed validation holds the next run until `tidemark ack` (shared/validate/hold.ts). */
        holdOnFailure: z.boolean().default(false),
        /** Checked on the extract before the transform touches anything (shared/validate/extract.ts). */
        extract: z
          .strictObject({
            minRows: z.number().int().min(0).default(0),
            /** Column name → DuckDB type of the extract (as `DESCRIBE` prints it), or `any`. */
            columns: z.record(z.string().min(1), z.string().min(1)).optional(),
          })
          .default({ minRows: 0 }),
      })
      .default({ rowCount: 'exact', checksumColumns: [], rules: [], sample: 0, holdOnFailure: false, extract: { minRows: 0 } }),
    /** Copies of the target taken before a full refresh or first load (shared/rollback/backups.ts). */
    backup: z
      .strictObject({ enabled: z.boolean().default(true), keep: duration.default('7d') })
      .default({ enabled: true, keep: '7d' }),
    retry: z
      .strictObject({
        attempts: z.number().int().min(1).max(20).default(3),
        backoff: z.enum(['exponential', 'fixed']).default('exponential'),
        initialDelay: duration.default('30s'),
      })
      .default({ attempts: 3, backoff: 'exponential', initialDelay: '30s' }),
    /** Scale-out by a stable hash of the key (docs/design.md §5). */
    buckets: z.number().int().min(1).max(64).default(1),
  })
  .superRefine((p, ctx) => {
    const mode = p.source.changeDetection.mode;
    if (mode === 'timestamp' && !p.source.changeDetection.column) {
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
