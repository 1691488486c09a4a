import { z } from 'zod';
import { dryRunReportSchema } from '../engine/dry-run.js';
import { startRunBodySchema } from '../engine/http-api.js';
import {
  errorSchema,
  listRunsQuerySchema,
  pipelineListSchema,
  pipelineNameSchema,
  runAcceptedSchema,
  runDetailSchema,
  runIdSchema,
  runListSchema,
} from './api-schemas.js';
import { restoreBodySchema, rollbackBodySchema } from '../rollback/http.js';
import { ackBodySchema, cancelBodySchema } from './actions.js';

/** OpenAPI 3.1 uses JSON Schema 2020-12, which is what z.toJSONSchema emits by default. */
function schema(s: z.ZodType, io: 'input' | 'output' = 'output'): Record<string, unknown> {
  const { $schema: _drop, ...rest } = z.toJSONSchema(s, { io, unrepresentable: 'any' }) as Record<string, unknown>;
  return rest;
}

const json = (s: z.ZodType, description: string) => ({ description, content: { 'application/json': { schema: schema(s) } } });
const err = (description: string) => json(errorSchema, description);

const nameParam = { name: 'name', in: 'path', required: true, description: 'pipeline name', schema: schema(pipelineNameSchema) };
const runIdParam = { name: 'runId', in: 'path', required: true, description: 'run id', schema: schema(runIdSchema) };

const functionKey = [{ functionKey: [] }, { functionKeyQuery: [] }];
const adminKey = [{ adminKey: [] }];

/**
 * The OpenAPI document served at /api/openapi.json. Request and response shapes come from the
 * zod schemas the handlers parse with (shared/http/api-schemas.ts, shared/engine/http-api.ts).
 */
export function openApiDocument(baseUrl: string): Record<string, unknown> {
  const limit = schema(listRunsQuerySchema, 'input') as { properties: Record<string, unknown> };
  return {
    openapi: '3.1.0',
    info: {
      title: 'tidemark',
      version: '1',
      description:
        'Start runs, read run status and history, acknowledge a validation hold, cancel the run in flight, roll back. Authenticate with a function key (x-functions-key header or ?code=); rollback needs the admin (host master) key. Locally (`tidemark dev`) no key is needed: the server binds to 127.0.0.1.',
    },
    servers: [{ url: `${baseUrl}/api` }],
    components: {
      securitySchemes: {
        functionKey: { type: 'apiKey', in: 'header', name: 'x-functions-key', description: 'function key (or the host master key)' },
        functionKeyQuery: { type: 'apiKey', in: 'query', name: 'code' },
        adminKey: { type: 'apiKey', in: 'header', name: 'x-functions-key', description: 'the host master (admin) key' },
      },
    },
    paths: {
      '/pipelines': {
        get: {
          operationId: 'listPipelines',
          summary: 'Every pipeline with its checkpoint and last run',
          security: functionKey,
          responses: { '200': json(pipelineListSchema, 'the pipelines') },
        },
      },
      '/pipelines/{name}/runs': {
        post: {
          operationId: 'startRun',
          summary: 'Start a run (incremental, full, a backfill from/to optionally split into windows, or a reconcile: the snapshot rebuilt from the warehouse and, with deletes, the keys the source lacks deleted); with ?dryRun=true, what a run would do now, writing nothing',
          security: functionKey,
          parameters: [
            nameParam,
            {
              name: 'dryRun',
              in: 'query',
              required: false,
              description:
                'true: start nothing; read the window the run would read and answer 200 with what it would apply (rows, inserts / updates / deletes / unchanged, target DDL), or 422 for a source the dry run cannot read or a read / transform the run would fail on. Nothing is written to storage, the source or the warehouse. The body is ignored.',
              schema: { type: 'string', enum: ['true'] },
            },
            {
              name: 'mode',
              in: 'query',
              required: false,
              description: 'with dryRun=true only: the run to dry-run (a backfill cannot be dry-run; reconcile answers the reconcile preview: pipeline, baseRunId, changes, report, refused); the body carries the mode of a real run',
              schema: { type: 'string', enum: ['incremental', 'full', 'reconcile'], default: 'incremental' },
            },
            { name: 'deletes', in: 'query', required: false, description: 'with dryRun and mode=reconcile: also find the keys the source no longer has', schema: { type: 'string', enum: ['true'] } },
            { name: 'allowEmpty', in: 'query', required: false, description: 'with dryRun, mode=reconcile and deletes: do not refuse a source with no key', schema: { type: 'string', enum: ['true'] } },
          ],
          requestBody: { required: false, content: { 'application/json': { schema: schema(startRunBodySchema, 'input') } } },
          responses: {
            '200': json(dryRunReportSchema, 'dryRun=true: what the run would do; nothing was written'),
            '202': { ...json(runAcceptedSchema, 'run started; poll statusUrl'), headers: { Location: { description: 'the status URL', schema: { type: 'string' } } } },
            '400': err('invalid body or name (dryRun=true: a mode other than incremental, full or reconcile); `fields` lists each problem'),
            '404': err('unknown pipeline'),
            '409': err('a run of this pipeline is in flight'),
            '413': err('body too large'),
            '422': err('the pipeline file does not load, or uses a feature this release cannot run'),
          },
        },
        get: {
          operationId: 'listRuns',
          summary: 'Runs of a pipeline, newest first',
          security: functionKey,
          parameters: [nameParam, { name: 'limit', in: 'query', required: false, schema: limit.properties.limit }],
          responses: { '200': json(runListSchema, 'the runs'), '400': err('invalid name or limit'), '404': err('unknown pipeline') },
        },
      },
      '/pipelines/{name}/runs/{runId}': {
        get: {
          operationId: 'getRun',
          summary: 'One run: stage, counts, timings, error, dependencies, validations',
          security: functionKey,
          parameters: [nameParam, runIdParam],
          responses: { '200': json(runDetailSchema, 'the run'), '400': err('invalid name or run id'), '404': err('unknown pipeline or run') },
        },
      },
      '/pipelines/{name}/rollback': {
        post: {
          operationId: 'rollback',
          summary: 'Undo the newest committed runs down to toRunId (admin key)',
          security: adminKey,
          parameters: [nameParam],
          requestBody: { required: true, content: { 'application/json': { schema: schema(rollbackBodySchema, 'input') } } },
          responses: {
            '200': { description: 'rolled back; the body lists the runs undone and the rewound checkpoint', content: { 'application/json': { schema: { type: 'object' } } } },
            '400': err('invalid body or name'),
            '404': err('unknown pipeline or run'),
            '409': err('a run of this pipeline is in flight'),
          },
        },
      },
      '/pipelines/{name}/restore': {
        post: {
          operationId: 'restore',
          summary: 'Replace the target with a backup and rewind the checkpoint to the run it was taken before (admin key)',
          security: adminKey,
          parameters: [nameParam],
          requestBody: { required: true, content: { 'application/json': { schema: schema(restoreBodySchema, 'input') } } },
          responses: {
            '200': { description: 'restored; the body names the backup and the rewound checkpoint', content: { 'application/json': { schema: { type: 'object' } } } },
            '400': err('invalid body or name'),
            '404': err('unknown pipeline or backup'),
            '409': err('a run of this pipeline is in flight, or the backup expired'),
          },
        },
      },
      '/pipelines/{name}/ack': {
        post: {
          operationId: 'ack',
          summary: 'Acknowledge failed validations so a held pipeline (validation.holdOnFailure) runs again',
          security: functionKey,
          parameters: [nameParam],
          requestBody: { required: false, content: { 'application/json': { schema: schema(ackBodySchema, 'input') } } },
          responses: {
            '200': { description: 'the runs acknowledged (none when nothing held the pipeline)', content: { 'application/json': { schema: { type: 'object' } } } },
            '400': err('invalid body or name'),
            '404': err('unknown pipeline or run'),
            '409': err('the run did not fail validation'),
          },
        },
      },
      '/pipelines/{name}/cancel': {
        post: {
          operationId: 'cancel',
          summary: "End the pipeline's in-flight run: a committed merge is completed, anything else applies nothing",
          security: functionKey,
          parameters: [nameParam],
          requestBody: { required: false, content: { 'application/json': { schema: schema(cancelBodySchema, 'input') } } },
          responses: {
            '200': { description: 'kind: none (nothing in flight), cancelled or completed, with the run id', content: { 'application/json': { schema: { type: 'object' } } } },
            '400': err('invalid body or name'),
            '404': err('unknown pipeline'),
            '409': err('the given run is no longer in flight, or a rollback / restore holds the pipeline'),
          },
        },
      },
      '/openapi.json': {
        get: { operationId: 'openApi', summary: 'This document', security: [], responses: { '200': { description: 'OpenAPI 3.1 document' } } },
      },
    },
  };
}
