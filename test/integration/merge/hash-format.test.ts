import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { openLocalStack, runOnce, type LocalStack } from '../../../shared/local/stack.js';
import { duckRollbackStyle, mssqlRollbackStyle, postgresRollbackStyle } from '../../../shared/rollback/styles.js';
import { readCheckpoint } from '../../../shared/state/checkpoints.js';
import { canonicalRowSql } from '../../../shared/validate/canonical-sql.js';
import { readValidations } from '../../../shared/state/validations.js';
import { CONTAINERS } from '../../../shared/storage/layout.js';
import { duckExec, duckQuery, makeProject } from '../../support/project.js';
import { duckSourceProject, readDimension, type WarehouseKind } from '../../support/scd-harness.js';
import { useWarehouseEngines } from '../../support/warehouse-engines.js';
import { tsqlQuery } from '../../support/tsql-sql.js';

// Hash rule 4 (issue #19 point 2) through the whole local chain: a new target stores its row
// hash and version key as 16 bytes, a target created with hex hashes keeps them after the
// upgrade and opens no version, and the checks pass on both. The mssql warehouse runs on the
// T-SQL engine when there is one (test/support/tsql-engine.ts).

const pipeline = (name: string, extra = '') => `name: ${name}
source:
  connection: SRC
  table: crm.people
  changeDetection: { mode: timestamp, column: updated_at }
key: [id]
target:
  warehouse: WH
  table: dw.${name}${extra}
validation:
  rowCount: exact
  checksumColumns: [id, name]
  sample: 10
`;

const engines = await useWarehouseEngines('tm_hash_format');
const KINDS = engines.kinds;

/** The warehouse type names of a column (as each engine's catalogue prints them). */
const BINARY: Record<WarehouseKind, string> = { duckdb: 'BLOB', postgres: 'bytea', mssql: 'binary' } as Record<WarehouseKind, string>;
const TEXT: Record<WarehouseKind, string> = { duckdb: 'VARCHAR', postgres: 'text', mssql: 'varchar' } as Record<WarehouseKind, string>;

describe.each(KINDS)('hash format on %s', (kind) => {
  let dir: string;
  const clock = { t: Date.parse('2026-05-01T00:00:00Z') };
  const url = () => (kind === 'mssql' ? engines.ms()!.url : engines.pg().url);
  const where = () => (kind === 'duckdb' ? join(dir, 'warehouse.duckdb') : url());
  const src = (...sql: string[]) => duckExec(join(dir, 'source.duckdb'), ...sql);
  const whQuery = async (sql: string): Promise<Array<Record<string, unknown>>> => {
    if (kind === 'duckdb') return duckQuery(where(), sql);
    if (kind === 'mssql') return tsqlQuery(url(), sql);
    const c = new pg.Client({ connectionString: engines.pg().url });
    await c.connect();
    try {
      return (await c.query(sql)).rows as Array<Record<string, unknown>>;
    } finally {
      await c.end();
    }
  };
  const hashTypes = async (name: string) =>
    (
      await whQuery(
        kind === 'duckdb'
          ? `select column_name as c, data_type as t from information_schema.columns where table_name = '${name}' and column_name in ('_tm_row_hash', '_tm_version_key', '_tm_run_id') order by column_name`
          : kind === 'postgres'
            ? `select column_name as c, data_type as t from information_schema.columns where table_schema = 'dw' and table_name = '${name}' and column_name in ('_tm_row_hash', '_tm_version_key', '_tm_run_id') order by column_name`
            : `select c.name as c, t.name as t from sys.columns c join sys.types t on t.user_type_id = c.user_type_id where c.object_id = object_id('dw.${name}') and c.name in ('_tm_row_hash', '_tm_version_key', '_tm_run_id') order by c.name`,
      )
    ).map((r) => `${String(r.c)} ${String(r.t)}`);
  const open = (name: string, yaml: string): Promise<LocalStack> => {
    writeFileSync(join(dir, 'pipelines', `${name}.yaml`), yaml);
    return openLocalStack({ projectDir: dir, connectionString: engines.az().connectionString, env: { ...process.env, TIDEMARK_TEST_WH: url() }, now: () => new Date(clock.t) });
  };
  const dim = (name: string) => readDimension(kind, where(), `dw.${name}`, ['id', 'name', '_tm_row_hash', '_tm_version_key'], ['id']);
  const passed = async (stack: LocalStack, name: string, runId: string) => (await readValidations(stack.ctx.tables, name, runId)).map((v) => [v.check, v.passed]).sort();
  const suffix = kind === 'duckdb' ? 'dk' : kind === 'postgres' ? 'pg' : 'ms';

  beforeAll(async () => {
    dir = makeProject({
      tidemark: duckSourceProject(kind),
      pipelines: {},
    });
    await src(
      'create schema crm',
      'create table crm.people (id integer, name varchar, updated_at timestamp)',
      `insert into crm.people values (1, 'Ann', '2026-04-01'), (2, 'Bob', '2026-04-01')`,
    );
  });

  it('a new target stores 16-byte hashes: md5 of the canonical text and of key @ valid_from; a change closes and opens by them', async () => {
    const name = `hb_new_${suffix}`;
    const stack = await open(name, pipeline(name));
    try {
      const r1 = await runOnce(stack, { pipeline: name });
      expect({ status: r1.status, error: r1.error }).toEqual({ status: 'succeeded', error: undefined });
      expect(await hashTypes(name)).toEqual([`_tm_row_hash ${BINARY[kind]}`, `_tm_run_id ${TEXT[kind]}`, `_tm_version_key ${BINARY[kind]}`]);
      const { checkpoint } = await readCheckpoint(stack.ctx.tables, name);
      expect(JSON.parse((await stack.ctx.blobs.getText(CONTAINERS.state, checkpoint.snapshot!))!).hashRule).toBe(4);
      const md5 = (t: string) => createHash('md5').update(t).digest('hex');
      expect((await dim(name)).map((r) => [r.id, r._tm_row_hash, r._tm_version_key])).toEqual([
        ['1', md5('name=3:Ann'), md5('id=1:1@2026-05-01T00:00:00.000000Z')],
        ['2', md5('name=3:Bob'), md5('id=1:2@2026-05-01T00:00:00.000000Z')],
      ]);

      await src(`update crm.people set name = 'Bo', updated_at = '2026-04-02' where id = 2`, `update crm.people set updated_at = '2026-04-02' where id = 1`);
      clock.t += 3_600_000;
      const r2 = await runOnce(stack, { pipeline: name });
      expect({ status: r2.status, error: r2.error }).toEqual({ status: 'succeeded', error: undefined });
      expect(r2.counts).toMatchObject({ inserted: 0, updated: 1, unchanged: 1 });
      expect(await passed(stack, name, r2.runId)).toEqual([
        ['checksum', true],
        ['row_count', true],
        ['sample', true],
      ]);
      const rows = await dim(name);
      expect(rows.map((r) => [r.id, r.name, r.cur, r._tm_row_hash])).toEqual([
        ['1', 'Ann', 'true', md5('name=3:Ann')],
        ['2', 'Bob', 'false', md5('name=3:Bob')],
        ['2', 'Bo', 'true', md5('name=2:Bo')],
      ]);
      // The warehouse recomputes the row hash from its own canonical text and compares bytes
      // with no conversion: md5 as 16 bytes (unhex / decode), and on T-SQL what HASHBYTES('MD5')
      // returns (varchar bytes: ASCII data here, as the T-SQL engine hashes UTF-8).
      const text = (style: typeof duckRollbackStyle) => canonicalRowSql(kind, style, [{ name: 'name', type: { kind: 'text' } }]);
      const same =
        kind === 'duckdb'
          ? `select count(*) as n from dw.${name} where _tm_row_hash = unhex(md5(${text(duckRollbackStyle)}))`
          : kind === 'postgres'
            ? `select count(*) as n from dw.${name} where _tm_row_hash = decode(md5(${text(postgresRollbackStyle)}), 'hex')`
            : `select count(*) as n from dw.${name} where _tm_row_hash = HASHBYTES('MD5', CAST((${text(mssqlRollbackStyle)}) AS varchar(max)))`;
      expect(Number((await whQuery(same))[0]!.n)).toBe(3);
    } finally {
      await stack.close();
    }
  });

  it('a target created with hex hashes (rule 3) keeps them after the upgrade: a touched row opens nothing, a change lands as hex', async () => {
    const name = `hb_old_${suffix}`;
    await src(`delete from crm.people`, `insert into crm.people values (1, 'Ann', '2026-04-01'), (2, 'Bob', '2026-04-01')`);
    // hashFormat: hex makes the first load what a tidemark before rule 4 wrote.
    let stack = await open(name, pipeline(name, '\n  hashFormat: hex'));
    try {
      const r1 = await runOnce(stack, { pipeline: name });
      expect({ status: r1.status, error: r1.error }).toEqual({ status: 'succeeded', error: undefined });
    } finally {
      await stack.close();
    }
    expect(await hashTypes(name)).toEqual([`_tm_row_hash ${TEXT[kind]}`, `_tm_run_id ${TEXT[kind]}`, `_tm_version_key ${TEXT[kind]}`]);
    const before = await dim(name);

    // The upgrade: the pipeline file without hashFormat, so binary by default; the target keeps rule 3.
    stack = await open(name, pipeline(name));
    try {
      await src(`update crm.people set updated_at = '2026-04-02'`);
      clock.t += 3_600_000;
      const same = await runOnce(stack, { pipeline: name });
      expect({ status: same.status, error: same.error }).toEqual({ status: 'succeeded', error: undefined });
      expect(same.counts).toMatchObject({ inserted: 0, updated: 0, unchanged: 2 });
      expect(await dim(name)).toEqual(before);
      const { checkpoint } = await readCheckpoint(stack.ctx.tables, name);
      expect(JSON.parse((await stack.ctx.blobs.getText(CONTAINERS.state, checkpoint.snapshot!))!).hashRule).toBe(3);

      await src(`update crm.people set name = 'Bo', updated_at = '2026-04-03' where id = 2`);
      clock.t += 3_600_000;
      const changed = await runOnce(stack, { pipeline: name });
      expect({ status: changed.status, error: changed.error }).toEqual({ status: 'succeeded', error: undefined });
      expect(changed.counts).toMatchObject({ inserted: 0, updated: 1 });
      expect((await passed(stack, name, changed.runId)).every(([, ok]) => ok)).toBe(true);
      expect(await hashTypes(name)).toEqual([`_tm_row_hash ${TEXT[kind]}`, `_tm_run_id ${TEXT[kind]}`, `_tm_version_key ${TEXT[kind]}`]);
      const current = (await dim(name)).filter((r) => r.cur === 'true').map((r) => [r.id, r.name, r._tm_row_hash]);
      expect(current).toEqual([
        ['1', 'Ann', createHash('md5').update('name=3:Ann').digest('hex')],
        ['2', 'Bo', createHash('md5').update('name=2:Bo').digest('hex')],
      ]);
    } finally {
      await stack.close();
    }
  });
});
