import { mkdtempSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { pipelineSchema } from '../../../shared/config/schema.js';
import { runTransform } from '../../../shared/transform/run-transform.js';
import { duckExec, duckQuery } from '../../support/project.js';

const duck = { memoryLimit: '256MB', threads: 1, tempDir: join(tmpdir(), 'tidemark-test-spill') };

function pipeline(deletes: 'retire' | 'ignore') {
  return pipelineSchema.parse({
    name: 'accounts',
    source: { connection: 'CRM', table: 'dbo.Accounts', changeDetection: { mode: 'cdc' } },
    key: ['id'],
    transform: { sql: 'select id, upper(name) as name from extract' },
    target: { warehouse: 'DW', table: 'dw.dim_account', deletes },
  });
}

async function part(dir: string, name: string, select: string): Promise<string> {
  const file = join(dir, name);
  await duckExec(':memory:', `COPY (${select}) TO '${file}' (FORMAT parquet)`);
  return file;
}

describe('deletes reported by a change feed (_tm_source_op) reach the transform as deletes', () => {
  it.each(['retire', 'ignore'] as const)('deletes: %s', async (deletes) => {
    const dir = mkdtempSync(join(tmpdir(), 'tidemark-srcdel-'));
    const p = pipeline(deletes);
    const first = await part(dir, 'p0.parquet', `select * from (values (1, 'a'), (2, 'b'), (3, 'c')) t(id, name)`);
    const out1 = join(dir, 'run1');
    mkdirSync(out1);
    const r1 = await runTransform({
      pipeline: p,
      parts: [first],
      schema: [
        { name: 'id', type: 'INTEGER' },
        { name: 'name', type: 'VARCHAR' },
      ],
      snapshot: undefined,
      fullRead: true,
      boundary: '2026-01-01T00:00:00.000Z',
      sourceRowCount: null,
      outDir: out1,
      duck,
    });
    expect(r1.counts).toMatchObject({ inserted: 3, deleted: 0 });

    // Net changes: 2 updated, 3 deleted, 4 inserted; 1 is absent (absent ≠ deleted).
    const feed = await part(
      dir,
      'p1.parquet',
      `select * from (values (2, 'x', 'update'), (3, 'c', 'delete'), (4, 'd', 'insert')) t(id, name, _tm_source_op)`,
    );
    const out2 = join(dir, 'run2');
    mkdirSync(out2);
    const r2 = await runTransform({
      pipeline: p,
      parts: [feed],
      schema: [
        { name: 'id', type: 'INTEGER' },
        { name: 'name', type: 'VARCHAR' },
        { name: '_tm_source_op', type: 'VARCHAR' },
      ],
      snapshot: { layers: [{ file: r1.snapshot.file!, rows: r1.snapshot.rows }], current: r1.snapshot.current },
      fullRead: false,
      boundary: '2026-01-01T01:00:00.000Z',
      sourceRowCount: null,
      outDir: out2,
      duck,
    });
    expect(r2.counts).toMatchObject({ inserted: 1, updated: 1, unchanged: 0, deleted: deletes === 'retire' ? 1 : 0 });
    const changes = await duckQuery<{ id: number; name: string | null; op: string }>(
      ':memory:',
      `select id, name, _tm_op as op from read_parquet('${r2.changesFile}') order by id`,
    );
    expect(changes).toEqual([
      { id: 2, name: 'X', op: 'update' },
      ...(deletes === 'retire' ? [{ id: 3, name: null, op: 'delete' }] : []),
      { id: 4, name: 'D', op: 'insert' },
    ]);
    expect(r2.schema.map((c) => c.name)).not.toContain('_tm_source_op');
  });

  it('refuses a change feed whose key is renamed away from the source column', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tidemark-srcdel-'));
    const p = pipelineSchema.parse({ ...pipeline('retire'), key: ['account_id'], transform: { sql: 'select id as account_id, name from extract' } });
    const feed = await part(dir, 'p.parquet', `select 1 as id, 'a' as name, 'delete' as _tm_source_op`);
    await expect(
      runTransform({
        pipeline: p,
        parts: [feed],
        schema: [
          { name: 'id', type: 'INTEGER' },
          { name: 'name', type: 'VARCHAR' },
          { name: '_tm_source_op', type: 'VARCHAR' },
        ],
        snapshot: undefined,
        fullRead: false,
        boundary: '2026-01-01T00:00:00.000Z',
        sourceRowCount: null,
        outDir: dir,
        duck,
      }),
    ).rejects.toThrow(/key column\(s\) account_id are not columns of the extract/);
  });
});

describe('live keys beside a change feed (a Salesforce recycle-bin gap under deletesGap: keys)', () => {
  const schema = [
    { name: 'id', type: 'INTEGER' },
    { name: 'name', type: 'VARCHAR' },
  ];
  async function firstLoad(dir: string) {
    const out = join(dir, 'run1');
    mkdirSync(out);
    const file = await part(dir, 'p0.parquet', `select * from (values (1, 'a'), (2, 'b'), (3, 'c'), (4, 'e')) t(id, name)`);
    return runTransform({ pipeline: pipeline('retire'), parts: [file], schema, snapshot: undefined, fullRead: true, boundary: '2026-01-01T00:00:00.000Z', sourceRowCount: null, outDir: out, duck });
  }

  it('deletes the current keys absent from the live keys, as well as the feed deletes; present keys stay', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tidemark-livekeys-'));
    const r1 = await firstLoad(dir);
    // The feed: 2 updated, 4 deleted (still in the log). Live keys: 1, 2 (3 was purged unseen; 5 is new, not yet in a window).
    const feed = await part(dir, 'p1.parquet', `select * from (values (2, 'x', 'update'), (4, 'e', 'delete')) t(id, name, _tm_source_op)`);
    const keys = await part(dir, 'k1.parquet', `select * from (values (1), (2), (5), (NULL)) t(id)`);
    const out = join(dir, 'run2');
    mkdirSync(out);
    const r2 = await runTransform({
      pipeline: pipeline('retire'),
      parts: [feed],
      schema: [...schema, { name: '_tm_source_op', type: 'VARCHAR' }],
      snapshot: { layers: [{ file: r1.snapshot.file!, rows: r1.snapshot.rows }], current: r1.snapshot.current },
      fullRead: false,
      liveKeys: [keys],
      boundary: '2026-01-01T01:00:00.000Z',
      sourceRowCount: null,
      outDir: out,
      duck,
    });
    expect(r2.counts).toMatchObject({ updated: 1, deleted: 2, inserted: 0 });
    const deleted = await duckQuery<{ id: number }>(':memory:', `select id from read_parquet('${r2.changesFile}') where _tm_op = 'delete' order by id`);
    expect(deleted.map((d) => d.id)).toEqual([3, 4]);
    expect(r2.snapshot.current).toBe(2);
  });

  it('refuses a live-key read with no key at all: nothing merged', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tidemark-livekeys-'));
    const r1 = await firstLoad(dir);
    const feed = await part(dir, 'p1.parquet', `select * from (values (2, 'x', 'update')) t(id, name, _tm_source_op)`);
    const out = join(dir, 'run2');
    mkdirSync(out);
    await expect(
      runTransform({
        pipeline: pipeline('retire'),
        parts: [feed],
        schema: [...schema, { name: '_tm_source_op', type: 'VARCHAR' }],
        snapshot: { layers: [{ file: r1.snapshot.file!, rows: r1.snapshot.rows }], current: r1.snapshot.current },
        fullRead: false,
        liveKeys: [],
        boundary: '2026-01-01T01:00:00.000Z',
        sourceRowCount: null,
        outDir: out,
        duck,
      }),
    ).rejects.toThrow(/key-only read returned no key, so every current key would be deleted; nothing was merged/);
  });
});
