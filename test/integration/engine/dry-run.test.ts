import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { runCommand } from '../../../cli/commands/run.js';
import { apiRoutes } from '../../../shared/http/routes.js';
import { dryRun, dryRunReportSchema } from '../../../shared/engine/dry-run.js';
import type { AzuriteHandle } from '../../../shared/local/azurite.js';
import { getRun } from '../../../shared/state/runs.js';
import { openLocalStack, runOnce, type LocalStack } from '../../../shared/local/stack.js';
import { withAzurite } from '../../support/azurite.js';
import { storageState } from '../../support/storage-state.js';
import { duckExec, makeProject } from '../../support/project.js';

const PIPELINE = `name: people
source:
  connection: SRC
  table: s.people
  changeDetection: { mode: timestamp, column: updated_at, lag: 1m }
key: [id]
transform:
  sql: select id, upper(name) as name, updated_at from extract
target: { warehouse: WH, table: dw.people }
`;

const fileHash = (f: string) => (existsSync(f) ? createHash('md5').update(readFileSync(f)).digest('hex') : 'absent');

describe('run --dry-run writes nothing', () => {
  let az: AzuriteHandle;
  let stack: LocalStack;
  let dir: string;
  const clock = { t: Date.parse('2026-02-01T00:00:00Z') };

  beforeAll(async () => {
    az = await withAzurite();
    dir = makeProject({ pipelines: { people: PIPELINE } });
    await duckExec(
      join(dir, 'source.duckdb'),
      'CREATE SCHEMA s',
      'CREATE TABLE s.people (id INTEGER PRIMARY KEY, name VARCHAR, updated_at TIMESTAMP)',
      `INSERT INTO s.people SELECT i, 'p' || i, TIMESTAMP '2026-01-01' + to_seconds(i) FROM range(1, 101) t(i)`,
    );
    stack = await openLocalStack({ projectDir: dir, connectionString: az.connectionString, now: () => new Date(clock.t) });
  });
  afterAll(async () => {
    await stack?.close();
    await az?.stop();
  });

  it('before the first run: a full read of every row and the CREATE TABLE, and no warehouse file appears', async () => {
    const before = await storageState(az.connectionString);
    const r = await dryRun(stack.ctx, { pipeline: 'people' });
    expect(r).toMatchObject({ mode: 'full', estimatedRows: 100, window: { fullRead: true }, target: { exists: false }, writes: 'none' });
    expect(r.changes).toEqual({ inserted: 100, updated: 0, deleted: 0, unchanged: 0, stale: 0, quarantined: 0, type1: 0 });
    expect(r.checks).toEqual([]);
    expect(r.source.sql).toBe('SELECT * FROM "s"."people"');
    expect(r.target.ddl.map((s) => s.sql)).toContainEqual(expect.stringMatching(/^CREATE TABLE IF NOT EXISTS "dw"\."people" \("id" INTEGER, "name" VARCHAR, "updated_at" TIMESTAMP, "_tm_valid_from"/));
    expect(existsSync(join(dir, 'warehouse.duckdb'))).toBe(false);
    expect(await storageState(az.connectionString)).toBe(before);

    // The CLI prints the same report.
    const out: string[] = [];
    const saved = process.env.AzureWebJobsStorage;
    process.env.AzureWebJobsStorage = az.connectionString;
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => (out.push(String(chunk)), true));
    try {
      expect(await runCommand.run(['people', '--dry-run', '--project', dir])).toBe(0);
    } finally {
      spy.mockRestore();
      process.env.AzureWebJobsStorage = saved;
    }
    const text = out.join('');
    expect(text).toContain('people: dry run of a full run — nothing was written\nwindow (timestamp): the whole table\nsource SQL: SELECT * FROM "s"."people"\nrows read now: 100\n');
    expect(text).toContain('would apply: 100 inserted, 0 updated, 0 type-1 updated, 0 deleted, 0 unchanged\n');
    expect(text).toContain('target dw.people: would be created\n');
    expect(existsSync(join(dir, 'warehouse.duckdb'))).toBe(false);
    expect(await storageState(az.connectionString)).toBe(before);
  });

  it('after a run and source changes: the window from the watermark, its rows, the new column; storage and warehouse byte-for-byte unchanged (CLI path and HTTP)', async () => {
    const first = await runOnce(stack, { pipeline: 'people' });
    expect(first.status, first.error).toBe('succeeded');
    await duckExec(
      join(dir, 'source.duckdb'),
      `UPDATE s.people SET name = 'changed', updated_at = TIMESTAMP '2026-01-02' WHERE id <= 7`,
      'ALTER TABLE s.people ADD COLUMN email VARCHAR',
    );
    // The transform passes the new column through.
    const p = stack.project.pipelines.get('people')!;
    p.transform.sql = 'select id, upper(name) as name, email, updated_at from extract';
    const before = await storageState(az.connectionString);
    const wh = fileHash(join(dir, 'warehouse.duckdb'));
    const src = fileHash(join(dir, 'source.duckdb'));

    const r = await dryRun(stack.ctx, { pipeline: 'people' });
    expect(r.mode).toBe('incremental');
    expect(r.window).toMatchObject({ mode: 'timestamp', column: 'updated_at', from: '2026-01-01T00:00:40.000Z', to: '2026-01-02T00:00:00.000000Z', fullRead: false });
    expect(r.source).toEqual({
      sql: 'SELECT * FROM "s"."people" WHERE "updated_at" > CAST(CAST($1 AS TIMESTAMPTZ) AS TIMESTAMP) AND "updated_at" <= CAST(CAST($2 AS TIMESTAMPTZ) AS TIMESTAMP)',
      parameters: ['2026-01-01T00:00:40.000Z', '2026-01-02T00:00:00.000000Z'],
    });
    // 7 changed rows plus the rows inside the 1 minute lag (ids 41..100 have updated_at > 00:00:40).
    expect(r.estimatedRows).toBe(7 + 60);
    expect(r.target).toEqual({ table: 'dw.people', exists: true, ddl: [{ sql: 'ALTER TABLE "dw"."people" ADD COLUMN "email" VARCHAR', parameters: [] }] });

    const route = apiRoutes.find((x) => x.name === 'startRun')!;
    const http = await route.handle(stack.ctx, { params: { name: 'people' }, query: new URLSearchParams('dryRun=true'), bodyText: '', baseUrl: 'http://x' } as never);
    expect(http.status).toBe(200);
    expect(http.jsonBody).toEqual(JSON.parse(JSON.stringify(r)));
    // The answer has the shape the OpenAPI document gives (generated from the same schema).
    expect(dryRunReportSchema.parse(http.jsonBody)).toEqual(http.jsonBody);
    const bad = await route.handle(stack.ctx, { params: { name: 'people' }, query: new URLSearchParams('dryRun=true&mode=backfill'), bodyText: '', baseUrl: 'http://x' } as never);
    expect(bad.status).toBe(400);

    expect(await storageState(az.connectionString)).toBe(before);
    expect(fileHash(join(dir, 'warehouse.duckdb'))).toBe(wh);
    expect(fileHash(join(dir, 'source.duckdb'))).toBe(src);
    // The scratch folder of the dry run is gone.
    expect(existsSync(join(stack.ctx.workDir, 'people')) ? readdirSync(join(stack.ctx.workDir, 'people')).filter((d) => d.startsWith('dry-run')) : []).toEqual([]);

    // What the dry run said the merge would apply is what the run then applies: the 7 renamed
    // rows are updates; the 60 lag rows are unchanged (a new column that is NULL opens no version).
    expect(r.changes).toEqual({ inserted: 0, updated: 7, deleted: 0, unchanged: 60, stale: 0, quarantined: 0, type1: 0 });
    const second = await runOnce(stack, { pipeline: 'people' });
    expect(second.status, second.error).toBe('succeeded');
    const { extracted, ...applied } = (await getRun(stack.ctx.tables, 'people', second.runId)).counts;
    expect({ extracted, ...applied }).toEqual({ extracted: r.estimatedRows, ...r.changes });
  });
});
