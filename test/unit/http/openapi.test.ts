import { describe, expect, it } from 'vitest';
import { openApiDocument } from '../../../shared/http/openapi.js';
import { apiRoutes } from '../../../shared/http/routes.js';

describe('OpenAPI document', () => {
  const doc = openApiDocument('https://app.example') as any;

  it('documents every registered route, plus rollback (admin key)', () => {
    // The run-history page's data routes (shared/ui, under /api/ui) serve the page, not API clients.
    for (const r of apiRoutes.filter((x) => !x.route.startsWith('ui'))) {
      for (const m of r.methods) {
        const op = doc.paths[`/${r.route}`]?.[m.toLowerCase()];
        expect(op, `${m} /${r.route}`).toBeDefined();
        expect(op.operationId).toBe(r.name);
        expect(op.security).toEqual(
          r.authLevel === 'anonymous' ? [] : r.authLevel === 'admin' ? [{ adminKey: [] }] : expect.arrayContaining([{ functionKey: [] }]),
        );
      }
    }
    expect(doc.paths['/pipelines/{name}/rollback'].post.security).toEqual([{ adminKey: [] }]);
    expect(doc.paths['/pipelines/{name}/rollback'].post.requestBody.content['application/json'].schema).toMatchObject({
      type: 'object',
      required: ['toRunId'],
      properties: { toRunId: { pattern: '^\\d{8}T\\d{6}Z-[0-9a-f]{4}$' } },
      additionalProperties: false,
    });
  });

  it('generates the request body and parameters from the zod schemas the handlers parse with', () => {
    const body = doc.paths['/pipelines/{name}/runs'].post.requestBody.content['application/json'].schema;
    expect(body.properties.mode).toMatchObject({ enum: ['incremental', 'full', 'backfill', 'reconcile'], default: 'incremental' });
    expect(body.properties.windowSize.pattern).toBe('^(\\d+)(ms|s|m|h|d)$');
    expect(body.additionalProperties).toBe(false);
    const limit = doc.paths['/pipelines/{name}/runs'].get.parameters.find((p: { name: string }) => p.name === 'limit');
    expect(limit.schema).toMatchObject({ type: 'integer', minimum: 1, maximum: 200, default: 20 });
    const name = doc.paths['/pipelines/{name}/runs/{runId}'].get.parameters[0];
    expect(name.schema.pattern).toBe('^[a-z][a-z0-9_]{0,62}$');
    const run = doc.paths['/pipelines/{name}/runs/{runId}'].get.responses['200'].content['application/json'].schema;
    expect(run.required).toEqual(expect.arrayContaining(['stage', 'counts', 'timings', 'error', 'validations']));
  });

  it('documents ?dryRun=true on startRun: the query parameters and the 200 answer, generated from the report schema', () => {
    const post = doc.paths['/pipelines/{name}/runs'].post;
    const param = (n: string) => post.parameters.find((p: { name: string }) => p.name === n);
    expect(param('dryRun')).toMatchObject({ in: 'query', required: false, schema: { enum: expect.arrayContaining(['true']) } });
    expect(param('mode')).toMatchObject({ in: 'query', schema: { enum: expect.arrayContaining(['incremental', 'full']) } });
    const report = post.responses['200'].content['application/json'].schema;
    expect(report.required).toEqual(['pipeline', 'mode', 'window', 'source', 'estimatedRows', 'changes', 'checks', 'warnings', 'target', 'writes']);
    expect(report.additionalProperties).toBe(false);
    expect(report.properties.writes).toMatchObject({ const: 'none' });
    expect(report.properties.window.required).toEqual(expect.arrayContaining(['mode', 'from', 'to', 'next', 'fullRead']));
    expect(Object.keys(report.properties.changes.properties).sort()).toEqual(['deleted', 'inserted', 'quarantined', 'stale', 'type1', 'unchanged', 'updated']);
    expect(report.properties.target.properties.ddl.items.required).toEqual(['sql', 'parameters']);
    expect(report.properties.checks.items.required).toEqual(expect.arrayContaining(['check', 'passed', 'expected', 'actual']));
    // Every field a user reads carries a description.
    for (const f of ['mode', 'window', 'source', 'estimatedRows', 'changes', 'checks', 'writes']) expect(report.properties[f].description, f).toBeTruthy();
    // The 202 of a real run stays documented beside it.
    expect(post.responses['202']).toBeDefined();
  });
});
