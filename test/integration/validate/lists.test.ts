import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AzuriteHandle } from '../../../shared/local/azurite.js';
import { openLocalStack, runOnce, type LocalStack } from '../../../shared/local/stack.js';
import { readCheckpoint } from '../../../shared/state/checkpoints.js';
import { readValidations } from '../../../shared/state/validations.js';
import { CONTAINERS } from '../../../shared/storage/layout.js';
import { withAzurite } from '../../support/azurite.js';
import { startPostgres, type PostgresHandle } from '../../support/postgres.js';
import { makeProject } from '../../support/project.js';
import type { WarehouseKind } from '../../support/scd-harness.js';
import { freshTsqlDatabase, tsqlEngine } from '../../support/tsql-engine.js';
import { whExec, whQuery } from '../../support/warehouse-sql.js';

/**
 * Issue #14 point 8: PostgreSQL arrays land as real lists (duckdb VARCHAR[] …, postgres
 * text[] …) or as their canonical JSON text (T-SQL), and the checksum and the sample of the
 * list columns pass on every warehouse: the NULL list, the empty list, NULL elements, text
 * that needs quoting in every list syntax, and a 10 000-element list.
 */
const engine = await tsqlEngine();

const QUOTED = [`it's "q"`, 'x,y', '[b]', '{c}', 'back\\slash', 'NULL', 'é✓😀', ' spaced ', '', 'tab\there', 'line\nbreak', 'bell\u0001', '</script>'];
const BIG = 10_000;

const project = (kind: WarehouseKind) => `storage: AzureWebJobsStorage
connections:
  PG: { kind: postgres, setting: TEST_PG_URL }
warehouses:
  WH: ${kind === 'duckdb' ? '{ kind: duckdb, path: warehouse.duckdb }' : `{ kind: ${kind}, setting: TIDEMARK_TEST_WH }`}
duckdb: { memoryLimit: 256MB, threads: 1 }
`;
const pipeline = (name: string) => `name: ${name}
source:
  connection: PG
  table: crm.tagged
  changeDetection: { mode: full }
key: [id]
target:
  warehouse: WH
  table: dw.${name}
validation:
  rowCount: exact
  checksumColumns: [id, tags, ints, amounts, flags, ratios, seen, days]
  sample: 10
`;

let az: AzuriteHandle;
let pgh: PostgresHandle;
let ms: { url: string; drop(): Promise<void> } | undefined;

async function pgExec(...statements: string[]): Promise<void> {
  for (const s of statements) await whQuery('postgres', '', pgh.url, s);
}

beforeAll(async () => {
  [az, pgh] = await Promise.all([withAzurite(), startPostgres()]);
  if ('url' in engine) ms = await freshTsqlDatabase(engine.url, 'tm_lists');
  const lit = (s: string) => `'${s.replace(/'/g, "''")}'`;
  await pgExec(
    'DROP SCHEMA IF EXISTS crm CASCADE',
    'CREATE SCHEMA crm',
    'CREATE TABLE crm.tagged (id integer PRIMARY KEY, tags text[], ints integer[], amounts numeric(12,3)[], flags boolean[], ratios double precision[], seen timestamptz[], days date[])',
    `INSERT INTO crm.tagged (id, tags, ints, amounts) VALUES
      (1, NULL, ARRAY[1, 2], ARRAY[1.5, -0.05]::numeric(12,3)[]),
      (2, '{}', NULL, '{}'),
      (3, ARRAY['a', NULL, ''], ARRAY[NULL, 3]::integer[], ARRAY[NULL, 2]::numeric(12,3)[]),
      (4, ARRAY[${QUOTED.map(lit).join(', ')}], '{}', NULL),
      (5, (SELECT array_agg('e' || i ORDER BY i) FROM generate_series(0, ${BIG - 1}) i), (SELECT array_agg(i ORDER BY i) FROM generate_series(0, ${BIG - 1}) i), NULL)`,
    // The other element types, each through its own canonical element text.
    `UPDATE crm.tagged SET flags = ARRAY[true, NULL, false], ratios = ARRAY[3.0, -0.0, 0.1, 1e20, NULL]::float8[],
      seen = ARRAY['2026-07-01 23:30:00.123456-04:30', NULL]::timestamptz[], days = ARRAY['2026-01-02']::date[] WHERE id = 1`,
    `UPDATE crm.tagged SET flags = '{}', ratios = ARRAY[-2.5e-7]::float8[] WHERE id = 3`,
  );
});
afterAll(async () => {
  await ms?.drop();
  await az?.stop();
  await pgh?.stop();
});

describe.each(['duckdb', 'postgres', ...('url' in engine ? ['mssql'] : [])] as WarehouseKind[])('PostgreSQL arrays into a %s warehouse', (kind) => {
  let stack: LocalStack;
  let dir: string;
  const name = `tagged_${kind === 'duckdb' ? 'dk' : kind === 'postgres' ? 'pg' : 'ms'}`;
  const url = () => (kind === 'mssql' ? ms!.url : pgh.url);
  const clock = { t: Date.parse('2026-05-01T00:00:00Z') };

  beforeAll(async () => {
    dir = makeProject({ tidemark: project(kind), pipelines: { [name]: pipeline(name) } });
    // Production's warehouse factory on purpose, a new connection per warehouse object: the one
    // chain file on the T-SQL engine that does not borrow warm sessions (test/support/tsql-pool.ts).
    stack = await openLocalStack({
      projectDir: dir,
      connectionString: az.connectionString,
      env: { ...process.env, TEST_PG_URL: pgh.url, TIDEMARK_TEST_WH: url() },
      now: () => new Date(clock.t),
    });
  });
  afterAll(async () => {
    await stack?.close();
  });

  const current = (cols: string) =>
    whQuery(kind, dir, url(), `select id, ${cols} from dw.${name} where _tm_is_current = ${kind === 'mssql' ? '1' : 'true'} order by id`);

  async function validations(runId: string) {
    return (await readValidations(stack.ctx.tables, name, runId)).map((v) => [v.check, v.passed, v.detail ?? v.actual]).sort();
  }

  it('lands them as lists (JSON text on T-SQL); the checksum and the sample of the lists pass', async () => {
    const r = await runOnce(stack, { pipeline: name });
    expect({ status: r.status, error: r.error }).toEqual({ status: 'succeeded', error: undefined });
    expect(r.counts).toMatchObject({ extracted: 5, inserted: 5 });
    const v = await validations(r.runId);
    expect(v.map(([check, passed]) => [check, passed])).toEqual([
      ['checksum', true],
      ['row_count', true],
      ['sample', true],
    ]);
    const big = Array.from({ length: BIG }, (_, i) => `e${i}`);
    if (kind === 'mssql') {
      const rows = await current('tags, ints, amounts');
      expect(rows.map((x) => [Number(x.id), x.tags, x.ints, x.amounts])).toEqual([
        [1, null, '[1,2]', '[1.5,-0.05]'],
        [2, '[]', null, '[]'],
        [3, '["a",null,""]', '[null,3]', '[null,2]'],
        [4, JSON.stringify(QUOTED), '[]', null],
        [5, JSON.stringify(big), JSON.stringify(big.map((_, i) => i)), null],
      ]);
      expect(await whQuery(kind, dir, url(), `select flags, ratios, seen, days from dw.${name} where id = 1`)).toEqual([
        { flags: '[true,null,false]', ratios: '["3.0","0.0","0.1","1e+20",null]', seen: '["2026-07-02T04:00:00.123456Z",null]', days: '["2026-01-02"]' },
      ]);
      // The stored JSON is JSON: T-SQL reads it back element by element.
      const parsed = await whQuery(kind, dir, url(), `select count(*) as n from dw.${name} cross apply openjson(tags) where id = 5`);
      expect(Number(parsed[0]!.n)).toBe(BIG);
      return;
    }
    const types =
      kind === 'duckdb'
        ? await whQuery(kind, dir, url(), `select column_name as c, data_type as t from information_schema.columns where table_name = '${name}' and column_name in ('tags', 'ints', 'amounts') order by 1`)
        : await whQuery(kind, dir, url(), `select attname as c, format_type(atttypid, atttypmod) as t from pg_attribute where attrelid = 'dw.${name}'::regclass and attname in ('tags', 'ints', 'amounts') order by 1`);
    expect(types).toEqual(
      kind === 'duckdb'
        ? [
            { c: 'amounts', t: 'DECIMAL(12,3)[]' },
            { c: 'ints', t: 'INTEGER[]' },
            { c: 'tags', t: 'VARCHAR[]' },
          ]
        : [
            { c: 'amounts', t: 'numeric(12,3)[]' },
            { c: 'ints', t: 'integer[]' },
            { c: 'tags', t: 'text[]' },
          ],
    );
    const rows = await current('tags, ints');
    expect(rows.map((x) => [Number(x.id), x.tags, (x.ints as unknown[] | null)?.map((n) => (n === null ? null : Number(n))) ?? null])).toEqual([
      [1, null, [1, 2]],
      [2, [], null],
      [3, ['a', null, ''], [null, 3]],
      [4, QUOTED, []],
      [5, big, big.map((_, i) => i)],
    ]);
  });

  it('a changed element opens a version of that key only; the checks pass again', async () => {
    await pgExec(`UPDATE crm.tagged SET tags = array_append(tags, 'new') WHERE id = 4`);
    clock.t += 3_600_000;
    const r = await runOnce(stack, { pipeline: name });
    expect({ status: r.status, error: r.error }).toEqual({ status: 'succeeded', error: undefined });
    expect(r.counts).toMatchObject({ updated: 1, unchanged: 4 });
    expect((await validations(r.runId)).map(([check, passed]) => [check, passed])).toEqual([
      ['checksum', true],
      ['row_count', true],
      ['sample', true],
    ]);
    await pgExec(`UPDATE crm.tagged SET tags = tags[1:array_length(tags, 1) - 1] WHERE id = 4`);
  });

  it('the sample names a list edited in the warehouse', async () => {
    // An element of the quoted list changed behind tidemark's back.
    const edit =
      kind === 'mssql'
        ? `update dw.${name} set tags = '["x"]' where id = 3 and _tm_is_current = 1`
        : kind === 'duckdb'
          ? `update dw.${name} set tags = ['x'] where id = 3 and _tm_is_current`
          : `update dw.${name} set tags = ARRAY['x'] where id = 3 and _tm_is_current`;
    await whExec(kind, dir, url(), edit);
    clock.t += 3_600_000;
    const r = await runOnce(stack, { pipeline: name });
    const sample = (await validations(r.runId)).find(([check]) => check === 'sample');
    expect(sample?.[1]).toBe(false);
    expect(String(sample?.[2])).toBe(`1 of 5 sampled keys differ (extract ≠ warehouse): id=1:3: tags ${JSON.stringify('["a",null,""]')} ≠ ${JSON.stringify('["x"]')}`);
  });
});

describe.each(['duckdb', 'postgres'] as WarehouseKind[])('a %s target created before lists landed as lists (hash rule 2)', (kind) => {
  const name = `tagged_old_${kind === 'duckdb' ? 'dk' : 'pg'}`;
  const clock = { t: Date.parse('2026-06-01T00:00:00Z') };
  let dir: string;
  // The tidemark before this change landed a list as DuckDB's list text in a text column and
  // hashed that text; this cast does the same, and the snapshot is then marked rule 2.
  const OLD_SQL = 'transform:\n  sql: select id, CAST(tags AS VARCHAR) AS tags, CAST(ints AS VARCHAR) AS ints, CAST(amounts AS VARCHAR) AS amounts, CAST(flags AS VARCHAR) AS flags, CAST(ratios AS VARCHAR) AS ratios, CAST(seen AS VARCHAR) AS seen, CAST(days AS VARCHAR) AS days from extract\n';
  const open = (yaml: string) => {
    writeFileSync(join(dir, 'pipelines', `${name}.yaml`), yaml);
    return openLocalStack({ projectDir: dir, connectionString: az.connectionString, env: { ...process.env, TEST_PG_URL: pgh.url, TIDEMARK_TEST_WH: pgh.url }, now: () => new Date(clock.t) });
  };
  const columnTypes = async () =>
    (kind === 'duckdb'
      ? await whQuery(kind, dir, pgh.url, `select data_type as t from information_schema.columns where table_name = '${name}' and column_name in ('tags', 'ints', 'amounts') order by column_name`)
      : await whQuery(kind, dir, pgh.url, `select format_type(atttypid, atttypmod) as t from pg_attribute where attrelid = 'dw.${name}'::regclass and attname in ('tags', 'ints', 'amounts') order by attname`)
    ).map((r) => r.t);

  it('keeps rule 2 after the upgrade: the same rows open no version, lists stay list text, the checks pass; a change lands as list text', async () => {
    // hashFormat: hex makes the first load a rule 3 target (hex hashes, as before rule 4).
    const old = pipeline(name).replace('validation:', `${OLD_SQL}validation:`).replace('  table: dw.', '  hashFormat: hex\n  table: dw.');
    dir = makeProject({ tidemark: project(kind), pipelines: { [name]: old } });
    const text = kind === 'duckdb' ? 'VARCHAR' : 'text';
    let stack = await open(old);
    try {
      const first = await runOnce(stack, { pipeline: name });
      expect(first.status).toBe('succeeded');
      const { checkpoint } = await readCheckpoint(stack.ctx.tables, name);
      const manifest = JSON.parse((await stack.ctx.blobs.getText(CONTAINERS.state, checkpoint.snapshot!))!) as Record<string, unknown>;
      expect(manifest.hashRule).toBe(3);
      await stack.ctx.blobs.putText(CONTAINERS.state, checkpoint.snapshot!, JSON.stringify({ ...manifest, hashRule: 2 }));
    } finally {
      await stack.close();
    }
    expect(await columnTypes()).toEqual([text, text, text]);

    // The upgrade: the pipeline as it always was, lists straight from the source.
    stack = await open(pipeline(name));
    try {
      clock.t += 3_600_000;
      const same = await runOnce(stack, { pipeline: name });
      expect({ status: same.status, error: same.error }).toEqual({ status: 'succeeded', error: undefined });
      expect(same.counts).toMatchObject({ inserted: 0, updated: 0, unchanged: 5 });
      const checks = (await readValidations(stack.ctx.tables, name, same.runId)).map((v) => [v.check, v.passed]).sort();
      expect(checks).toEqual([
        ['checksum', true],
        ['row_count', true],
        ['sample', true],
      ]);
      const { checkpoint } = await readCheckpoint(stack.ctx.tables, name);
      expect(JSON.parse((await stack.ctx.blobs.getText(CONTAINERS.state, checkpoint.snapshot!))!).hashRule).toBe(2);

      await pgExec(`UPDATE crm.tagged SET tags = ARRAY['a', NULL, 'b, c'] WHERE id = 3`);
      clock.t += 3_600_000;
      const changed = await runOnce(stack, { pipeline: name });
      await pgExec(`UPDATE crm.tagged SET tags = ARRAY['a', NULL, ''] WHERE id = 3`);
      expect({ status: changed.status, error: changed.error }).toEqual({ status: 'succeeded', error: undefined });
      expect(changed.counts).toMatchObject({ updated: 1, unchanged: 4 });
      expect((await readValidations(stack.ctx.tables, name, changed.runId)).every((v) => v.passed)).toBe(true);
      expect(await columnTypes()).toEqual([text, text, text]);
      const row = await whQuery(kind, dir, pgh.url, `select tags from dw.${name} where id = 3 and _tm_is_current`);
      expect(row).toEqual([{ tags: "[a, NULL, 'b, c']" }]);
    } finally {
      await stack.close();
    }
  });
});
